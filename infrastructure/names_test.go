package infrastructure

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
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

// One control plane per account serves every project (docs/projects.md): deployAccount deploys
// it once (the sample stack name), and each project's pipeline and application stacks as the
// converger and the pipeline create them.
func deployAccount(t testing.TB, cp, p, app *tmpl, projects []string) (deployment, []deployment, []string) {
	t.Helper()
	var problems []string
	cpEnv := newSampleEnv(cp, controlPlaneStack, nil)
	bucketARN, err := cpEnv.physical("ArtifactsBucket", "Arn")
	if err != nil {
		t.Fatal(err)
	}
	bucket := strings.TrimPrefix(bucketARN.(string), "arn:aws:s3:::")
	boundary := fmt.Sprintf("arn:aws:iam::123456789012:policy/lambda-pipeline/%s-ProjectBoundary-1A2B3C4D5E6F", controlPlaneStack)
	control := deployment{}
	problems = append(problems, collect(&control, stackControlPlane, controlPlaneStack, cpEnv)...)
	var deps []deployment
	for _, project := range projects {
		d := deployment{project: project}
		problems = append(problems, collect(&d, stackPipeline, project+"-pipeline", newSampleEnv(p, project+"-pipeline", map[string]any{
			"ProjectName": project, "TrackedBranch": "main", "ArtifactsBucket": bucket,
			"DeployerFunctionName": controlPlaneStack + "-deployer", "RetentionDays": 90,
			"PipelineStackRoleArn":   "arn:aws:iam::123456789012:role/" + controlPlaneStack + "-PipelineStackRole-1A2B3C4D5E6F",
			"AppStackRoleArn":        "arn:aws:iam::123456789012:role/" + controlPlaneStack + "-AppStackRole-1A2B3C4D5E6F",
			"PermissionsBoundaryArn": boundary,
		}))...)
		problems = append(problems, collect(&d, stackApp, project+"-app", newSampleEnv(app, project+"-app", map[string]any{
			"ProjectName": project, "FunctionName": project + "_function", "PermissionsBoundaryArn": boundary,
			"ArtifactsBucket": bucket, "ArtifactKey": project + "-pipeline/BuildOutpu/b1",
		}))...)
		deps = append(deps, d)
	}
	return control, deps, problems
}

// collect adds one stack's resources and grants (Allow statements, Resource "*" aside) to d.
func collect(d *deployment, stack, name string, env *sampleEnv) []string {
	var problems []string
	d.resources = append(d.resources, ownedARN{stack, fmt.Sprintf("arn:aws:cloudformation:eu-west-1:123456789012:stack/%s/0f1e2d3c", name)})
	boundaries := boundaryPolicies(env.t)
	for _, id := range env.t.resourceIDs() {
		arns, err := resourceARNs(env, id)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %v", stack, id, err))
		}
		for _, a := range arns {
			d.resources = append(d.resources, ownedARN{stack, a})
		}
		typ, props := env.t.resource(id)
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
					pat, err := env.evalString(r)
					if err != nil {
						problems = append(problems, fmt.Sprintf("%s %s: %v", stack, id, err))
						continue
					}
					if pat == "*" || pat == "" {
						continue
					}
					sid, _ := st["Sid"].(string)
					d.grants = append(d.grants, grantPattern{stack: stack, role: id, where: sid, pattern: pat})
				}
			}
		}
	}
	return problems
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

// checkNameCollisions deploys one control plane and every project of names side by side and
// reports (1) any grant of a project's own roles (pipeline.yml, lambda.yml) that matches
// another project's resource or the control plane's; (2) any pattern of a deploy role (the
// CloudFormation roles a push acts through) that reaches the control plane, or a stack of the
// other kind, but for the artifacts the application stack reads.
//
// What changed with one control plane per account: the two deploy roles are the account's,
// shared by its projects, so they reach every project's stacks of their kind (a pusher of one
// project can ask the deployer for another project's stack: docs/security.md). Their patterns
// still end in a character no project name contains, so they reach nothing else.
func checkNameCollisions(t testing.TB, cp, p, app *tmpl, names []string) []string {
	control, deps, problems := deployAccount(t, cp, p, app, names)
	everyone := append([]deployment{control}, deps...)
	for _, d := range deps {
		for _, g := range d.grants {
			for _, other := range everyone {
				for _, r := range other.resources {
					if !arnLike(g.pattern, r.arn) || other.project == d.project {
						continue
					}
					// The boundary's documented exceptions (docs/security.md): the pipeline
					// reads and writes the shared artifacts bucket and invokes the deployer.
					if other.project == "" && (strings.HasPrefix(r.arn, "arn:aws:s3:::") || strings.HasSuffix(r.arn, ":function:"+controlPlaneStack+"-deployer")) &&
						g.stack == stackPipeline {
						continue
					}
					who := fmt.Sprintf("project %q's", other.project)
					if other.project == "" {
						who = "the control plane's"
					}
					problems = append(problems, fmt.Sprintf("project %q: %s %s (%s) grants %s, which matches %s %s resource %s",
						d.project, g.stack, g.role, g.where, g.pattern, who, r.stack, r.arn))
				}
			}
		}
	}
	ownStack := map[string]string{"PipelineStackRole": stackPipeline, "AppStackRole": stackApp}
	for _, g := range control.grants {
		own, isDeployRole := ownStack[g.role]
		if !isDeployRole || (g.role == "AppStackRole" && g.where == "FunctionCode") {
			continue
		}
		for _, other := range everyone {
			for _, r := range other.resources {
				if arnLike(g.pattern, r.arn) && r.stack != own {
					problems = append(problems, fmt.Sprintf("deploy role %s (%s) grants %s, which matches the %s's %s",
						g.role, g.where, g.pattern, r.stack, r.arn))
				}
			}
		}
	}
	return problems
}

func TestNamesCannotCollide(t *testing.T) {
	cp, p, app := controlPlane(t), pipelineStack(t), lambdaStack(t)
	for _, n := range adversarialProjects {
		if !projectNamePattern(t, p).MatchString(n) || pipeline.ValidateProjectName(n) != nil {
			t.Fatalf("%q is not a valid project name", n)
		}
	}
	control, deps, _ := deployAccount(t, cp, p, app, []string{sampleProject})
	if n, m := len(control.grants)+len(deps[0].grants), len(control.resources)+len(deps[0].resources); n < 40 || m < 40 {
		t.Fatalf("only %d grants and %d resources: the test would prove little", n, m)
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
		{"function pattern without its underscore", func(r map[string]any) {
			statementOf(r, "AppStackRole", "Functions")["Resource"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"}
		}, `deploy role AppStackRole (Functions) grants arn:aws:lambda:eu-west-1:123456789012:function:*, which matches the control plane's`},
		{"role pattern without the project path", func(r map[string]any) {
			statementOf(r, "PipelineStackRole", "RoleLifecycle")["Resource"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
		}, `deploy role PipelineStackRole (RoleLifecycle) grants arn:aws:iam::123456789012:role/*, which matches the control plane's`},
		{"deploy role reaching the control plane", func(r map[string]any) {
			st := statementOf(r, "AppStackRole", "FunctionLogGroups")
			st["Resource"] = append(st["Resource"].([]any), map[string]any{"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${AWS::StackName}-*"})
		}, "deploy role AppStackRole (FunctionLogGroups)"},
		{"pipeline role reaching the application stacks", func(r map[string]any) {
			statementOf(r, "PipelineStackRole", "RoleLifecycle")["Resource"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/lambda-pipeline/project/*"}
		}, `deploy role PipelineStackRole (RoleLifecycle) grants arn:aws:iam::123456789012:role/lambda-pipeline/project/*, which matches the app stack's`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp := controlPlane(t).clone()
			c.mutate(cp.root)
			problems := checkNameCollisions(t, cp, p, app, adversarialProjects)
			wantProblem(t, problems, c.want)
		})
	}
}

// projectNamePattern is pipeline.yml's AllowedPattern for ProjectName (the converger checks
// the same with pipeline.ValidateProjectName).
func projectNamePattern(t testing.TB, p *tmpl) *regexp.Regexp {
	t.Helper()
	s, ok := at(p.section("Parameters"), "ProjectName", "AllowedPattern").(string)
	if !ok {
		t.Fatal("ProjectName has no AllowedPattern")
	}
	return regexp.MustCompile(s)
}
