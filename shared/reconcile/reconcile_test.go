package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
	"github.com/lambda-pipeline/lambda-pipeline/shared/testing/harness"
)

// notifier records what was sent, and fails the first fail sends.
type notifier struct {
	mu   sync.Mutex
	sent []pipeline.Notification
	runs []pipeline.Run
	fail int
}

func (n *notifier) Notify(_ context.Context, note pipeline.Notification, run pipeline.Run) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail > 0 {
		n.fail--
		return errors.New("slack: 503 Service Unavailable")
	}
	n.sent, n.runs = append(n.sent, note), append(n.runs, run)
	return nil
}

func (n *notifier) Sent() []pipeline.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]pipeline.Notification(nil), n.sent...)
}

type reconcileEnv struct {
	r     *reconcile.Reconciler
	cp    *awsfake.CodePipeline
	store *runstore.Memory
	note  *notifier
	clock *harness.Clock
	logs  *harness.LogBuffer
}

// t1 is when the runs under test started; the reconciler runs an hour later.
var t1 = time.Date(2026, 11, 20, 10, 15, 5, 0, time.UTC)

func newReconcileEnv(t *testing.T, cpOpts ...func(*codepipeline.Options)) *reconcileEnv {
	t.Helper()
	clock := harness.NewClock(t1.Add(time.Hour))
	// The store places what it records in time with the clock, as deployed (pipeline.Change).
	e := &reconcileEnv{cp: awsfake.NewCodePipeline(t, pipelineName), store: runstore.NewMemory().WithClock(clock), note: &notifier{},
		clock: clock, logs: &harness.LogBuffer{}}
	e.r = &reconcile.Reconciler{
		Runs:       e.store,
		Executions: codepipelineapi.Reader{API: e.cp.Client(t, cpOpts...)},
		Recorder:   e.store.Recorder(e.note, e.clock),
		Log:        slog.New(slog.NewJSONHandler(e.logs, nil)),
		Clock:      e.clock,

		PipelineName: pipelineName,
		StaleAfter:   30 * time.Minute,
	}
	return e
}

func (e *reconcileEnv) record(t *testing.T, evs ...pipeline.Event) {
	t.Helper()
	for _, ev := range evs {
		ev.Pipeline = pipelineName
		if _, err := e.store.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *reconcileEnv) run(t *testing.T, exec string) pipeline.Run {
	t.Helper()
	run, err := pipeline.LoadRun(context.Background(), e.store, pipeline.Key{Pipeline: pipelineName, ExecutionID: exec})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func (e *reconcileEnv) pass(t *testing.T) reconcile.ReconcileResponse {
	t.Helper()
	resp, err := e.r.Handle(context.Background(), json.RawMessage(`{"source":"aws.scheduler","detail-type":"Scheduled Event","detail":{}}`))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

// startedUntilBuild records what the live events told of a run before they stopped coming:
// started, Source done, the build under way.
func startedUntilBuild(exec string, at time.Time) []pipeline.Event {
	ev := func(id string, lvl pipeline.Level, stage, action string, s pipeline.State, d time.Duration) pipeline.Event {
		return pipeline.Event{ID: exec[:8] + "-" + id, Time: at.Add(d), Level: lvl, ExecutionID: exec, Stage: stage, Action: action, State: s, Attempt: 1}
	}
	return []pipeline.Event{
		ev("p-start", pipeline.LevelPipeline, "", "", pipeline.StateStarted, 0),
		ev("src-start", pipeline.LevelStage, "Source", "", pipeline.StateStarted, time.Second),
		ev("src-a-ok", pipeline.LevelAction, "Source", "Source", pipeline.StateSucceeded, 3*time.Second),
		ev("src-ok", pipeline.LevelStage, "Source", "", pipeline.StateSucceeded, 3*time.Second),
		ev("bld-start", pipeline.LevelStage, "BuildAndTest", "", pipeline.StateStarted, 45*time.Second),
		ev("bld-a-start", pipeline.LevelAction, "BuildAndTest", "Build", pipeline.StateStarted, 46*time.Second),
	}
}

// failedInBuild is CodePipeline's view of such a run that failed in its build.
func failedInBuild(at time.Time) []awsfake.ActionExecution {
	return []awsfake.ActionExecution{
		{Stage: "Source", Action: "Source", ID: "a-src", Status: types.ActionExecutionStatusSucceeded, StartTime: at.Add(time.Second), LastUpdateTime: at.Add(3 * time.Second),
			Category: "Source", Owner: "AWS", Provider: "CodeCommit", Version: "1", ExternalID: mainCommit, Summary: "Retry with backoff"},
		{Stage: "CreateUpdatePipeline", Action: "Deploy", ID: "a-cup", Status: types.ActionExecutionStatusSucceeded, StartTime: at.Add(4 * time.Second), LastUpdateTime: at.Add(44 * time.Second),
			Category: "Invoke", Owner: "AWS", Provider: "Lambda", Version: "1"},
		{Stage: "BuildAndTest", Action: "Build", ID: "a-bld", Status: types.ActionExecutionStatusFailed, StartTime: at.Add(46 * time.Second), LastUpdateTime: at.Add(4 * time.Minute),
			Category: "Build", Owner: "AWS", Provider: "CodeBuild", Version: "1", ExternalID: "my-lambda-build:0f1e",
			Summary: "Build terminated with state: FAILED", URL: "https://console.aws.amazon.com/codesuite/codebuild/projects/my-lambda-build/build/0f1e",
			ErrorCode: "JobFailed", ErrorMessage: "Build terminated with state: FAILED",
			OutputArtifacts: []awsfake.Artifact{{Name: "BuildOutput", Bucket: "my-artifacts", Key: "my-lambda-pipeline/BuildOutpu/Xyz.zip"}}},
	}
}

const (
	execLost   = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
	execActive = "1c2d3e4f-5061-4728-9930-4b5c6d7e8f90"
)

func TestReconcilerEndsARunWhoseFailureWasLost(t *testing.T) {
	e := newReconcileEnv(t)
	e.record(t, startedUntilBuild(execLost, t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execLost, Status: types.PipelineExecutionStatusFailed, Version: 2})
	e.cp.SetActionExecutions(execLost, failedInBuild(t1)...)

	resp := e.pass(t)
	if resp.Checked != 1 || resp.Settled != 1 {
		t.Errorf("first pass = %+v, want 1 checked, 1 settled", resp)
	}
	run := e.run(t, execLost)
	if run.Status != pipeline.StatusFailed || !run.EndedAt.Equal(t1.Add(4*time.Minute)) {
		t.Errorf("run = %s ended %v, want FAILED at the build's last update", run.Status, run.EndedAt)
	}
	f := run.Failure()
	if f.Stage != "BuildAndTest" || f.Action != "Build" || f.Result.ErrorCode != "JobFailed" ||
		f.Result.Summary != "Build terminated with state: FAILED" || f.Type.Provider != "CodeBuild" {
		t.Errorf("failure = %+v", f)
	}
	if art, ok := run.Artifact(pipeline.ArtifactBuildOutput); !ok || art.Bucket != "my-artifacts" {
		t.Errorf("BuildOutput = %+v, %v", art, ok)
	}
	if st := run.Stages["CreateUpdatePipeline"]; st.Status != pipeline.StatusSucceeded {
		t.Errorf("stage CreateUpdatePipeline, whose events were all lost = %+v, want SUCCEEDED", st)
	}
	if st := run.Stages["BuildAndTest"]; st.Status != pipeline.StatusFailed {
		t.Errorf("stage BuildAndTest = %s, want FAILED", st.Status)
	}
	sent := e.note.Sent()
	if len(sent) != 1 || sent[0].Type != pipeline.NotifyFailed || sent[0].ExecutionID != execLost {
		t.Fatalf("sent = %+v, want one failed notification for %s", sent, execLost)
	}
	if got := e.note.runs[0].Failure(); got.Action != "Build" {
		t.Errorf("the notification's run does not know where it failed: %+v", got)
	}

	// A second pass (and a third, later) sends nothing more. While the pipeline is red, each
	// pass asks CodePipeline once about its newest failed run (a stage retry may have turned
	// it green with its events lost): one look per red pipeline, whatever the history.
	calls := e.cp.Calls(awsfake.OpGetPipelineExecution)
	for _, at := range []time.Time{t1.Add(70 * time.Minute), t1.Add(5 * time.Hour)} {
		e.clock.Set(at)
		resp := e.pass(t)
		if resp.Checked != 1 || resp.Settled != 0 {
			t.Errorf("later pass = %+v, want the red run checked, nothing settled", resp)
		}
	}
	if n := len(e.note.Sent()); n != 1 {
		t.Errorf("%d notifications after three passes, want 1", n)
	}
	if n := e.cp.Calls(awsfake.OpGetPipelineExecution); n != calls+2 {
		t.Errorf("later passes asked CodePipeline %d more times, want 2", n-calls)
	}
}

func TestReconcilerLeavesARunningRunRunning(t *testing.T) {
	e := newReconcileEnv(t)
	e.record(t, startedUntilBuild(execActive, t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execActive})
	actions := failedInBuild(t1)
	actions[2].Status, actions[2].LastUpdateTime = types.ActionExecutionStatusInProgress, time.Time{}
	e.cp.SetActionExecutions(execActive, actions...)

	resp := e.pass(t)
	if resp.Checked != 1 || resp.Settled != 0 {
		t.Errorf("pass = %+v, want 1 checked, 0 settled", resp)
	}
	run := e.run(t, execActive)
	if run.Status != pipeline.StatusInProgress || run.Stages["BuildAndTest"].Status != pipeline.StatusInProgress {
		t.Errorf("run = %s, build stage %s; want both in progress", run.Status, run.Stages["BuildAndTest"].Status)
	}
	if st := run.Stages["CreateUpdatePipeline"]; st.Status != pipeline.StatusSucceeded {
		t.Errorf("a stage followed by another = %s, want SUCCEEDED", st.Status)
	}
	if len(e.note.Sent()) != 0 {
		t.Errorf("sent %+v for a running run", e.note.Sent())
	}
	// Still running at the next pass: checked again, still nothing sent.
	e.clock.Set(e.clock.Now().Add(10 * time.Minute))
	if resp := e.pass(t); resp.Checked != 1 || resp.Settled != 0 || len(e.note.Sent()) != 0 {
		t.Errorf("second pass = %+v, sent %v", resp, e.note.Sent())
	}
}

func TestReconcilerLeavesFreshAndEndedRunsAlone(t *testing.T) {
	e := newReconcileEnv(t)
	fresh := "2d3e4f50-6172-4839-8a41-5c6d7e8f9a01"
	ended := "3e4f5061-7283-494a-9b52-6d7e8f9a0b12"
	e.record(t, startedUntilBuild(fresh, e.clock.Now().Add(-10*time.Minute))...)
	e.record(t, pipeline.Event{ID: "ended-start", Time: t1, Level: pipeline.LevelPipeline, ExecutionID: ended, State: pipeline.StateStarted},
		pipeline.Event{ID: "ended-ok", Time: t1.Add(5 * time.Minute), Level: pipeline.LevelPipeline, ExecutionID: ended, State: pipeline.StateSucceeded})
	// Too old for the lookback.
	e.r.Lookback = 3 * time.Hour
	e.record(t, startedUntilBuild("4f506172-8394-4a5b-8c63-7e8f9a0b1c23", t1.Add(-4*time.Hour))...)

	if resp := e.pass(t); resp.Checked != 0 {
		t.Errorf("pass = %+v, want nothing checked", resp)
	}
	if n := e.cp.Calls(awsfake.OpGetPipelineExecution); n != 0 {
		t.Errorf("GetPipelineExecution calls = %d, want 0", n)
	}
}

// A run whose events were all lost but whose push was recorded is found and settled too.
func TestReconcilerSettlesARunKnownOnlyFromItsPush(t *testing.T) {
	e := newReconcileEnv(t)
	if err := e.store.RecordPush(context.Background(), pipeline.Key{Pipeline: pipelineName, ExecutionID: execLost},
		pipeline.Commit{ID: mainCommit, Author: "Ana Lima <ana@example.com>", PushedAt: t1}); err != nil {
		t.Fatal(err)
	}
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execLost, Status: types.PipelineExecutionStatusFailed})
	e.cp.SetActionExecutions(execLost, failedInBuild(t1)...)

	if resp := e.pass(t); resp.Settled != 1 {
		t.Fatalf("pass = %+v, want 1 settled", resp)
	}
	run := e.run(t, execLost)
	if run.Status != pipeline.StatusFailed || run.Commit.Author != "Ana Lima <ana@example.com>" || run.Failure().Action != "Build" {
		t.Errorf("run = %s, commit %+v, failure %+v", run.Status, run.Commit, run.Failure())
	}
	if n := len(e.note.Sent()); n != 1 {
		t.Errorf("%d notifications, want 1", n)
	}
}

// One run's trouble does not hold the others back; the pass reports it so that it is retried.
func TestReconcilerKeepsGoingPastAFailedRun(t *testing.T) {
	e := newReconcileEnv(t, func(o *codepipeline.Options) { o.RetryMaxAttempts = 1 })
	missing := "5061728a-94a5-4b6c-9d74-8f9a0b1c2d34"
	e.record(t, startedUntilBuild(execLost, t1)...)
	e.record(t, startedUntilBuild(execActive, t1.Add(time.Minute))...) // newer: listed first
	e.record(t, startedUntilBuild(missing, t1.Add(-time.Minute))...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execLost, Status: types.PipelineExecutionStatusFailed})
	e.cp.SetActionExecutions(execLost, failedInBuild(t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execActive, Status: types.PipelineExecutionStatusSucceeded})
	e.cp.FailNext(awsfake.OpGetPipelineExecution, awsfake.Throttling, 1) // the first run asked about: execActive

	resp, err := e.r.Handle(context.Background(), json.RawMessage(`{}`))
	if err == nil {
		t.Fatal("Handle = nil error; want the throttled run reported")
	}
	if resp.Checked != 3 || resp.Settled != 1 || resp.Missing != 1 {
		t.Errorf("pass = %+v, want 3 checked, 1 settled (the failed run), 1 missing", resp)
	}
	if s := e.run(t, execLost).Status; s != pipeline.StatusFailed {
		t.Errorf("run after the throttled one = %s, want FAILED", s)
	}
	if s := e.run(t, missing).Status; s != pipeline.StatusInProgress {
		t.Errorf("run CodePipeline does not know = %s, want left IN_PROGRESS", s)
	}

	// The next pass settles the throttled run.
	e.clock.Set(e.clock.Now().Add(10 * time.Minute))
	if resp := e.pass(t); resp.Settled != 1 || e.run(t, execActive).Status != pipeline.StatusSucceeded {
		t.Errorf("next pass = %+v, run %s", resp, e.run(t, execActive).Status)
	}
}

// When the failure notification cannot be sent in the pass that ends the run, a later pass
// sends it: the run, now FAILED, would otherwise never be looked at again.
func TestReconcilerSendsTheNotificationAPassFailedToSend(t *testing.T) {
	e := newReconcileEnv(t)
	e.note.fail = 1
	e.record(t, startedUntilBuild(execLost, t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execLost, Status: types.PipelineExecutionStatusFailed})
	e.cp.SetActionExecutions(execLost, failedInBuild(t1)...)

	if _, err := e.r.Handle(context.Background(), json.RawMessage(`{}`)); err == nil {
		t.Fatal("Handle = nil error; want the failed send reported")
	}
	if s := e.run(t, execLost).Status; s != pipeline.StatusFailed {
		t.Fatalf("run = %s, want FAILED", s)
	}
	for range 2 {
		e.clock.Set(e.clock.Now().Add(10 * time.Minute))
		if resp := e.pass(t); resp.Redriven != 1 {
			t.Errorf("pass = %+v, want the settled run redriven", resp)
		}
	}
	if sent := e.note.Sent(); len(sent) != 1 || sent[0].Type != pipeline.NotifyFailed {
		t.Errorf("sent = %+v, want the failure once", sent)
	}
}

// Every page of action executions is read: the failing action is on the second.
func TestReconcilerReadsEveryPageOfActions(t *testing.T) {
	e := newReconcileEnv(t)
	e.record(t, startedUntilBuild(execLost, t1)...)
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execLost, Status: types.PipelineExecutionStatusFailed})
	var actions []awsfake.ActionExecution
	for i := range 120 {
		actions = append(actions, awsfake.ActionExecution{Stage: "Checks", Action: fmt.Sprintf("check-%03d", i), ID: fmt.Sprintf("c-%03d", i),
			Status: types.ActionExecutionStatusSucceeded, StartTime: t1.Add(time.Minute), LastUpdateTime: t1.Add(2 * time.Minute)})
	}
	actions[110].Status, actions[110].ErrorCode = types.ActionExecutionStatusFailed, "JobFailed"
	e.cp.SetActionExecutions(execLost, actions...)

	if resp := e.pass(t); resp.Settled != 1 {
		t.Fatalf("pass = %+v", resp)
	}
	if n := e.cp.Calls(awsfake.OpListActionExecutions); n != 2 {
		t.Errorf("ListActionExecutions calls = %d, want 2 pages", n)
	}
	run := e.run(t, execLost)
	if f := run.Failure(); f.Stage != "Checks" || f.Action != "check-110" || f.Result.ErrorCode != "JobFailed" {
		t.Errorf("failure = %+v", f)
	}
	if n := len(run.Stages["Checks"].Actions); n != 120 {
		t.Errorf("%d actions recorded, want 120", n)
	}
}

func TestExecutionEventsAreDeterministic(t *testing.T) {
	run := pipeline.Run{Pipeline: pipelineName, ExecutionID: execLost, StartedAt: t1}
	run.Progress = pipeline.Progress{Status: pipeline.StatusInProgress, Attempt: 2, At: t1, EventID: "x"}
	exec := pipeline.ExecutionView{State: pipeline.StateStopped}
	for _, a := range failedInBuild(t1) {
		exec.Actions = append(exec.Actions, viewOf(a))
	}
	exec.Actions[2].State = pipeline.StateAbandoned
	a := reconcile.ExecutionEvents(run, exec, t1.Add(time.Hour))
	b := reconcile.ExecutionEvents(run, exec, t1.Add(2*time.Hour))
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d then %d events", len(a), len(b))
	}
	wantLast := pipeline.Event{ID: "reconciler-" + execLost + "-pipeline-STOPPED-2", Level: pipeline.LevelPipeline, State: pipeline.StateStopped, Attempt: 2}
	last := a[len(a)-1]
	if last.ID != wantLast.ID || last.State != wantLast.State || last.Attempt != 2 || !last.Time.Equal(t1.Add(4*time.Minute)) {
		t.Errorf("pipeline event = %+v, want %+v at the last action update", last, wantLast)
	}
	for i := range a {
		if a[i].ID != b[i].ID || !a[i].Time.Equal(b[i].Time) {
			t.Errorf("event %d differs with the clock: %s@%v vs %s@%v", i, a[i].ID, a[i].Time, b[i].ID, b[i].Time)
		}
		if a[i].Attempt != 2 {
			t.Errorf("event %s has attempt %d, want the run's 2", a[i].ID, a[i].Attempt)
		}
		if a[i].Level == pipeline.LevelStage && a[i].Stage == "BuildAndTest" && a[i].State != pipeline.StateStopped {
			t.Errorf("stage with an abandoned action in a stopped execution = %s, want STOPPED", a[i].State)
		}
	}
}

// viewOf is an awsfake action execution as codepipelineapi reads it, for pure tests.
func viewOf(a awsfake.ActionExecution) pipeline.ActionExecution {
	states := map[types.ActionExecutionStatus]pipeline.State{
		types.ActionExecutionStatusInProgress: pipeline.StateStarted, types.ActionExecutionStatusSucceeded: pipeline.StateSucceeded,
		types.ActionExecutionStatusFailed: pipeline.StateFailed, types.ActionExecutionStatusAbandoned: pipeline.StateAbandoned,
	}
	v := pipeline.ActionExecution{Stage: a.Stage, Action: a.Action, ExecutionID: a.ID, State: states[a.Status], StartTime: a.StartTime, UpdatedAt: a.LastUpdateTime,
		Type:   pipeline.ActionType{Category: a.Category, Owner: a.Owner, Provider: a.Provider, Version: a.Version},
		Result: pipeline.ExecutionResult{ExternalID: a.ExternalID, Summary: a.Summary, URL: a.URL, ErrorCode: a.ErrorCode}}
	if a.ErrorMessage != "" {
		v.Result.Summary = a.ErrorMessage
	}
	return v
}

// Issue 9, defect 6: a pipeline of another account or region cannot be asked about (this
// account's CodePipeline knows nothing of it, or knows a same-named one): its stale runs are
// left as they are, counted once per pass, and its ended runs' decisions are still taken
// again, since they need only the store.
func TestReconcilerDoesNotAskAboutAForeignPipeline(t *testing.T) {
	e := newReconcileEnv(t)
	foreign := "arn:aws:codepipeline:us-east-1:222222222222:" + pipelineName
	e.r.PipelineName = foreign
	// A run whose events stopped coming, and one that failed ten minutes ago but whose
	// decision was never taken (every delivery of its FAILED event failed after the write).
	stale := startedUntilBuild(execActive, t1)
	ended := append(startedUntilBuild(execLost, t1.Add(40*time.Minute)), pipeline.Event{ID: "lost-p-failed", Time: t1.Add(50 * time.Minute),
		Level: pipeline.LevelPipeline, ExecutionID: execLost, State: pipeline.StateFailed, Attempt: 1,
		Trigger: pipeline.Trigger{Type: "StartPipelineExecution"}})
	for _, ev := range append(stale, ended...) {
		ev.Pipeline = foreign
		if _, err := e.store.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// CodePipeline here has a same-named pipeline with these execution ids: not asked.
	e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: execActive, Status: types.PipelineExecutionStatusSucceeded, Version: 2})

	resp := e.pass(t)
	if resp.Foreign != 2 || resp.Checked != 0 || resp.Settled != 0 || resp.Redriven != 1 {
		t.Errorf("pass = %+v, want 2 foreign runs, none checked, the ended one redriven", resp)
	}
	if n := e.cp.Calls(awsfake.OpGetPipelineExecution) + e.cp.Calls(awsfake.OpListActionExecutions); n != 0 {
		t.Errorf("CodePipeline asked %d times about a pipeline of another account", n)
	}
	sent := e.note.Sent()
	if len(sent) != 1 || sent[0].Type != pipeline.NotifyFailed || sent[0].Pipeline != foreign || sent[0].ExecutionID != execLost {
		t.Errorf("sent = %+v, want the foreign failure", sent)
	}
	run, err := pipeline.LoadRun(context.Background(), e.store, pipeline.Key{Pipeline: foreign, ExecutionID: execActive})
	if err != nil || run.Status != pipeline.StatusInProgress {
		t.Errorf("stale foreign run = %s, %v; want left in progress", run.Status, err)
	}
	if lines := e.logs.Lines("runs of a pipeline in another account or region: not compared with CodePipeline, their decisions taken again"); len(lines) != 1 || lines[0]["runs"] != 2.0 {
		t.Errorf("log lines about foreign runs = %v, want one per pass, counting them", lines)
	}
}

// Simulation seed 6081: a foreign pipeline's FAILED event with neither trigger nor anything of
// its stages (a FAILED in Source as far as anyone knows) waits, on the hot path, for the
// reconciler to ask CodePipeline whether it was an empty repository's "push to start". Nobody
// can ask about a pipeline of another account: the reconciler tells it as the failure it is.
func TestForeignFailureWithUnknownTriggerIsToldByThePass(t *testing.T) {
	e := newReconcileEnv(t)
	foreign := "arn:aws:codepipeline:us-east-1:222222222222:" + pipelineName
	e.r.PipelineName = foreign
	ev := pipeline.Event{ID: "lost-p-failed", Time: t1.Add(50 * time.Minute), Level: pipeline.LevelPipeline, Pipeline: foreign,
		ExecutionID: execLost, State: pipeline.StateFailed, Attempt: 1}
	if _, err := e.r.Recorder.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if sent := e.note.Sent(); len(sent) != 0 {
		t.Fatalf("the hot path sent %+v; want the decision left to the pass", sent)
	}
	e.pass(t)
	if sent := e.note.Sent(); len(sent) != 0 {
		t.Fatalf("the pass right after the FAILED sent %+v; want it to wait DecideAsKnownAfter for a late Source event", sent)
	}
	e.clock.Set(e.clock.Now().Add(reconcile.DecideAsKnownAfter))
	e.pass(t)
	sent := e.note.Sent()
	if len(sent) != 1 || sent[0].Type != pipeline.NotifyFailed || sent[0].ExecutionID != execLost {
		t.Errorf("sent = %+v, want the foreign failure", sent)
	}
}

// Simulation seed 34544: a foreign pipeline's first run on an empty repository whose FAILED
// came with neither trigger nor stages, and whose Source action event came late. A pass that
// told the failure at once would have told a failure and then, with the late event, a "push
// to start": the pass waits DecideAsKnownAfter after the record last changed.
func TestForeignSourceEventLaterThanAPassIsStillPushToStart(t *testing.T) {
	e := newReconcileEnv(t)
	foreign := "arn:aws:codepipeline:us-east-1:222222222222:" + pipelineName
	e.r.PipelineName = foreign
	handle := func(ev pipeline.Event) {
		t.Helper()
		ev.Pipeline, ev.ExecutionID = foreign, execLost
		if _, err := e.r.Recorder.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	handle(pipeline.Event{ID: "lost-p-failed", Time: t1.Add(50 * time.Minute), Level: pipeline.LevelPipeline, State: pipeline.StateFailed, Attempt: 1})
	e.pass(t)
	e.clock.Set(e.clock.Now().Add(10 * time.Minute))
	handle(pipeline.Event{ID: "lost-a-src-failed", Time: t1.Add(49 * time.Minute), Level: pipeline.LevelAction, Stage: "Source", Action: "Source",
		State: pipeline.StateFailed, Attempt: 1, ActionType: pipeline.ActionType{Owner: "AWS", Category: "Source", Provider: "CodeCommit", Version: "1"},
		Result: pipeline.ExecutionResult{Summary: "The branch main does not exist in the repository my-lambda", ErrorCode: "ConfigurationError"}})
	for range 6 {
		e.pass(t)
		e.clock.Set(e.clock.Now().Add(10 * time.Minute))
	}
	if got := sentKeys(e.note.Sent()); !slices.Equal(got, []string{"push-to-start#" + execLost}) {
		t.Errorf("sent %v, want only the push to start", got)
	}
}

// Simulation seed 3236: a foreign run's attempt 1 FAILED with no trigger (the hot path leaves
// its decision to the pass), then a stage retry RESUMED it, and nothing more of it arrived. The
// run is in progress again, and nobody can ask CodePipeline when the retry ends: the pass still
// tells the attempt that failed.
func TestForeignFailureRetriedSinceIsToldByThePass(t *testing.T) {
	e := newReconcileEnv(t)
	foreign := "arn:aws:codepipeline:us-east-1:222222222222:" + pipelineName
	e.r.PipelineName = foreign
	for _, ev := range []pipeline.Event{
		{ID: "lost-p-failed", Time: t1.Add(50 * time.Minute), Level: pipeline.LevelPipeline, Pipeline: foreign,
			ExecutionID: execLost, State: pipeline.StateFailed, Attempt: 1},
		{ID: "lost-p-resumed", Time: t1.Add(51 * time.Minute), Level: pipeline.LevelPipeline, Pipeline: foreign,
			ExecutionID: execLost, State: pipeline.StateResumed, Attempt: 2, Trigger: pipeline.Trigger{Type: "StartPipelineExecution"}},
	} {
		if _, err := e.r.Recorder.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if sent := e.note.Sent(); len(sent) != 0 {
		t.Fatalf("the hot path sent %+v; want the decision left to the pass", sent)
	}
	e.pass(t)
	sent := e.note.Sent()
	if len(sent) != 1 || sent[0].Type != pipeline.NotifyFailed || sent[0].ExecutionID != execLost || sent[0].Attempt != 1 {
		t.Errorf("sent = %+v, want the foreign run's attempt-1 failure", sent)
	}
	if n := e.cp.Calls(awsfake.OpGetPipelineExecution) + e.cp.Calls(awsfake.OpListActionExecutions); n != 0 {
		t.Errorf("CodePipeline asked %d times about a pipeline of another account", n)
	}
}

// A pass sweeps the approval requests asked ApprovalSweepAfter ago or earlier, and counts
// those it queued; a failed sweep fails the pass, after the rest of it.
func TestPassSweepsApprovalRequests(t *testing.T) {
	e := newReconcileEnv(t)
	now := e.clock.Now()
	var cutoffs []time.Time
	e.r.SweepApprovals = func(_ context.Context, cutoff, at time.Time) (int, error) {
		if !at.Equal(now) {
			t.Errorf("swept at %s, want %s", at, now)
		}
		cutoffs = append(cutoffs, cutoff)
		return 2, nil
	}
	if resp := e.pass(t); resp.ApprovalsQueued != 2 {
		t.Errorf("approvals queued = %d, want 2", resp.ApprovalsQueued)
	}
	if want := []time.Time{now.Add(-10 * time.Minute)}; !slices.EqualFunc(cutoffs, want, time.Time.Equal) {
		t.Errorf("cutoffs = %v, want %v", cutoffs, want)
	}

	throttled := errors.New("throttled")
	e.r.SweepApprovals = func(context.Context, time.Time, time.Time) (int, error) { return 0, throttled }
	if _, err := e.r.Handle(context.Background(), json.RawMessage(`{}`)); !errors.Is(err, throttled) {
		t.Error("a failed sweep is returned, for Lambda to retry")
	}
}
