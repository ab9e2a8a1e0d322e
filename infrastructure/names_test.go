package infrastructure

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// adversarialProjects are valid project names chosen to collide if any pattern were a plain
// prefix: prefixes of each other, names ending like the derived suffixes (-app, -pipeline,
// -build), the control plane's own prefix (lambda-pipeline), the control-plane stack's default
// name (samconfig.toml), and the longest name allowed.
var adversarialProjects = []string{
	"a", "a-b", "a-app", "a-pipeline", "a-build", "a-build-go-test", "app", "pipeline",
	"lambda", "lambda-pipeline", "lambda-pipeline-a", "my", "my-lambda", "my-lambda-control",
	controlPlaneStack, "abcdefghijklmnopqrstuvwx",
}

// deployment is one project deployed in the account: its control plane, pipeline stack and
// application stack, the ARNs of what they create, and every resource pattern their roles
// are granted (Allow statements, Resource "*" aside).
type deployment struct {
	project   string
	resources []ownedARN
	grants    []grantPattern
}

type ownedARN struct{ stack, arn string }

type grantPattern struct {
	stack, role, where, pattern string
}

const (
	stackControlPlane = "control plane"
	stackPipeline     = "pipeline stack"
	stackApp          = "app stack"
)

// controlPlaneStackFor names the control-plane stack of a project: samconfig.toml's default for
// the sample project, <project>-control-plane otherwise.
func controlPlaneStackFor(project string) string {
	if project == sampleProject {
		return controlPlaneStack
	}
	return project + "-control-plane"
}

func deployProject(t testing.TB, cp, p, app *tmpl, project string) (deployment, []string) {
	t.Helper()
	d := deployment{project: project}
	var problems []string
	cpStack := controlPlaneStackFor(project)
	cpEnv := newSampleEnv(cp, cpStack, map[string]any{"ProjectName": project})
	bucketARN, err := cpEnv.physical("ArtifactsBucket", "Arn")
	if err != nil {
		t.Fatal(err)
	}
	bucket := strings.TrimPrefix(bucketARN.(string), "arn:aws:s3:::")
	boundary := fmt.Sprintf("arn:aws:iam::123456789012:policy/lambda-pipeline/%s-ProjectBoundary-1A2B3C4D5E6F", cpStack)
	envs := []struct {
		stack, name string
		env         *sampleEnv
	}{
		{stackControlPlane, cpStack, cpEnv},
		{stackPipeline, project + "-pipeline", newSampleEnv(p, project+"-pipeline", map[string]any{
			"ProjectName": project, "TrackedBranch": "main", "ArtifactsBucket": bucket,
			"DeployerFunctionName": "lambda-pipeline-" + project + "-deployer", "RetentionDays": 90,
			"PipelineStackRoleArn":   "arn:aws:iam::123456789012:role/" + cpStack + "-PipelineStackRole-1A2B3C4D5E6F",
			"AppStackRoleArn":        "arn:aws:iam::123456789012:role/" + cpStack + "-AppStackRole-1A2B3C4D5E6F",
			"PermissionsBoundaryArn": boundary,
		})},
		{stackApp, project + "-app", newSampleEnv(app, project+"-app", map[string]any{
			"ProjectName": project, "FunctionName": project + "_function", "PermissionsBoundaryArn": boundary,
			"ArtifactsBucket": bucket, "ArtifactKey": project + "-pipeline/BuildOutpu/b1",
		})},
	}
	for _, e := range envs {
		d.resources = append(d.resources, ownedARN{e.stack, fmt.Sprintf("arn:aws:cloudformation:eu-west-1:123456789012:stack/%s/0f1e2d3c", e.name)})
		boundaries := boundaryPolicies(e.env.t)
		for _, id := range e.env.t.resourceIDs() {
			arns, err := resourceARNs(e.env, id)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %s: %v", e.stack, id, err))
			}
			for _, a := range arns {
				d.resources = append(d.resources, ownedARN{e.stack, a})
			}
			typ, props := e.env.t.resource(id)
			var docs []any
			switch {
			case typ == "AWS::IAM::Role":
				pols, _ := props["Policies"].([]any)
				for _, p := range pols {
					docs = append(docs, at(p, "PolicyDocument"))
				}
			case typ == "AWS::IAM::ManagedPolicy" && !boundaries[id]:
				docs = append(docs, props["PolicyDocument"])
			}
			for _, doc := range docs {
				for _, s := range statements(doc) {
					st := s.(map[string]any)
					if st["Effect"] != "Allow" {
						continue
					}
					for _, r := range stringList(st["Resource"]) {
						pat, err := e.env.evalString(r)
						if err != nil {
							problems = append(problems, fmt.Sprintf("%s %s: %v", e.stack, id, err))
							continue
						}
						if pat == "*" || pat == "" {
							continue
						}
						sid, _ := st["Sid"].(string)
						d.grants = append(d.grants, grantPattern{stack: e.stack, role: id, where: sid, pattern: pat})
					}
				}
			}
		}
	}
	return d, problems
}

// resourceARNs are the ARNs a resource has once deployed, with the sub-resources that IAM
// patterns reach (function versions and aliases, log streams, table indexes, objects).
func resourceARNs(e *sampleEnv, id string) ([]string, error) {
	typ, _ := e.t.resource(id)
	get := func(attr string) (string, error) {
		v, err := e.physical(id, attr)
		if err != nil {
			return "", err
		}
		return fmt.Sprint(v), nil
	}
	switch typ {
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		a, err := get("Arn")
		return []string{a, a + ":live", a + ":1"}, err
	case "AWS::Logs::LogGroup":
		a, err := get("Arn")
		base := strings.TrimSuffix(a, ":*")
		return []string{base, base + ":log-stream:s"}, err
	case "AWS::IAM::Role", "AWS::Events::Rule", "AWS::CodeCommit::Repository", "AWS::SQS::Queue":
		a, err := get("Arn")
		return []string{a}, err
	case "AWS::IAM::ManagedPolicy", "AWS::SNS::Topic":
		a, err := get("")
		return []string{a}, err
	case "AWS::DynamoDB::Table":
		a, err := get("Arn")
		return []string{a, a + "/index/byPipeline", a + "/stream/2026-01-01T00:00:00.000"}, err
	case "AWS::S3::Bucket":
		a, err := get("Arn")
		return []string{a, a + "/key"}, err
	case "AWS::CodeBuild::Project":
		a, err := get("Arn")
		name := strings.TrimPrefix(a, "arn:aws:codebuild:eu-west-1:123456789012:project/")
		return []string{a, "arn:aws:codebuild:eu-west-1:123456789012:report-group/" + name + "-go-test"}, err
	case "AWS::CodePipeline::Pipeline":
		name, err := get("")
		return []string{"arn:aws:codepipeline:eu-west-1:123456789012:" + name}, err
	}
	return nil, nil
}

// checkNameCollisions deploys every project of names side by side and reports (1) any grant of
// one deployment whose pattern matches a resource of another, and (2) any pattern of a deploy
// role (the CloudFormation roles a push acts through) that reaches beyond its own stack, but
// for the artifacts the application stack reads.
func checkNameCollisions(t testing.TB, cp, p, app *tmpl, names []string) []string {
	var problems []string
	deps := make([]deployment, len(names))
	for i, n := range names {
		d, probs := deployProject(t, cp, p, app, n)
		deps[i] = d
		problems = append(problems, probs...)
	}
	ownStack := map[string]string{"PipelineStackRole": stackPipeline, "AppStackRole": stackApp}
	for _, d := range deps {
		for _, g := range d.grants {
			for _, other := range deps {
				for _, r := range other.resources {
					if !arnLike(g.pattern, r.arn) {
						continue
					}
					if other.project != d.project {
						problems = append(problems, fmt.Sprintf("project %q: %s %s (%s) grants %s, which matches project %q's %s resource %s",
							d.project, g.stack, g.role, g.where, g.pattern, other.project, r.stack, r.arn))
						continue
					}
					own, isDeployRole := ownStack[g.role]
					artifacts := g.role == "AppStackRole" && g.where == "FunctionCode"
					if isDeployRole && r.stack != own && !artifacts {
						problems = append(problems, fmt.Sprintf("project %q: deploy role %s (%s) grants %s, which matches the %s's %s",
							d.project, g.role, g.where, g.pattern, r.stack, r.arn))
					}
				}
			}
		}
	}
	return problems
}

func TestNamesCannotCollide(t *testing.T) {
	cp, p, app := controlPlane(t), pipelineStack(t), lambdaStack(t)
	for _, n := range adversarialProjects {
		if !projectNamePattern(t, cp).MatchString(n) {
			t.Fatalf("%q is not a valid project name", n)
		}
	}
	d, _ := deployProject(t, cp, p, app, sampleProject)
	if len(d.grants) < 40 || len(d.resources) < 40 {
		t.Fatalf("only %d grants and %d resources: the test would prove little", len(d.grants), len(d.resources))
	}
	expectNoProblems(t, checkNameCollisions(t, cp, p, app, adversarialProjects))
}

// The same check finds the collisions of the old prefix patterns.
func TestCheckNameCollisionsFails(t *testing.T) {
	p, app := pipelineStack(t), lambdaStack(t)
	for _, c := range []struct {
		name   string
		mutate func(r map[string]any)
		want   string
	}{
		{"function prefix with a hyphen", func(r map[string]any) {
			statementOf(r, "AppStackRole", "Functions")["Resource"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${ProjectName}-*"}
		}, `project "a": control plane AppStackRole (Functions) grants arn:aws:lambda:eu-west-1:123456789012:function:a-*, which matches project "a-b"'s app stack resource`},
		{"role path without its slash", func(r map[string]any) {
			statementOf(r, "PipelineStackRole", "RoleLifecycle")["Resource"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/lambda-pipeline/project/${ProjectName}*"}
		}, `project "a": control plane PipelineStackRole (RoleLifecycle) grants arn:aws:iam::123456789012:role/lambda-pipeline/project/a*, which matches project "a-b"'s pipeline stack resource`},
		{"deploy role reaching the control plane", func(r map[string]any) {
			st := statementOf(r, "AppStackRole", "FunctionLogGroups")
			st["Resource"] = append(st["Resource"].([]any), map[string]any{"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/lambda-pipeline-${ProjectName}-*"})
		}, "deploy role AppStackRole (FunctionLogGroups)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp := controlPlane(t).clone()
			c.mutate(cp.root)
			problems := checkNameCollisions(t, cp, p, app, adversarialProjects)
			wantProblem(t, problems, c.want)
		})
	}
}

// projectNamePattern is template.yaml's AllowedPattern for ProjectName.
func projectNamePattern(t testing.TB, cp *tmpl) *regexp.Regexp {
	t.Helper()
	s, ok := at(cp.section("Parameters"), "ProjectName", "AllowedPattern").(string)
	if !ok {
		t.Fatal("ProjectName has no AllowedPattern")
	}
	return regexp.MustCompile(s)
}
