package reconcile_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// handle delivers events to the recorder as on-pipeline-event does, each when it happened
// (the store places it then), and leaves the clock where it was.
func (e *reconcileEnv) handle(t *testing.T, evs ...pipeline.Event) {
	t.Helper()
	was := e.clock.Now()
	defer e.clock.Set(was)
	for _, ev := range evs {
		ev.Pipeline = pipelineName
		e.clock.Set(ev.Time.Add(time.Second))
		if _, err := e.r.Recorder.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// failedRun is what the live events told of a run that failed in its build at start+4m.
func failedRun(exec string, start time.Time) []pipeline.Event {
	evs := startedUntilBuild(exec, start)
	trig := pipeline.Trigger{Type: "StartPipelineExecution", Detail: "arn:aws:sts::111111111111:assumed-role/on-push/x"}
	evs[0].Trigger = trig
	return append(evs,
		pipeline.Event{ID: exec[:8] + "-bld-a-fail", Time: start.Add(4 * time.Minute), Level: pipeline.LevelAction, ExecutionID: exec,
			Stage: "BuildAndTest", Action: "Build", State: pipeline.StateFailed, Attempt: 1,
			Result: pipeline.ExecutionResult{ErrorCode: "JobFailed", Summary: "Build terminated with state: FAILED"}},
		pipeline.Event{ID: exec[:8] + "-p-fail", Time: start.Add(4 * time.Minute), Level: pipeline.LevelPipeline, ExecutionID: exec,
			State: pipeline.StateFailed, Attempt: 1, Trigger: trig})
}

// succeededView is CodePipeline's view of a run that went through the four stages; retried
// adds a failed build before the build that passed (a stage retry).
func succeededView(start time.Time, retried bool) []awsfake.ActionExecution {
	acts := failedInBuild(start)
	if !retried {
		acts[2].Status, acts[2].ErrorCode, acts[2].ErrorMessage, acts[2].Summary = types.ActionExecutionStatusSucceeded, "", "", "Build succeeded"
	} else {
		acts = append(acts, awsfake.ActionExecution{Stage: "BuildAndTest", Action: "Build", ID: "a-bld-2", Status: types.ActionExecutionStatusSucceeded,
			StartTime: start.Add(6 * time.Minute), LastUpdateTime: start.Add(8 * time.Minute), Category: "Build", Owner: "AWS", Provider: "CodeBuild", Version: "1"})
	}
	last := acts[len(acts)-1].LastUpdateTime
	return append(acts, awsfake.ActionExecution{Stage: "CreateUpdateLambda", Action: "DeployFunction", ID: "a-dep", Status: types.ActionExecutionStatusSucceeded,
		StartTime: last.Add(time.Second), LastUpdateTime: last.Add(time.Minute), Category: "Invoke", Owner: "AWS", Provider: "Lambda", Version: "1"})
}

func sentKeys(sent []pipeline.Notification) []string {
	var out []string
	for _, n := range sent {
		out = append(out, string(n.Type)+"#"+n.ExecutionID)
	}
	slices.Sort(out)
	return out
}

const (
	execA = "a0000000-4f50-4617-8829-3a4b5c6d7e8f"
	execB = "b0000000-4f50-4617-8829-3a4b5c6d7e8f"
	execC = "c0000000-4f50-4617-8829-3a4b5c6d7e8f"
)

// Seeds 5220 and 22767 (issue 9, defect 12): a run that failed, was retried green with the
// retry's events lost, while a later run ended green. The failed run is no longer its
// pipeline's newest decisive run, and is rechecked all the same: it may have been retried.
func TestReconcilerRechecksAFailedRunThatIsNotTheNewest(t *testing.T) {
	e := newReconcileEnv(t)
	e.handle(t, failedRun(execA, t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execA, Status: types.PipelineExecutionStatusSucceeded})
	e.cp.SetActionExecutions(execA, succeededView(t1, true)...)
	// B started after A's retry and ended green; its events all arrived.
	b := t1.Add(12 * time.Minute)
	evs := startedUntilBuild(execB, b)
	evs = append(evs, pipeline.Event{ID: "b-ok", Time: b.Add(8 * time.Minute), Level: pipeline.LevelPipeline, ExecutionID: execB, State: pipeline.StateSucceeded, Attempt: 1})
	e.handle(t, evs...)
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"failed#" + execA, "recovered#" + execB}) {
		t.Fatalf("live events sent %v", got)
	}

	resp := e.pass(t)
	run := e.run(t, execA)
	if run.Status != pipeline.StatusSucceeded || run.Attempt != 2 {
		t.Fatalf("run A = %s (attempt %d), want SUCCEEDED in attempt 2: a failed run that is not the newest is rechecked too (pass %+v)", run.Status, run.Attempt, resp)
	}
	// A's failure streak was told recovered already, by B (learnt first): one recovery per
	// streak, whichever success tells it (OutcomeStore.Recover).
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"failed#" + execA, "recovered#" + execB}) {
		t.Errorf("sent %v: want A's failure and one recovery", got)
	}
}

// The recheck is bounded by what CodePipeline can still retry: a stage that failed in a
// later run cannot be retried in an earlier one (NotLatestPipelineExecutionException), so
// of several runs that failed in one stage only the latest is asked about, each pass.
func TestReconcilerRechecksOneFailedRunPerStage(t *testing.T) {
	e := newReconcileEnv(t)
	for i, exec := range []string{execA, execB, execC} {
		e.handle(t, failedRun(exec, t1.Add(time.Duration(i)*10*time.Minute))...)
		e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: exec, Status: types.PipelineExecutionStatusFailed})
		e.cp.SetActionExecutions(exec, failedInBuild(t1.Add(time.Duration(i)*10*time.Minute))...)
	}
	for range 3 {
		e.clock.Set(e.clock.Now().Add(10 * time.Minute))
		before := e.cp.Calls(awsfake.OpGetPipelineExecution)
		resp := e.pass(t)
		if n := e.cp.Calls(awsfake.OpGetPipelineExecution) - before; n != 1 || resp.Checked != 1 {
			t.Errorf("pass asked about %d executions (%+v), want 1: C, the latest to fail in BuildAndTest", n, resp)
		}
	}
	// C is retried green, its events lost: found by the next pass.
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execC, Status: types.PipelineExecutionStatusSucceeded})
	e.cp.SetActionExecutions(execC, succeededView(t1.Add(20*time.Minute), true)...)
	e.clock.Set(e.clock.Now().Add(10 * time.Minute))
	if resp := e.pass(t); resp.Settled != 1 || e.run(t, execC).Status != pipeline.StatusSucceeded {
		t.Errorf("pass = %+v, C = %s; want C settled SUCCEEDED", resp, e.run(t, execC).Status)
	}
	// Past the horizon nothing is asked about any more.
	e.clock.Set(t1.Add(reconcileDays(9)))
	before := e.cp.Calls(awsfake.OpGetPipelineExecution)
	e.pass(t)
	if n := e.cp.Calls(awsfake.OpGetPipelineExecution) - before; n != 0 {
		t.Errorf("nine days later %d executions asked about, want 0", n)
	}
}

// Seed 34545: a run failed in a stage and was retried green, the retry's events lost; then a
// later run failed in the same stage. CodePipeline can no longer retry the first run
// (NotLatestPipelineExecutionException), but it may have retried it before, unseen: the
// reconciler asks about it once after the later failure, and on every pass until it gets an
// answer, before letting it go.
func TestReconcilerRechecksAFailedRunAfterALaterRunFailedInItsStage(t *testing.T) {
	e := newReconcileEnv(t, func(o *codepipeline.Options) { o.RetryMaxAttempts = 1 })
	e.handle(t, failedRun(execA, t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execA, Status: types.PipelineExecutionStatusFailed})
	e.cp.SetActionExecutions(execA, failedInBuild(t1)...)
	e.clock.Set(t1.Add(5 * time.Minute))
	e.pass(t) // A is the latest run failed in BuildAndTest: still FAILED

	// A's build is retried green by t1+9m; then B fails in BuildAndTest at t1+14m.
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execA, Status: types.PipelineExecutionStatusSucceeded})
	e.cp.SetActionExecutions(execA, succeededView(t1, true)...)
	b := t1.Add(10 * time.Minute)
	e.handle(t, failedRun(execB, b)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execB, Status: types.PipelineExecutionStatusFailed})
	e.cp.SetActionExecutions(execB, failedInBuild(b)...)

	// The next pass's looks fail (B's, then A's): nothing is learnt.
	e.cp.FailNext(awsfake.OpGetPipelineExecution, awsfake.Throttling, 2)
	e.clock.Set(t1.Add(15 * time.Minute))
	if _, err := e.r.Handle(context.Background(), []byte(`{}`)); err == nil {
		t.Fatal("Handle = nil error; want the throttled looks reported")
	}
	// The pass after asks about A again, though B is the latest run failed in its stage.
	e.clock.Set(t1.Add(25 * time.Minute))
	resp, err := e.r.Handle(context.Background(), []byte(`{}`))
	if run := e.run(t, execA); run.Status != pipeline.StatusSucceeded || run.Attempt != 2 {
		t.Fatalf("run A = %s (attempt %d), want SUCCEEDED in attempt 2: retried before B failed in the same stage (pass %+v, %v)", run.Status, run.Attempt, resp, err)
	}
	if err != nil {
		t.Errorf("Handle: %v", err)
	}
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"failed#" + execA, "failed#" + execB, "recovered#" + execA}) {
		t.Errorf("sent %v: want both failures and A's recovery", got)
	}
}

func reconcileDays(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// Seeds 381, 3558, 4544: the reconciler settles a run well over an hour after it ended, and
// the pass fails to send its "recovered". The next passes decide it again: RedecideWithin
// counts from when the end was recorded, not from when the run ended.
func TestReconcilerRedecidesARunItSettledLate(t *testing.T) {
	e := newReconcileEnv(t)
	e.handle(t, failedRun(execA, t1)...)
	b := t1.Add(10 * time.Minute)
	e.handle(t, startedUntilBuild(execB, b)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execB, Status: types.PipelineExecutionStatusSucceeded})
	e.cp.SetActionExecutions(execB, succeededView(b, false)...)

	e.clock.Set(t1.Add(2 * time.Hour))
	e.note.fail = 1 // the pass that settles B fails to send its recovery
	if _, err := e.r.Handle(context.Background(), []byte(`{}`)); err == nil {
		t.Fatal("Handle = nil error; want the failed send reported")
	}
	if s := e.run(t, execB).Status; s != pipeline.StatusSucceeded {
		t.Fatalf("run B = %s, want settled SUCCEEDED", s)
	}
	e.clock.Set(t1.Add(2*time.Hour + 10*time.Minute))
	if resp := e.pass(t); resp.Redriven == 0 {
		t.Errorf("next pass = %+v, want B redriven", resp)
	}
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"failed#" + execA, "recovered#" + execB}) {
		t.Errorf("sent %v, want A's failure and B's recovery once each", got)
	}
}

// Runs settled in one pass are decided in the order they ended, so each decision sees the
// history as it happened: after a failure, of two green runs whose ends were lost, the first
// to end tells the recovery, and it alone.
func TestReconcilerSettlesRunsInTheOrderTheyEnded(t *testing.T) {
	e := newReconcileEnv(t)
	e.handle(t, failedRun(execA, t1)...)
	for i, exec := range []string{execB, execC} {
		start := t1.Add(time.Duration(10+15*i) * time.Minute)
		e.handle(t, startedUntilBuild(exec, start)...)
		e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: exec, Status: types.PipelineExecutionStatusSucceeded})
		e.cp.SetActionExecutions(exec, succeededView(start, false)...)
	}
	if resp := e.pass(t); resp.Settled != 2 {
		t.Fatalf("pass = %+v, want B and C settled", resp)
	}
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"failed#" + execA, "recovered#" + execB}) {
		t.Errorf("sent %v, want one recovery, B's (B ended first)", got)
	}
}

// Runs of which the store holds no pipeline-level event and no push are not in the index:
// CodePipeline's list of the executions started since the last pass finds them. One run told
// only by its stage events, one told by nothing at all (the pipeline's first run, on an
// empty repository: "push to start").
func TestReconcilerDiscoversRunsTheIndexDoesNotName(t *testing.T) {
	e := newReconcileEnv(t)
	e.r.Discover = codepipelineapi.Lister{API: e.cp.Client(t)}
	first := t1.Add(-20 * time.Minute)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execA, Status: types.PipelineExecutionStatusFailed,
		TriggerType: types.TriggerTypeCreatePipeline, StartTime: first, LastUpdateTime: first.Add(time.Minute)})
	e.cp.SetActionExecutions(execA, awsfake.ActionExecution{Stage: "Source", Action: "Source", ID: "a-src-0", Status: types.ActionExecutionStatusFailed,
		StartTime: first.Add(time.Second), LastUpdateTime: first.Add(time.Minute), Category: "Source", Owner: "AWS", Provider: "CodeCommit", Version: "1",
		ErrorCode: "ConfigurationError", ErrorMessage: "The branch main does not exist in the repository my-lambda"})
	// B: only stage events reached the store.
	var stageOnly []pipeline.Event
	for _, ev := range startedUntilBuild(execB, t1) {
		if ev.Level != pipeline.LevelPipeline {
			stageOnly = append(stageOnly, ev)
		}
	}
	e.handle(t, stageOnly...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execB, Status: types.PipelineExecutionStatusFailed, StartTime: t1, LastUpdateTime: t1.Add(4 * time.Minute)})
	e.cp.SetActionExecutions(execB, failedInBuild(t1)...)

	e.clock.Set(t1.Add(10 * time.Minute))
	resp := e.pass(t)
	if a, b := e.run(t, execA), e.run(t, execB); a.Status != pipeline.StatusFailed || b.Status != pipeline.StatusFailed {
		t.Fatalf("A = %s, B = %s after %+v; want both FAILED", a.Status, b.Status, resp)
	}
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"failed#" + execB, "push-to-start#" + execA}) {
		t.Errorf("sent %v, want B's failure and A's push-to-start", got)
	}
	if n := e.cp.Calls(awsfake.OpListPipelineExecutions); n != 1 {
		t.Errorf("ListPipelineExecutions calls = %d, want 1 per pass", n)
	}
}
