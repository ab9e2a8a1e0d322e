package infrastructure

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

const repoRoot = ".."

// The control plane's functions and the directories their Makefile targets build.
var controlPlaneFunctions = map[string]functionSpec{
	"OnPushFunction":          {dir: "on-push"},
	"OnPipelineEventFunction": {dir: "on-pipeline-event"},
	"DeployerFunction":        {dir: "deployer"},
	"ReconcilerFunction":      {dir: "reconciler"},
	"NotifierFunction":        {dir: "notifier"},
}

// Sample values, as in events/: the defaults of template.yaml, deployed as
// my-lambda-control-plane in eu-west-1 of account 123456789012.
const (
	sampleProject       = "my-lambda"
	controlPlaneStack   = "my-lambda-control-plane"
	samplePipelineStack = sampleProject + "-pipeline"
	// The boundary the control plane creates, as its ARN would read.
	sampleBoundary = "arn:aws:iam::123456789012:policy/lambda-pipeline/my-lambda-control-plane-ProjectBoundary-1A2B3C4D5E6F"
)

// The events each rule must and must not match. Beyond these, every sample in events/ is
// judged by pipelineEventExpectations. Names with a "derived-" prefix are sample events
// changed in code (derivedEvents).
var ruleExpectations = map[string]ruleExpectation{
	"OnPushRule": {
		// Other branches and repositories reach on-push, which skips them in code (each
		// project has its own branch; the rule cannot know them).
		match:   []string{"push-main", "push-other-branch", "derived-other-repository"},
		noMatch: []string{"push-tag", "branch-deleted", "derived-main-deleted"},
	},
	"OnPipelineEventRule": {
		match:   []string{"pipeline-started", "pipeline-failed", "stage-failed", "action-failed-build", "derived-other-pipeline"},
		noMatch: []string{"push-main", "derived-foreign-pipeline"},
	},
}

func mustLoad(t testing.TB, path string) *tmpl {
	t.Helper()
	tp, err := loadTemplate(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func controlPlane(t testing.TB) *tmpl  { return mustLoad(t, "template.yaml") }
func pipelineStack(t testing.TB) *tmpl { return mustLoad(t, "infrastructure/pipeline.yml") }
func lambdaStack(t testing.TB) *tmpl   { return mustLoad(t, "infrastructure/lambda.yml") }

func allTemplates(t testing.TB) []*tmpl {
	return []*tmpl{controlPlane(t), pipelineStack(t), lambdaStack(t)}
}

// pipelineParams are the values the control plane hands the pipeline stack, for evaluating
// pipeline.yml on its own.
func pipelineEnv(t testing.TB, p *tmpl, overrides map[string]any) *sampleEnv {
	t.Helper()
	params := map[string]any{
		"ProjectName":            sampleProject,
		"TrackedBranch":          "main",
		"ArtifactsBucket":        "my-lambda-control-plane-artifactsbucket-1a2b3c4d5e6f",
		"DeployerFunctionName":   "lambda-pipeline-my-lambda-deployer",
		"PipelineStackRoleArn":   "arn:aws:iam::123456789012:role/my-lambda-control-plane-PipelineStackRole-1A2B3C4D5E6F",
		"AppStackRoleArn":        "arn:aws:iam::123456789012:role/my-lambda-control-plane-AppStackRole-1A2B3C4D5E6F",
		"RetentionDays":          90,
		"PermissionsBoundaryArn": sampleBoundary,
	}
	for k, v := range overrides {
		params[k] = v
	}
	return newSampleEnv(p, samplePipelineStack, params)
}

func expectNoProblems(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

func TestReferences(t *testing.T) {
	for _, tp := range allTemplates(t) {
		t.Run(tp.name, func(t *testing.T) { expectNoProblems(t, checkReferences(tp)) })
	}
}

func TestSchema(t *testing.T) {
	for _, tp := range allTemplates(t) {
		t.Run(tp.name, func(t *testing.T) { expectNoProblems(t, checkSchema(tp)) })
	}
}

func TestIAMLeastPrivilege(t *testing.T) {
	for _, tp := range allTemplates(t) {
		t.Run(tp.name, func(t *testing.T) { expectNoProblems(t, checkIAM(tp)) })
	}
}

func TestLogGroupsExpire(t *testing.T) {
	for _, tp := range allTemplates(t) {
		t.Run(tp.name, func(t *testing.T) {
			if len(tp.resourcesOfType("AWS::Logs::LogGroup")) == 0 {
				t.Fatal("no log group: every function and build must own one, with retention")
			}
			expectNoProblems(t, checkLogGroups(tp))
		})
	}
}

func TestControlPlaneFunctions(t *testing.T) {
	expectNoProblems(t, checkFunctions(controlPlane(t), repoRoot, controlPlaneFunctions))
}

func TestBucketSecurity(t *testing.T) {
	cp := controlPlane(t)
	if len(cp.resourcesOfType("AWS::S3::Bucket")) != 1 {
		t.Fatal("want exactly one bucket, the artifacts bucket")
	}
	for _, tp := range allTemplates(t) {
		expectNoProblems(t, checkBuckets(tp))
	}
}

// loadEvents reads every sample event in events/ plus the derived ones, by name.
func loadEvents(t testing.TB) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		events[strings.TrimSuffix(filepath.Base(f), ".json")] = ev
	}
	for _, name := range []string{"push-main", "push-other-branch", "push-tag", "branch-deleted",
		"pipeline-started", "pipeline-failed", "stage-failed", "action-failed-build"} {
		if events[name] == nil {
			t.Fatalf("events/%s.json is missing", name)
		}
	}
	for name, ev := range derivedEvents(events) {
		events[name] = ev
	}
	return events
}

// derivedEvents are sample events changed in one respect, for the cases events/ lacks.
func derivedEvents(events map[string]map[string]any) map[string]map[string]any {
	edit := func(name string, change func(ev map[string]any)) map[string]any {
		ev := deepCopy(events[name]).(map[string]any)
		change(ev)
		return ev
	}
	return map[string]map[string]any{
		// The tracked branch itself deleted: no commit to build.
		"derived-main-deleted": edit("push-main", func(ev map[string]any) {
			d := ev["detail"].(map[string]any)
			d["event"] = "referenceDeleted"
			d["oldCommitId"] = d["commitId"]
			delete(d, "commitId")
		}),
		// A push to main of another repository in the account: routed to on-push, which
		// looks the repository up among the declared projects.
		"derived-other-repository": edit("push-main", func(ev map[string]any) {
			ev["resources"] = []any{"arn:aws:codecommit:eu-west-1:123456789012:someone-else"}
			ev["detail"].(map[string]any)["repositoryName"] = "someone-else"
		}),
		// Another project's pipeline: the same rule.
		"derived-other-pipeline": edit("pipeline-failed", func(ev map[string]any) {
			ev["detail"].(map[string]any)["pipeline"] = "someone-elses-pipeline"
		}),
		// A pipeline outside the naming convention: not ours.
		"derived-foreign-pipeline": edit("pipeline-failed", func(ev map[string]any) {
			ev["detail"].(map[string]any)["pipeline"] = "release-train"
		}),
	}
}

// pipelineEventExpectations widens the expectations to every sample in events/, judged
// independently of the patterns: CodePipeline state changes of any project's pipeline
// (<P>-pipeline) go to on-pipeline-event; a branch push that leaves a commit, of any
// repository, goes to on-push (which routes it by project and skips other branches in code:
// one rule set serves every project, docs/projects.md); nothing else goes to either.
func pipelineEventExpectations(events map[string]map[string]any) map[string]ruleExpectation {
	exp := map[string]ruleExpectation{}
	for id, e := range ruleExpectations {
		exp[id] = ruleExpectation{match: slices.Clone(e.match), noMatch: slices.Clone(e.noMatch)}
	}
	for _, name := range sortedKeys(events) {
		if strings.HasPrefix(name, "derived-") {
			continue
		}
		ev := events[name]
		dt, _ := ev["detail-type"].(string)
		wants := map[string]bool{
			"OnPipelineEventRule": ev["source"] == "aws.codepipeline" && strings.HasSuffix(dt, "Execution State Change") &&
				strings.HasSuffix(asString(at(ev, "detail", "pipeline")), "-pipeline"),
			"OnPushRule": ev["source"] == "aws.codecommit" && dt == "CodeCommit Repository State Change" &&
				slices.Contains([]any{"referenceCreated", "referenceUpdated"}, at(ev, "detail", "event")) &&
				at(ev, "detail", "referenceType") == "branch",
		}
		for id, e := range exp {
			switch {
			case slices.Contains(e.match, name) || slices.Contains(e.noMatch, name):
			case wants[id]:
				e.match = append(e.match, name)
			default:
				e.noMatch = append(e.noMatch, name)
			}
			exp[id] = e
		}
	}
	return exp
}

func TestEventRulesMatchSampleEvents(t *testing.T) {
	cp := controlPlane(t)
	events := loadEvents(t)
	exp := pipelineEventExpectations(events)
	if n := len(exp["OnPipelineEventRule"].match); n < 4 {
		t.Fatalf("only %d CodePipeline samples to match", n)
	}
	expectNoProblems(t, checkEventRules(cp, newSampleEnv(cp, controlPlaneStack, nil), exp, events))
}

// One rule set for every project: the rules name no repository, branch or pipeline of any
// one project (on-push and on-pipeline-event route by project in code).
func TestEventRulesNameNoProject(t *testing.T) {
	cp := controlPlane(t)
	for _, id := range []string{"OnPushRule", "OnPipelineEventRule"} {
		_, props := cp.resource(id)
		raw, _ := json.Marshal(props["EventPattern"])
		for _, word := range []string{"resources", "referenceName", "repositoryName", sampleProject} {
			if strings.Contains(string(raw), word) {
				t.Errorf("%s's pattern names %q: %s", id, word, raw)
			}
		}
	}
}

func TestPipelineStructure(t *testing.T) {
	p := pipelineStack(t)
	_, props := p.resource("Pipeline")
	if props["PipelineType"] != "V2" {
		t.Errorf("PipelineType = %v, want V2", props["PipelineType"])
	}
	if m := props["ExecutionMode"]; m != "SUPERSEDED" && m != "QUEUED" {
		t.Errorf("ExecutionMode = %v: choose SUPERSEDED or QUEUED explicitly (PARALLEL would race deploys)", m)
	}
	if props["RestartExecutionOnUpdate"] != true {
		t.Error("RestartExecutionOnUpdate is not true: a self-update would cancel the run and nothing would restart it")
	}
	type action struct{ stage, name, provider string }
	want := []action{
		{"Source", "Source", "CodeCommit"},
		{"CreateUpdatePipeline", "SelfUpdate", "Lambda"},
		{"BuildAndTest", "Build", "CodeBuild"},
		{"CreateUpdateLambda", "DeployFunction", "Lambda"},
	}
	var got []action
	for _, s := range props["Stages"].([]any) {
		for _, a := range at(s, "Actions").([]any) {
			got = append(got, action{at(s, "Name").(string), at(a, "Name").(string), at(a, "ActionTypeId", "Provider").(string)})
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("stages and actions:\n got %v\nwant %v", got, want)
	}
	stages := props["Stages"].([]any)
	source := at(stages, 0, "Actions", 0)
	if v := at(source, "Configuration", "PollForSourceChanges"); v != false {
		t.Errorf("PollForSourceChanges = %v, want false (on-push starts the runs)", v)
	}
	if at(source, "Configuration", "BranchName", "Ref") != "TrackedBranch" {
		t.Error("the Source action does not read TrackedBranch")
	}
	if at(stages, 2, "Actions", 0, "OutputArtifacts", 0, "Name") != "BuildOutput" {
		t.Error("the Build action does not produce BuildOutput")
	}
	name, err := pipelineEnv(t, p, nil).evalString(props["Name"])
	if err != nil || name != "my-lambda-pipeline" {
		t.Errorf("pipeline name = %q, %v; the control plane's rules and roles expect <ProjectName>-pipeline", name, err)
	}

	_, build := p.resource("BuildProject")
	if at(build, "Environment", "Type") != "ARM_CONTAINER" || !strings.Contains(at(build, "Environment", "Image").(string), "aarch64") {
		t.Errorf("build environment %v is not an ARM image", build["Environment"])
	}
	if at(build, "Source", "BuildSpec") != "buildspec.yml" {
		t.Errorf("BuildSpec = %v", at(build, "Source", "BuildSpec"))
	}
	if at(build, "LogsConfig", "CloudWatchLogs", "Status") != "ENABLED" || at(build, "LogsConfig", "CloudWatchLogs", "GroupName", "Ref") != "BuildLogGroup" {
		t.Errorf("build logs do not go to BuildLogGroup: %v", build["LogsConfig"])
	}
	env := pipelineEnv(t, p, nil)
	project, _ := env.evalString(build["Name"])
	group, _ := env.evalString(at(p.section("Resources"), "BuildLogGroup", "Properties", "LogGroupName"))
	if project != "my-lambda-build" || group != "/aws/codebuild/my-lambda-build" {
		t.Errorf("build project %q, log group %q: the control plane's observer policy expects <ProjectName>-build and /aws/codebuild/<ProjectName>-build", project, group)
	}
}

// The deploy actions' UserParameters parse as the deployer parses them, and say what the
// other stacks expect.
func TestDeployerUserParameters(t *testing.T) {
	p, cp, app := pipelineStack(t), controlPlane(t), lambdaStack(t)
	actions, problems := checkInvokeActions(p, pipelineEnv(t, p, nil), repoRoot)
	expectNoProblems(t, problems)
	byName := map[string]invokeAction{}
	for _, a := range actions {
		byName[a.name] = a
	}

	self, ok := byName["SelfUpdate"]
	if !ok {
		t.Fatal("no SelfUpdate action")
	}
	// The converger creates the pipeline stack as <project>-pipeline (deploy.ProjectStacks).
	if crStack := pipeline.PipelineStackOf(sampleProject); self.params.StackName != crStack || crStack != samplePipelineStack {
		t.Errorf("SelfUpdate deploys %q, but the control plane creates the pipeline stack as %q", self.params.StackName, crStack)
	}
	_ = cp
	if self.params.TemplatePath != "SourceArtifact::infrastructure/pipeline.yml" {
		t.Errorf("SelfUpdate templatePath = %q", self.params.TemplatePath)
	}
	// The pipeline stack keeps the control plane's values, except the boundary, which
	// SelfUpdate passes on explicitly: its parameter has a (fail-closed) default, which would
	// otherwise replace the value.
	if want := map[string]deploy.ParameterOverride{"PermissionsBoundaryArn": {Literal: sampleBoundary}}; !reflect.DeepEqual(self.params.ParameterOverrides, want) {
		t.Errorf("SelfUpdate overrides %+v, want only the boundary it was given (%+v)", self.params.ParameterOverrides, want)
	}

	dep, ok := byName["DeployFunction"]
	if !ok {
		t.Fatal("no DeployFunction action")
	}
	if dep.params.StackName != sampleProject+"-app" || dep.params.TemplatePath != "SourceArtifact::infrastructure/lambda.yml" {
		t.Errorf("DeployFunction deploys %q from %q", dep.params.StackName, dep.params.TemplatePath)
	}
	wantOverrides := map[string]deploy.ParameterOverride{
		// The function's name carries the project's prefix and "_", which AppStackRole requires.
		"FunctionName":           {Literal: sampleProject + "_function"},
		"ProjectName":            {Literal: sampleProject},
		"PermissionsBoundaryArn": {Literal: sampleBoundary},
		"ArtifactsBucket":        {From: &deploy.ArtifactAttribute{Artifact: "BuildOutput", Attr: deploy.AttrBucket}},
		"ArtifactKey":            {From: &deploy.ArtifactAttribute{Artifact: "BuildOutput", Attr: deploy.AttrKey}},
	}
	if !reflect.DeepEqual(dep.params.ParameterOverrides, wantOverrides) {
		t.Errorf("DeployFunction overrides %+v", dep.params.ParameterOverrides)
	}
	appParams := app.section("Parameters")
	for name := range dep.params.ParameterOverrides {
		if appParams[name] == nil {
			t.Errorf("DeployFunction overrides %s, which lambda.yml does not declare", name)
		}
	}
	for _, name := range sortedKeys(appParams) {
		_, hasDefault := appParams[name].(map[string]any)["Default"]
		if _, overridden := dep.params.ParameterOverrides[name]; !hasDefault && !overridden {
			t.Errorf("lambda.yml parameter %s has no default and DeployFunction does not set it", name)
		}
	}

	// Both name the pipeline and its execution, the key of an approval when a deploy widens
	// IAM (docs/security.md).
	for _, a := range []invokeAction{self, dep} {
		if a.params.Pipeline != sampleProject+"-pipeline" || a.params.Execution != sampleExecutionID {
			t.Errorf("%s names pipeline %q, execution %q; want %s-pipeline and #{codepipeline.PipelineExecutionId}", a.name, a.params.Pipeline, a.params.Execution, sampleProject)
		}
	}

	// Both stacks' roles come from the control plane's parameters.
	for _, a := range []invokeAction{self, dep} {
		if !strings.HasPrefix(a.params.RoleARN, "arn:aws:iam::123456789012:role/my-lambda-control-plane-") {
			t.Errorf("%s roleArn = %q", a.name, a.params.RoleARN)
		}
	}

	// CodePipeline caps UserParameters at 1000 characters: still fine with the longest
	// project name and long role names.
	long := strings.Repeat("p", 24)
	longRole := "arn:aws:iam::123456789012:role/" + strings.Repeat("r", 64)
	longBoundary := "arn:aws:iam::123456789012:policy/lambda-pipeline/" + strings.Repeat("b", 128)
	_, problems = checkInvokeActions(p, pipelineEnv(t, p, map[string]any{
		"ProjectName": long, "PipelineStackRoleArn": longRole, "AppStackRoleArn": longRole,
		"PermissionsBoundaryArn": longBoundary,
	}), repoRoot)
	expectNoProblems(t, problems)
}

// The converger sets exactly the parameters of pipeline.yml (deploy.ProjectSettings), none of
// which has a default, so that the pipeline's self-update keeps them; and the deployer gets
// every control-plane value it passes from template.yaml.
func TestConvergerSetsEveryPipelineParameter(t *testing.T) {
	cp, p := controlPlane(t), pipelineStack(t)
	declared := sortedKeys(p.section("Parameters"))
	got := sortedKeys(deploy.ProjectSettings{}.Parameters(pipeline.Project{Name: sampleProject, Branch: "main"}))
	if !reflect.DeepEqual(got, declared) {
		t.Errorf("the converger sets %v; pipeline.yml declares %v", got, declared)
	}
	for _, name := range declared {
		if name == "PermissionsBoundaryArn" {
			// SelfUpdate passes it on explicitly (TestDeployerUserParameters); the default names
			// a policy of no real account, which the deploy roles refuse (fails closed).
			if d, _ := at(p.section("Parameters"), name, "Default").(string); !strings.HasPrefix(d, "arn:aws:iam::000000000000:") {
				t.Errorf("pipeline.yml parameter %s defaults to %v; only a placeholder naming no policy of the account is safe", name, d)
			}
			continue
		}
		if _, ok := p.section("Parameters")[name].(map[string]any)["Default"]; ok {
			t.Errorf("pipeline.yml parameter %s has a default: its self-update would reset the control plane's value to it", name)
		}
	}
	env := at(cp.section("Resources"), "DeployerFunction", "Properties", "Environment", "Variables").(map[string]any)
	for _, name := range []string{"CONTROL_PLANE", "ARTIFACTS_BUCKET", "PIPELINE_STACK_ROLE_ARN", "APP_STACK_ROLE_ARN", "PERMISSIONS_BOUNDARY_ARN"} {
		if env[name] == nil {
			t.Errorf("the deployer's environment lacks %s", name)
		}
	}
	if at(cp.section("Resources"), "DeployerFunction", "Properties", "Timeout") == nil {
		t.Error("the deployer has no explicit timeout")
	}
	_, sched := cp.resource("ConvergeSchedule")
	if res, attr, _ := getAttArgs(at(sched, "Targets", 0, "Arn", "Fn::GetAtt")); res != "DeployerFunction" || attr != "Arn" {
		t.Errorf("ConvergeSchedule does not invoke the deployer: %v", sched["Targets"])
	}
}

func TestRunsTableDesign(t *testing.T) {
	cp := controlPlane(t)
	_, props := cp.resource("RunsTable")
	got, err := json.Marshal(map[string]any{
		"billing": props["BillingMode"],
		"attrs":   props["AttributeDefinitions"],
		"keys":    props["KeySchema"],
		"gsis":    props["GlobalSecondaryIndexes"],
		"ttl":     props["TimeToLiveSpecification"],
		"pitr":    props["PointInTimeRecoverySpecification"],
		"stream":  props["StreamSpecification"],
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"attrs":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"S"},{"AttributeName":"gsi1pk","AttributeType":"S"},{"AttributeName":"gsi1sk","AttributeType":"S"}],` +
		`"billing":"PAY_PER_REQUEST",` +
		`"gsis":[{"IndexName":"byPipeline","KeySchema":[{"AttributeName":"gsi1pk","KeyType":"HASH"},{"AttributeName":"gsi1sk","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}],` +
		`"keys":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],` +
		`"pitr":{"PointInTimeRecoveryEnabled":true},` +
		`"stream":{"StreamViewType":"NEW_IMAGE"},` +
		`"ttl":{"AttributeName":"expiresAt","Enabled":true}}`
	if string(got) != want {
		t.Errorf("runs table:\n got %s\nwant %s", got, want)
	}
}

func TestControlPlaneParametersAndOutputs(t *testing.T) {
	cp := controlPlane(t)
	defaults := map[string]any{
		"Projects": "", "SlackWebhookSecretName": "",
		"NotificationEmail": "", "RetentionDays": 90, "LinkExpiryHours": 24, "StaleAfterMinutes": 30,
		"PermissionsBoundaryArn": "", "SlackWebhookKmsKeyArn": "", "WeeklyDigest": "off",
	}
	params := cp.section("Parameters")
	if got := sortedKeys(params); !reflect.DeepEqual(got, sortedKeys(defaults)) {
		t.Errorf("parameters %v, want %v", got, sortedKeys(defaults))
	}
	for name, want := range defaults {
		if got := at(params, name, "Default"); got != want {
			t.Errorf("%s default = %v, want %v", name, got, want)
		}
	}
	// AllowedPattern holds the parameters' defaults.
	for _, name := range sortedKeys(params) {
		pat, ok := at(params, name, "AllowedPattern").(string)
		if !ok {
			continue
		}
		if !regexp.MustCompile(pat).MatchString(fmtDefault(at(params, name, "Default"))) {
			t.Errorf("%s: default %v does not match its own AllowedPattern %s", name, at(params, name, "Default"), pat)
		}
	}

	env := newSampleEnv(cp, controlPlaneStack, nil)
	// Per-project values (clone URLs, pipeline) are lp projects' to show, not outputs.
	wantOutputs := map[string]string{
		"AddProjectCommand": "lp project add NAME [--branch main]",
	}
	for name, want := range wantOutputs {
		got, err := env.evalString(at(cp.section("Outputs"), name, "Value"))
		if err != nil || got != want {
			t.Errorf("output %s = %q (%v), want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"ArtifactsBucketName", "RunsTableName", "NotificationsTopicArn"} {
		if at(cp.section("Outputs"), name, "Value") == nil {
			t.Errorf("no output %s", name)
		}
	}

	// Repositories are the converger's (never deleted: DeployerRole has no
	// codecommit:DeleteRepository), not this template's.
	if _, ok := cp.section("Resources")["Repository"]; ok {
		t.Error("template.yaml declares a repository: it names no project")
	}
	if _, props := cp.resource("NotificationEmailSubscription"); props == nil ||
		cp.section("Resources")["NotificationEmailSubscription"].(map[string]any)["Condition"] != "HasNotificationEmail" {
		t.Error("the e-mail subscription is not conditional on NotificationEmail")
	}
	// The Slack webhook reaches the functions as a name to look up, never as a value.
	vars := at(cp.root, "Globals", "Function", "Environment", "Variables")
	if at(vars, "SLACK_WEBHOOK_PARAMETER", "Ref") != "SlackWebhookSecretName" {
		t.Errorf("SLACK_WEBHOOK_PARAMETER = %v", at(vars, "SLACK_WEBHOOK_PARAMETER"))
	}
	if strings.Contains(at(params, "SlackWebhookSecretName", "AllowedPattern").(string), ":") {
		t.Error("SlackWebhookSecretName would accept a URL")
	}
}

func fmtDefault(v any) string {
	b, _ := json.Marshal(v)
	if s, ok := v.(string); ok {
		return s
	}
	return string(b)
}

func TestLambdaStack(t *testing.T) {
	app := lambdaStack(t)
	_, fn := app.resource("Function")
	if at(fn, "Code", "S3Bucket", "Ref") != "ArtifactsBucket" || at(fn, "Code", "S3Key", "Ref") != "ArtifactKey" {
		t.Errorf("Code = %v, want the ArtifactsBucket/ArtifactKey parameters", fn["Code"])
	}
	if fn["Runtime"] != "provided.al2023" || fn["Handler"] != "bootstrap" || !reflect.DeepEqual(fn["Architectures"], []any{"arm64"}) {
		t.Errorf("runtime %v, handler %v, architectures %v", fn["Runtime"], fn["Handler"], fn["Architectures"])
	}
	if at(fn, "FunctionName", "Ref") != "FunctionName" {
		t.Errorf("FunctionName = %v, want the FunctionName parameter", fn["FunctionName"])
	}
	if len(app.resourcesOfType("AWS::Lambda::Alias")) != 1 || len(app.resourcesOfType("AWS::IAM::Role")) != 1 {
		t.Error("want one alias and one role")
	}
	// Renaming the function is a one-line change.
	raw, err := os.ReadFile(filepath.Join(repoRoot, "infrastructure", "lambda.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(raw, []byte("my-lambda_function")); n != 1 {
		t.Errorf("my-lambda_function appears %d times in lambda.yml, want once (the FunctionName default)", n)
	}
	// The app stack's role may only manage <ProjectName>_* functions.
	def := at(app.section("Parameters"), "FunctionName", "Default").(string)
	if !strings.HasPrefix(def, sampleProject+"_") {
		t.Errorf("default FunctionName %q is outside the deploy role's %s_* scope", def, sampleProject)
	}
	pat := regexp.MustCompile(at(app.section("Parameters"), "FunctionName", "AllowedPattern").(string))
	if !pat.MatchString(def) || pat.MatchString("other-project-function") {
		t.Errorf("FunctionName's AllowedPattern %s should hold <project>_<name> and nothing else", pat)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "functions", "app", "main.go")); err != nil {
		t.Error(err)
	}
}

func TestEmbeddedTemplates(t *testing.T) {
	for name, embedded := range map[string][]byte{"pipeline.yml": PipelineTemplate, "lambda.yml": LambdaTemplate} {
		onDisk, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(embedded, onDisk) {
			t.Errorf("%s: embedded copy differs from the file", name)
		}
		// The deployer passes templates as TemplateBody, which CloudFormation caps.
		if len(embedded) > 51200 {
			t.Errorf("%s is %d bytes; TemplateBody allows 51,200", name, len(embedded))
		}
	}
}

func TestBuildspec(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "buildspec.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Version string
		Phases  map[string]struct {
			OnFailure string   `yaml:"on-failure"`
			Commands  []string `yaml:"commands"`
		}
		Reports   map[string]map[string]any
		Artifacts struct {
			BaseDirectory string   `yaml:"base-directory"`
			Files         []string `yaml:"files"`
		}
	}
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Version != "0.2" {
		t.Errorf("version %q", spec.Version)
	}
	all := ""
	for _, ph := range []string{"install", "pre_build", "build", "post_build"} {
		all += strings.Join(spec.Phases[ph].Commands, "\n") + "\n"
	}
	for _, want := range []string{"go vet", "gotestsum", "go test", "GOOS=linux GOARCH=arm64 CGO_ENABLED=0",
		"-tags lambda.norpc", "-o out/bootstrap ./functions/app", "zip"} {
		if !strings.Contains(all, want) {
			t.Errorf("buildspec does not run %q", want)
		}
	}
	// BuildOutput must exist whatever fails: the phases go on, and out/ is created first.
	for _, ph := range []string{"install", "pre_build", "build"} {
		if spec.Phases[ph].OnFailure != "CONTINUE" {
			t.Errorf("phase %s: on-failure %q, want CONTINUE", ph, spec.Phases[ph].OnFailure)
		}
	}
	if first := spec.Phases["install"].Commands[0]; !strings.Contains(first, "mkdir -p out/logs out/reports") {
		t.Errorf("the first command (%q) should create out/logs and out/reports", first)
	}
	if spec.Artifacts.BaseDirectory != "out" || !slices.Equal(spec.Artifacts.Files, []string{"**/*"}) {
		t.Errorf("artifacts: %+v", spec.Artifacts)
	}
	if len(spec.Reports) == 0 {
		t.Error("no test reports")
	}
}

func TestSamconfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, want := range []string{"[default.global.parameters]", "[default.build.parameters]", "[default.deploy.parameters]",
		"[default.local_invoke.parameters]", `capabilities = "CAPABILITY_IAM"`, "resolve_s3 = true", `stack_name = "`} {
		if !strings.Contains(text, want) {
			t.Errorf("samconfig.toml lacks %s", want)
		}
	}
	params := controlPlane(t).section("Parameters")
	for _, m := range regexp.MustCompile(`parameter_overrides = "(.*)"`).FindAllStringSubmatch(text, -1) {
		for _, kv := range regexp.MustCompile(`(\w+)=`).FindAllStringSubmatch(m[1], -1) {
			if params[kv[1]] == nil {
				t.Errorf("samconfig.toml overrides %s, which template.yaml does not declare", kv[1])
			}
		}
	}
	// Not the name of a stack the control plane creates.
	stack := regexp.MustCompile(`stack_name = "([^"]+)"`).FindStringSubmatch(text)
	if stack == nil || stack[1] == samplePipelineStack || stack[1] == sampleProject+"-app" {
		t.Errorf("stack_name %v", stack)
	}
}

// A deployer invocation that fails every retry carries the job's artifact credentials: it goes
// to a queue of its own that keeps it at most an hour, never to the shared 14-day dead-letter
// queue (issue 9, defect 12).
func TestDeployerFailuresAreKeptBriefly(t *testing.T) {
	cp := controlPlane(t)
	globals, _ := at(cp.root, "Globals", "Function").(map[string]any)
	_, props := cp.resource("DeployerFunction")
	fn := mergeGlobals(globals, props)
	dest, _, _ := getAttArgs(at(fn, "EventInvokeConfig", "DestinationConfig", "OnFailure", "Destination", "Fn::GetAtt"))
	if dest == "" || dest == "DeadLetterQueue" {
		t.Fatalf("the deployer's failures go to %q, want a queue of their own", dest)
	}
	typ, q := cp.resource(dest)
	if retention, _ := q["MessageRetentionPeriod"].(int); typ != "AWS::SQS::Queue" || retention == 0 || retention > 3600 {
		t.Errorf("%s (%s) keeps messages %v s, want at most 3600", dest, typ, q["MessageRetentionPeriod"])
	}
	alarmed := false
	for _, id := range cp.resourcesOfType("AWS::CloudWatch::Alarm") {
		_, a := cp.resource(id)
		if res, _, _ := getAttArgs(at(a, "Dimensions", 0, "Value", "Fn::GetAtt")); res == dest {
			alarmed = true
		}
	}
	if !alarmed {
		t.Errorf("no alarm watches %s", dest)
	}
}

func asString(v any) string { s, _ := v.(string); return s }
