package projects_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// The control plane's world: the CloudFormation fake on the test's clock, the real deploy
// engine behind deploy.ProjectStacks, the project items in memory, and repositories that the
// test can inspect. The clock moves only when the test says so (one minute per pass, the
// schedule's period).

const controlPlane = "lambda-pipeline"

var settings = deploy.ProjectSettings{
	ControlPlane: controlPlane, ArtifactsBucket: "lambda-pipeline-artifacts-123456789012-us-east-1",
	DeployerFunctionName:   "lambda-pipeline-deployer",
	PipelineStackRoleARN:   "arn:aws:iam::123456789012:role/lambda-pipeline-PipelineStackRole-1A2B3C4D5E6F",
	AppStackRoleARN:        "arn:aws:iam::123456789012:role/lambda-pipeline-AppStackRole-1A2B3C4D5E6F",
	PermissionsBoundaryARN: "arn:aws:iam::123456789012:policy/lambda-pipeline/lambda-pipeline-ProjectBoundary-1A2B3C4D5E6F",
	RetentionDays:          90,
}

type repos struct {
	mu    sync.Mutex
	names map[string]bool
	calls int
}

func (r *repos) Ensure(_ context.Context, name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names == nil {
		r.names = map[string]bool{}
	}
	r.names[name] = true
	r.calls++
	return "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/" + name, nil
}

func (r *repos) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[name]
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// counting wraps the CloudFormation client: how many calls are in flight at once, at most.
type counting struct {
	deploy.StacksAPI
	inFlight, max, total atomic.Int64
}

func (c *counting) enter() func() {
	n := c.inFlight.Add(1)
	c.total.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { c.inFlight.Add(-1) }
}

func (c *counting) DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, o ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	defer c.enter()()
	return c.StacksAPI.DescribeStacks(ctx, in, o...)
}

func (c *counting) CreateChangeSet(ctx context.Context, in *cloudformation.CreateChangeSetInput, o ...func(*cloudformation.Options)) (*cloudformation.CreateChangeSetOutput, error) {
	defer c.enter()()
	return c.StacksAPI.CreateChangeSet(ctx, in, o...)
}

func (c *counting) DescribeChangeSet(ctx context.Context, in *cloudformation.DescribeChangeSetInput, o ...func(*cloudformation.Options)) (*cloudformation.DescribeChangeSetOutput, error) {
	defer c.enter()()
	return c.StacksAPI.DescribeChangeSet(ctx, in, o...)
}

func (c *counting) ExecuteChangeSet(ctx context.Context, in *cloudformation.ExecuteChangeSetInput, o ...func(*cloudformation.Options)) (*cloudformation.ExecuteChangeSetOutput, error) {
	defer c.enter()()
	return c.StacksAPI.ExecuteChangeSet(ctx, in, o...)
}

func (c *counting) GetTemplateSummary(ctx context.Context, in *cloudformation.GetTemplateSummaryInput, o ...func(*cloudformation.Options)) (*cloudformation.GetTemplateSummaryOutput, error) {
	defer c.enter()()
	return c.StacksAPI.GetTemplateSummary(ctx, in, o...)
}

type world struct {
	t      *testing.T
	cfn    *awsfake.CloudFormation
	calls  *counting
	store  *runstore.ProjectsMemory
	repos  *repos
	clock  *clock
	conv   *projects.Converger
	passes int
}

func newWorld(t *testing.T, parameter string) *world {
	t.Helper()
	w := &world{t: t, cfn: awsfake.NewCloudFormation(t), store: runstore.NewProjectsMemory(), repos: &repos{},
		clock: &clock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}}
	w.cfn.UseClock(w.clock.Now)
	w.calls = &counting{StacksAPI: w.cfn.Client(t)}
	param, err := pipeline.ParseProjects(parameter)
	if err != nil {
		t.Fatal(err)
	}
	w.conv = &projects.Converger{
		Store: w.store, Repositories: w.repos, Clock: w.clock, Parameter: param,
		Stacks:    &deploy.ProjectStacks{Stacks: w.calls, Region: awsfake.Region, Template: infrastructure.PipelineTemplate, Settings: settings},
		SpecExtra: []string{"template-v1"},
	}
	return w
}

// pass runs one scheduled pass, then lets a minute go by.
func (w *world) pass() projects.Report {
	w.t.Helper()
	rep, err := w.conv.Run(context.Background())
	if err != nil {
		w.t.Fatalf("pass %d: %v", w.passes, err)
	}
	w.passes++
	w.clock.advance(time.Minute)
	return rep
}

// settle runs passes until no project is converging or removing (at most limit passes).
func (w *world) settle(limit int) projects.Report {
	w.t.Helper()
	for i := 0; i < limit; i++ {
		rep := w.pass()
		busy := rep.Deferred > 0 || rep.Errors > 0
		for _, p := range rep.Projects {
			if p.Status.State == pipeline.ProjectConverging || p.Status.State == pipeline.ProjectRemoving {
				busy = true
			}
		}
		if !busy {
			return rep
		}
	}
	w.t.Fatalf("not settled after %d passes", limit)
	return projects.Report{}
}

func (w *world) status(name string) pipeline.ProjectStatus {
	w.t.Helper()
	d, ok, _ := w.store.GetProject(context.Background(), name)
	if !ok {
		return pipeline.ProjectStatus{}
	}
	return d.Status
}

func TestThreeProjectsOneFailsOneRemovedAndRerunsChangeNothing(t *testing.T) {
	ctx := context.Background()
	// Two projects in the parameter (the unattended sam deploy), one added with lp project add.
	w := newWorld(t, "alpha, beta:release")
	if err := w.store.Declare(ctx, pipeline.Project{Name: "gamma", Branch: "develop"}, true, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// beta's stack cannot be created (the create rolls back, ROLLBACK_COMPLETE).
	w.cfn.FailNextDeploy("beta-pipeline", awsfake.DeployFailure{Resource: "Pipeline", Reason: "Resource handler returned message: \"Pipeline name beta-pipeline is already in use\""})

	// The first pass starts all three, and writes "converging" for each.
	first := w.pass()
	for _, n := range []string{"alpha", "beta", "gamma"} {
		if p, _ := first.ByName(n); p.Status.State != pipeline.ProjectConverging {
			t.Errorf("%s after the first pass: %+v, want converging", n, p.Status)
		}
	}
	w.settle(60)

	for _, n := range []string{"alpha", "gamma"} {
		st := w.status(n)
		if st.State != pipeline.ProjectReady {
			t.Fatalf("%s: %+v, want ready", n, st)
		}
		stack, ok := w.cfn.Stack(n + "-pipeline")
		if !ok || stack.Status != "CREATE_COMPLETE" {
			t.Fatalf("%s-pipeline: %+v", n, stack)
		}
		if stack.Tags[deploy.TagProject] != n || stack.Tags[deploy.TagControlPlane] != controlPlane {
			t.Errorf("%s-pipeline tags: %v", n, stack.Tags)
		}
		if stack.RoleARN != settings.PipelineStackRoleARN || stack.Parameters["PermissionsBoundaryArn"] != settings.PermissionsBoundaryARN {
			t.Errorf("%s-pipeline: role %s, boundary %s: the boundary must be every project stack's floor", n, stack.RoleARN, stack.Parameters["PermissionsBoundaryArn"])
		}
		if !w.repos.has(n) || st.RepositoryCloneURL == "" {
			t.Errorf("%s: no repository (%q)", n, st.RepositoryCloneURL)
		}
	}
	if got := mustStack(t, w.cfn, "gamma-pipeline").Parameters["TrackedBranch"]; got != "develop" {
		t.Errorf("gamma tracks %q, want develop (lp project add --branch)", got)
	}
	if got := mustStack(t, w.cfn, "alpha-pipeline").Parameters["TrackedBranch"]; got != "main" {
		t.Errorf("alpha tracks %q, want main", got)
	}
	beta := w.status("beta")
	if beta.State != pipeline.ProjectFailed || !strings.Contains(beta.Reason, "Pipeline name beta-pipeline is already in use") {
		t.Fatalf("beta: %+v, want failed with CloudFormation's root cause", beta)
	}

	// Re-running changes nothing: no write, no change set, while beta waits for its retry.
	writes, changeSets := w.store.Writes, w.cfn.Calls("CreateChangeSet")
	for range 3 {
		w.pass()
	}
	if w.store.Writes != writes || w.cfn.Calls("CreateChangeSet") != changeSets {
		t.Errorf("re-runs wrote %d items and created %d change sets, want none", w.store.Writes-writes, w.cfn.Calls("CreateChangeSet")-changeSets)
	}

	// Two passes at once (a retried schedule overlapping the next): still nothing.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = w.conv.Run(ctx) }()
	}
	wg.Wait()
	if w.store.Writes != writes || w.cfn.Calls("CreateChangeSet") != changeSets {
		t.Errorf("concurrent re-runs changed something")
	}

	// gamma is removed: its stack goes, its repository stays, its item goes.
	if err := w.store.Remove(ctx, "gamma"); err != nil {
		t.Fatal(err)
	}
	w.settle(30)
	if s, ok := w.cfn.Stack("gamma-pipeline"); ok && !s.Deleted {
		t.Errorf("gamma-pipeline still there: %+v", s)
	}
	if !w.repos.has("gamma") {
		t.Error("gamma's repository is gone")
	}
	if _, ok, _ := w.store.GetProject(ctx, "gamma"); ok {
		t.Error("gamma's item is still there")
	}
	// The others are untouched.
	if w.status("alpha").State != pipeline.ProjectReady || mustStack(t, w.cfn, "alpha-pipeline").Status != "CREATE_COMPLETE" {
		t.Errorf("alpha changed by gamma's removal: %+v", w.status("alpha"))
	}

	// beta's cause is fixed; after its retry delay it converges, as a new generation (the
	// engine deletes the rolled-back stack and creates it again).
	w.clock.advance(projects.DefaultRetryAfter)
	w.settle(30)
	if st := w.status("beta"); st.State != pipeline.ProjectReady || st.Generation != 2 {
		t.Errorf("beta after the retry: %+v, want ready, generation 2", st)
	}
}

func TestAChangedDeclarationUpdatesTheStackInPlace(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "")
	if err := w.store.Declare(ctx, pipeline.Project{Name: "svc"}, false, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.settle(30)
	id := mustStack(t, w.cfn, "svc-pipeline").StackID
	if err := w.store.Declare(ctx, pipeline.Project{Name: "svc", Branch: "trunk"}, true, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.settle(30)
	s := mustStack(t, w.cfn, "svc-pipeline")
	if s.StackID != id || s.Parameters["TrackedBranch"] != "trunk" || w.status("svc").State != pipeline.ProjectReady {
		t.Errorf("after the branch change: %+v %+v", s, w.status("svc"))
	}
}

// Migration from a per-project control plane: the old control plane's PipelineStack created
// <name>-pipeline (untagged). Declaring the same name adopts that stack (same stack id, the
// template the pipeline updated itself to kept) instead of creating another.
func TestAnExistingPipelineStackIsAdopted(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "legacy")
	engine := &deploy.Engine{Stacks: w.cfn.Client(t)}
	old := settings.Parameters(pipeline.Project{Name: "legacy", Branch: "main"})
	old["DeployerFunctionName"] = "lambda-pipeline-legacy-deployer"
	for i := 0; ; i++ {
		out, err := engine.Step(ctx, deploy.Request{StackName: "legacy-pipeline", TemplateBody: string(infrastructure.PipelineTemplate),
			Parameters: old, Capabilities: []string{"CAPABILITY_IAM"}, RoleARN: settings.PipelineStackRoleARN, Token: "old-custom-resource"})
		if err != nil || out.Status == deploy.StatusFailed || i > 50 {
			t.Fatalf("old stack: %+v %v", out, err)
		}
		if out.Done() {
			break
		}
		w.clock.advance(10 * time.Second)
	}
	before := mustStack(t, w.cfn, "legacy-pipeline")
	w.settle(30)
	after := mustStack(t, w.cfn, "legacy-pipeline")
	if after.StackID != before.StackID || after.Template != before.Template {
		t.Errorf("the stack was replaced: %s → %s", before.StackID, after.StackID)
	}
	if after.Parameters["DeployerFunctionName"] != settings.DeployerFunctionName || after.Tags[deploy.TagProject] != "legacy" {
		t.Errorf("adopted stack: params %v tags %v", after.Parameters, after.Tags)
	}
	if st := w.status("legacy"); st.State != pipeline.ProjectReady {
		t.Errorf("legacy: %+v", st)
	}
}

// A stack this control plane did not tag is never deleted, whatever its name.
func TestUntaggedStacksAreNeverRemoved(t *testing.T) {
	w := newWorld(t, "")
	if _, err := w.cfn.CreateStack("other-pipeline"); err != nil {
		t.Fatal(err)
	}
	w.settle(5)
	if s, ok := w.cfn.Stack("other-pipeline"); !ok || s.Deleted {
		t.Errorf("other-pipeline: %+v", s)
	}
	if n := w.cfn.Calls("DeleteStack"); n != 0 {
		t.Errorf("%d DeleteStack calls", n)
	}
}

// Scale: 200 projects declared at once converge with at most Workers CloudFormation calls in
// flight, at most MaxStarts new deploys per pass, and throttling beyond the SDK's retries
// reaching no project as a failure.
func TestTwoHundredProjectsConvergeWithinLimits(t *testing.T) {
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%03d", i)
	}
	w := newWorld(t, strings.Join(names, ","))
	w.conv.Workers, w.conv.MaxStarts = 4, 25
	// Throttling: more throttles in a row than the SDK's three attempts absorb, twice.
	w.cfn.FailNext("DescribeStacks", awsfake.QueryThrottling, 7)
	w.cfn.FailNext("CreateChangeSet", awsfake.QueryThrottling, 12)

	sawThrottle := false
	rep := projects.Report{}
	passes := 0
	for i := 0; i < 80; i++ {
		passes++
		var err error
		rep, err = w.conv.Run(context.Background())
		w.clock.advance(time.Minute)
		if err != nil {
			// The listing itself was throttled: the whole pass waits for the next one.
			sawThrottle = true
			continue
		}
		if rep.Errors > 0 {
			sawThrottle = true
		}
		for _, p := range rep.Projects {
			if p.Status.State == pipeline.ProjectFailed {
				t.Fatalf("pass %d: %s failed: %s", i, p.Name, p.Status.Reason)
			}
		}
		if started := rep.Started; started > 25 {
			t.Fatalf("pass %d started %d deploys, want at most 25", i, started)
		}
		if allReady(rep, 200) {
			break
		}
	}
	if !allReady(rep, 200) {
		t.Fatalf("not all 200 ready: %d deferred, %d errors", rep.Deferred, rep.Errors)
	}
	if !sawThrottle {
		t.Error("the injected throttling never reached the converger: the test proves nothing about it")
	}
	if m := w.calls.max.Load(); m > 4 {
		t.Errorf("%d CloudFormation calls in flight at once, want at most 4 (Workers)", m)
	}
	t.Logf("200 projects: ready after %d passes, %d CloudFormation client calls (an SDK retry is inside its call), at most %d in flight",
		passes, w.calls.total.Load(), w.calls.max.Load())
}

func allReady(rep projects.Report, n int) bool {
	ready := 0
	for _, p := range rep.Projects {
		if p.Status.State == pipeline.ProjectReady {
			ready++
		}
	}
	return ready == n && len(rep.Projects) == n
}

func mustStack(t *testing.T, f *awsfake.CloudFormation, name string) awsfake.StackState {
	t.Helper()
	s, ok := f.Stack(name)
	if !ok {
		t.Fatalf("no stack %s", name)
	}
	return s
}
