// Package reconcile is the reconciler function's use case: EventBridge may lose events, so runs
// still in progress after a while, runs that failed and that a stage retry may have turned
// green, and runs the store does not know are compared with what CodePipeline says, and the
// truth is folded in through the same recorder as the live events. A pass reads what may need
// work (settle.go), not the pipeline's history.
package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Store is what the reconciler reads and keeps (runstore.Dynamo, runstore.Memory): a pass
// reads its pipeline's checkpoint, the runs that changed since, and the runs it must look at;
// never the pipeline's whole recent history.
type Store interface {
	// Load returns a run's history, or an error wrapping pipeline.ErrNotFound.
	Load(ctx context.Context, k pipeline.Key) (pipeline.History, error)
	// Changed lists the pipeline's runs whose record changed at or after since (see
	// pipeline.Change), from the index alone.
	Changed(ctx context.Context, pipeline string, since time.Time) ([]pipeline.Change, error)
	// Checkpoint returns what the last pass left, or an error wrapping pipeline.ErrNotFound.
	Checkpoint(ctx context.Context, pipeline string) (pipeline.Checkpoint, error)
	// SaveCheckpoint keeps cp unless a checkpoint at least as recent is kept already.
	SaveCheckpoint(ctx context.Context, pipeline string, cp pipeline.Checkpoint) error
}

// ExecutionReader reads what CodePipeline knows of an execution (codepipelineapi.Reader). It
// returns an error wrapping pipeline.ErrNotFound when CodePipeline does not know it.
type ExecutionReader interface {
	Execution(ctx context.Context, k pipeline.Key) (pipeline.ExecutionView, error)
}

// ExecutionLister lists the executions of a pipeline that CodePipeline started at or after
// since (codepipelineapi.Lister), or returns an error wrapping pipeline.ErrNotFound when it
// does not know the pipeline.
type ExecutionLister interface {
	Started(ctx context.Context, pipeline string, since time.Time) ([]pipeline.ExecutionSummary, error)
}

// Defaults for a Reconciler's zero fields.
const (
	DefaultStaleAfter = 30 * time.Minute
	// DefaultLookback covers the longest a run can wait on CodePipeline's side: a manual
	// approval waits up to seven days.
	DefaultLookback = 8 * 24 * time.Hour
	// RedecideWithin is how long after a decisive run's end was recorded its notification
	// decision is taken again on every pass: longer than Lambda's asynchronous retries of the
	// event that ended it (about 3 minutes) plus a few passes, so that a decision whose every
	// delivery failed after the end was recorded (the run is terminal; nothing else would
	// look at it) is still taken. It counts from when the end was recorded, not from when the
	// run ended: a run the reconciler settles an hour after it ended must still be redriven
	// if the pass that settled it failed to decide (seeds 381, 3558, 4544). The claims keep
	// the message single.
	RedecideWithin = time.Hour
	// DecideAsKnownAfter is how long a pipeline of another account or region, which
	// CodePipeline here cannot be asked about, keeps a FAILED whose trigger and Source error
	// are unknown undecided after its record last changed: EventBridge can still deliver the
	// Source action's event that would tell a "push to start" (late, or retried after a failed
	// invocation). Past it, the passes left in RedecideWithin tell the failure
	// (Recorder.DecideAsKnown); deciding sooner told a failure and then, when the late event
	// came, a "push to start" as well.
	DecideAsKnownAfter = 20 * time.Minute
	// DefaultRecheckFailedWithin bounds how long after a run failed the reconciler still asks
	// CodePipeline whether a stage retry turned it green while its events were lost (issue 9,
	// defect 12). CodePipeline sets no time limit on retrying a failed stage by hand, and an
	// automatic retry on failure happens once, right after it ("Configuring stage retry for a
	// failed stage or failed actions",
	// https://docs.aws.amazon.com/codepipeline/latest/userguide/stage-retry.html); so the
	// horizon is the reconciler's own, the Lookback it follows runs for. What keeps the
	// recheck cheap is CodePipeline's rule that a stage can no longer be retried in a run once
	// it has failed in a later run (RetryStageExecution's NotLatestPipelineExecutionException,
	// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_RetryStageExecution.html):
	// at most one failed run per stage is rechecked, besides an earlier one that a later
	// failure has just frozen, asked until CodePipeline answers once (it may have retried it
	// before, seed 34545).
	DefaultRecheckFailedWithin = DefaultLookback
	// ChangeOverlap: a pass reads the changes placed since the last pass began, less this
	// much, so that a write stamped just before that time but visible in the index only after
	// it is still read: reads of a global secondary index are eventually consistent ("DynamoDB
	// read consistency",
	// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html),
	// a writer's request may take a while and be retried, Lambda hosts' clocks differ
	// slightly. In steady state it costs nothing: a pass reads the last RedecideWithin anyway.
	ChangeOverlap = 15 * time.Minute
	// RequeueAfter: a notification queued at least this long ago whose lease or backoff is
	// over is handed back to the notifier.
	RequeueAfter = 2 * time.Minute
	// ApprovalSweepAfter: an approval request asked at least this long ago that nothing queued
	// a notification for has its notification queued by the reconciler. The notifier learns of
	// a request from the stream, within seconds; this leaves it the time of its own retries
	// before the reconciler steps in (the claim keeps the message single either way).
	ApprovalSweepAfter = 10 * time.Minute
)

// EventPrefix starts the ids of the events the reconciler makes up.
const EventPrefix = "reconciler-"

// Reconciler is the reconciler use case: EventBridge delivers at least once but may lose
// events, so runs that stay in progress past StaleAfter, and failed runs CodePipeline may still
// retry, are compared with what CodePipeline says, and the truth is folded in as events,
// through the same Recorder as the live events, so that a run whose FAILED event was lost still
// ends FAILED and still sends its notification, and a run retried green says "recovered".
type Reconciler struct {
	Runs       Store
	Executions ExecutionReader
	Recorder   *pipeline.Recorder
	Log        *slog.Logger
	Clock      pipeline.Clock

	// Discover, when set, lists the executions CodePipeline started since the last pass, so
	// that a run of which the store holds no pipeline-level event and no push (they were all
	// lost; its stage and action events, if any, are not indexed) is found and settled too.
	// One call per pass, whatever the history.
	Discover ExecutionLister

	PipelineName string
	StaleAfter   time.Duration // a run in progress for longer is checked; zero: DefaultStaleAfter
	Lookback     time.Duration // runs that started earlier are not looked at; zero: DefaultLookback
	// RecheckFailedWithin: a run that failed longer ago is no longer asked about; zero:
	// DefaultRecheckFailedWithin.
	RecheckFailedWithin time.Duration

	// Requeue, when set, hands notifications queued before the cutoff and still not sent back
	// to the notifier (runstore.Dynamo.Requeue): the way back after the stream's retries.
	Requeue func(ctx context.Context, cutoff, now time.Time) (int, error)
	// SweepApprovals, when set, queues the notification of approval requests made before the
	// cutoff, still undecided and before their deadline, that nothing queued
	// (runstore.Dynamo.SweepApprovals): the way back when the notifier failed for the request's
	// stream record until its retries were spent.
	SweepApprovals func(ctx context.Context, cutoff, now time.Time) (int, error)
}

// ReconcileResponse is what one pass did.
type ReconcileResponse struct {
	lambdaio.Response
	Checked int `json:"checked"`           // runs compared with CodePipeline
	Settled int `json:"settled"`           // of those, runs that this pass ended (or turned from FAILED)
	Missing int `json:"missing,omitempty"` // runs CodePipeline does not know (left as they are)
	// Redriven counts runs this reconciler ended before, whose notifications were decided again
	// (the claims keep each message single), in case a pass failed to send them.
	Redriven int `json:"redriven,omitempty"`
	// Requeued counts notifications handed back to the notifier.
	Requeued int `json:"requeued,omitempty"`
	// ApprovalsQueued counts approval requests whose notification this pass queued.
	ApprovalsQueued int `json:"approvalsQueued,omitempty"`
	// Foreign counts runs of pipelines of another account or region (pipeline.Home): never
	// compared with CodePipeline, which answers for its own account and region only.
	Foreign int `json:"foreign,omitempty"`
}

// Handle runs one pass. The scheduled event's content does not matter beyond being JSON. One
// run's failure does not stop the others; the failures (AWS or store errors, which a later
// pass or Lambda's retry may overcome) are returned joined, after every run was tried. An
// execution CodePipeline does not know (deleted pipeline, history expired) is logged and left
// as it is: no later pass can learn more, and Lookback bounds how long it is asked about.
func (r *Reconciler) Handle(ctx context.Context, raw json.RawMessage) (ReconcileResponse, error) {
	if !json.Valid(raw) {
		r.Log.WarnContext(ctx, "event rejected", "error", "not JSON", "bytes", len(raw))
		return ReconcileResponse{Response: lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: "scheduled event is not JSON"}}, nil
	}
	now := r.Clock.Now()
	resp := ReconcileResponse{Response: lambdaio.Response{Outcome: lambdaio.OutcomeDone, Pipeline: r.PipelineName}}
	errs, err := r.settle(ctx, now, &resp)
	if err != nil {
		r.Log.ErrorContext(ctx, "reconcile pass failed", "pipeline", r.PipelineName, "error", err.Error())
		return resp, err
	}
	if r.Requeue != nil {
		n, err := r.Requeue(ctx, now.Add(-RequeueAfter), now)
		resp.Requeued = n
		if err != nil {
			r.Log.ErrorContext(ctx, "notifications not requeued", "error", err.Error())
			errs = append(errs, err)
		} else if n > 0 {
			r.Log.WarnContext(ctx, "notifications requeued: they were still unsent", "count", n)
		}
	}
	if r.SweepApprovals != nil {
		n, err := r.SweepApprovals(ctx, now.Add(-ApprovalSweepAfter), now)
		resp.ApprovalsQueued = n
		if err != nil {
			r.Log.ErrorContext(ctx, "approval requests not swept", "error", err.Error())
			errs = append(errs, err)
		} else if n > 0 {
			r.Log.WarnContext(ctx, "approval notifications queued: nothing had told the requests", "count", n)
		}
	}
	resp.Reason = fmt.Sprintf("checked %d, settled %d", resp.Checked, resp.Settled)
	if err := errors.Join(errs...); err != nil {
		return resp, fmt.Errorf("reconcile %s: %d failures: %w", r.PipelineName, len(errs), err)
	}
	return resp, nil
}

// reconcile folds CodePipeline's view of run's execution into the record. found is false when
// CodePipeline does not know the execution.
func (r *Reconciler) reconcile(ctx context.Context, run pipeline.Run, now time.Time) (after pipeline.Run, found bool, err error) {
	view, err := r.Executions.Execution(ctx, run.Key())
	if errors.Is(err, pipeline.ErrNotFound) {
		return run, false, nil
	}
	if err != nil {
		return run, true, err
	}
	after, err = r.fold(ctx, run, view, now)
	return after, true, err
}

// fold folds view, what CodePipeline said of run's execution, into the record, through the
// recorder (which decides what the events that end an attempt call for).
func (r *Reconciler) fold(ctx context.Context, run pipeline.Run, view pipeline.ExecutionView, now time.Time) (pipeline.Run, error) {
	after := run
	for _, ev := range ExecutionEvents(run, view, now) {
		res, err := r.Recorder.Handle(ctx, ev)
		if err != nil {
			return after, fmt.Errorf("fold %s: %w", ev.ID, err)
		}
		if res.Loaded {
			after = res.Run
		} else if ev.Level == pipeline.LevelPipeline {
			after.Status = res.Status // a stage's or an action's status is not the run's
		}
	}
	return after, nil
}

// redrive takes the notification decision of the run's ended attempt again, on the run as read.
// A run that ended in attempt n > 1 without the outcomes of the earlier attempts (their events
// were lost) is first compared with CodePipeline, whose action executions tell the failures
// that the stage retries followed, when ask is true (the home's pipelines). When asKnown is
// true, what the record cannot tell is decided as it stands (Recorder.DecideAsKnown).
func (r *Reconciler) redrive(ctx context.Context, run pipeline.Run, ask, asKnown bool) error {
	unknown := run.Status == pipeline.StatusFailed && run.Trigger == (pipeline.Trigger{}) && run.Failure().Action == ""
	for k := 1; ask && (k < run.Attempt || unknown && k == 1); k++ {
		if _, ok := run.OutcomeOf(k); !ok || unknown {
			after, found, err := r.reconcile(ctx, run, r.Clock.Now())
			if err != nil {
				return fmt.Errorf("redrive %s: %w", run.ExecutionID, err)
			}
			if found {
				run = after
			}
			break
		}
	}
	// Every ended attempt: a retried run's first failure is decided on its own.
	var errs []error
	for _, o := range run.Outcomes {
		decide := r.Recorder.Decide
		if asKnown {
			decide = r.Recorder.DecideAsKnown // CodePipeline cannot be asked: nothing more will come
		}
		if _, err := decide(ctx, run, o.Attempt); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redrive %s: %w", run.ExecutionID, err)
	}
	return nil
}

// ExecutionEvents turns what CodePipeline reports of an execution into the events that would
// have told it: one per action (its latest execution), one per stage (derived from its
// actions), one for the pipeline, in that order, so that a terminal pipeline event, which
// decides the notifications, finds the failing action already recorded.
//
// The API does not give the pipeline-execution-attempt; every event carries the run's current
// attempt, the highest the record has seen. Event ids are deterministic
// ("reconciler-<execution>-<element>-<state>-<attempt>") and times come from the action
// executions, so that a second pass repeats the first one's events exactly, and the store
// keeps them once. ExecutionEvents is pure.
func ExecutionEvents(run pipeline.Run, exec pipeline.ExecutionView, now time.Time) []pipeline.Event {
	retried := retriedFailures(exec.Actions)
	attempt := max(currentAttempt(run), len(retried)+1)
	base := pipeline.Event{Pipeline: run.Pipeline, ExecutionID: run.ExecutionID, Attempt: attempt, Version: exec.Version}
	id := func(element string, s pipeline.State) string {
		return EventPrefix + run.ExecutionID + "-" + element + "-" + string(s) + "-" + strconv.Itoa(attempt)
	}

	latest := latestActions(exec.Actions)
	var events []pipeline.Event
	// A failed action execution that the same action ran again after is a stage retry: the
	// attempt it ended failed (CodePipeline only retries a failed stage of a failed
	// execution). The API gives no attempt numbers; they are counted from the retries, so
	// that a run retried green whose events were lost still tells its failure and sends
	// "recovered" (issue 9, defect 12).
	for i, a := range retried {
		k := i + 1
		if k >= attempt {
			break
		}
		ev := base
		ev.Attempt = k
		at := cmp.Or(a.UpdatedAt, a.StartTime)
		pre := EventPrefix + run.ExecutionID + "-"
		suf := "-" + string(pipeline.StateFailed) + "-" + strconv.Itoa(k)
		act := ev
		act.ID, act.Level, act.Stage, act.Action, act.State, act.Time, act.StartTime = pre+"action-"+a.Stage+"-"+a.Action+suf, pipeline.LevelAction, a.Stage, a.Action, pipeline.StateFailed, at, a.StartTime
		act.ActionExecutionID, act.ActionRegion, act.ActionType, act.Result, act.InputArtifacts, act.OutputArtifacts = a.ExecutionID, a.Region, a.Type, a.Result, a.Input, a.Output
		st := ev
		st.ID, st.Level, st.Stage, st.State, st.Time = pre+"stage-"+a.Stage+suf, pipeline.LevelStage, a.Stage, pipeline.StateFailed, at
		pl := ev
		pl.ID, pl.Level, pl.State, pl.Time, pl.Trigger = pre+"pipeline"+suf, pipeline.LevelPipeline, pipeline.StateFailed, at, exec.Trigger
		events = append(events, act, st, pl)
	}
	stages := map[string][]pipeline.ActionExecution{}
	var stageOrder []string
	for _, a := range latest {
		if a.State == "" {
			continue
		}
		if _, seen := stages[a.Stage]; !seen {
			stageOrder = append(stageOrder, a.Stage)
		}
		stages[a.Stage] = append(stages[a.Stage], a)
		ev := base
		ev.ID, ev.Level, ev.Stage, ev.Action, ev.State = id("action-"+a.Stage+"-"+a.Action, a.State), pipeline.LevelAction, a.Stage, a.Action, a.State
		ev.StartTime = a.StartTime
		ev.Time = ev.StartTime
		if a.State != pipeline.StateStarted {
			ev.Time = cmp.Or(a.UpdatedAt, ev.StartTime)
		}
		ev.Time = cmp.Or(ev.Time, latestKnown(run), now)
		ev.ActionExecutionID, ev.ActionRegion, ev.ActionType = a.ExecutionID, a.Region, a.Type
		ev.InputArtifacts, ev.OutputArtifacts, ev.Result = a.Input, a.Output, a.Result
		events = append(events, ev)
	}

	for _, stage := range stageOrder {
		state, at, ok := stageState(stage, stages, exec.State)
		if !ok {
			continue
		}
		ev := base
		ev.ID, ev.Level, ev.Stage, ev.State, ev.Time = id("stage-"+stage, state), pipeline.LevelStage, stage, state, cmp.Or(at, latestKnown(run), now)
		events = append(events, ev)
	}

	state := exec.State
	// An execution in progress is said so only to a record that has never heard it from the
	// pipeline: a STARTED event would also move the run's place in the list to its time.
	if state == "" || state == pipeline.StateStarted && run.Attempt > 0 {
		return events
	}
	ev := base
	ev.ID, ev.Level, ev.State, ev.Trigger = id("pipeline", state), pipeline.LevelPipeline, state, exec.Trigger
	if state == pipeline.StateStarted {
		ev.Time = cmp.Or(run.Began(), earliestStart(latest), now)
	} else {
		ev.Time = cmp.Or(latestUpdate(latest), latestKnown(run), now)
	}
	return append(events, ev)
}

// retriedFailures returns the failed action executions that the same action ran again after,
// oldest first: one per stage retry.
func retriedFailures(actions []pipeline.ActionExecution) []pipeline.ActionExecution {
	var out []pipeline.ActionExecution
	for _, a := range actions {
		if a.State != pipeline.StateFailed {
			continue
		}
		if slices.ContainsFunc(actions, func(b pipeline.ActionExecution) bool {
			return b.Stage == a.Stage && b.Action == a.Action && b.ExecutionID != a.ExecutionID && b.StartTime.After(a.StartTime)
		}) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b pipeline.ActionExecution) int {
		return cmp.Compare(a.StartTime.UnixNano(), b.StartTime.UnixNano())
	})
	return out
}

// latestActions keeps, per stage and action, the latest execution (a retried action runs
// again), ordered by start.
func latestActions(actions []pipeline.ActionExecution) []pipeline.ActionExecution {
	byAction := map[string]pipeline.ActionExecution{}
	later := func(a, b pipeline.ActionExecution) bool {
		if c := a.StartTime.Compare(b.StartTime); c != 0 {
			return c > 0
		}
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c > 0
		}
		return a.ExecutionID > b.ExecutionID
	}
	for _, a := range actions {
		k := a.Stage + "\x00" + a.Action
		if have, ok := byAction[k]; !ok || later(a, have) {
			byAction[k] = a
		}
	}
	out := make([]pipeline.ActionExecution, 0, len(byAction))
	for _, a := range byAction {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b pipeline.ActionExecution) int {
		if later(a, b) {
			return 1
		}
		if later(b, a) {
			return -1
		}
		return 0
	})
	return out
}

// stageState derives a stage's state from its actions' latest executions:
//   - an action failed: FAILED, when the last failure happened;
//   - an action runs: STARTED, when the first began;
//   - an action was abandoned: as the execution was ended (stopped or cancelled), if it was;
//   - all succeeded: SUCCEEDED when the execution is over or another stage began after them
//     (stages run one after the other), else STARTED (more actions may follow).
func stageState(stage string, stages map[string][]pipeline.ActionExecution, exec pipeline.State) (pipeline.State, time.Time, bool) {
	acts := stages[stage]
	has := func(s pipeline.State) bool {
		return slices.ContainsFunc(acts, func(a pipeline.ActionExecution) bool { return a.State == s })
	}
	switch {
	case has(pipeline.StateFailed):
		var failed []pipeline.ActionExecution
		for _, a := range acts {
			if a.State == pipeline.StateFailed {
				failed = append(failed, a)
			}
		}
		return pipeline.StateFailed, latestUpdate(failed), true
	case has(pipeline.StateStarted):
		return pipeline.StateStarted, earliestStart(acts), true
	case has(pipeline.StateAbandoned):
		switch exec {
		case pipeline.StateStopping:
			return pipeline.StateStopping, latestUpdate(acts), true
		case pipeline.StateStopped:
			return pipeline.StateStopped, latestUpdate(acts), true
		case pipeline.StateCanceled, pipeline.StateSuperseded:
			return pipeline.StateCanceled, latestUpdate(acts), true
		}
		return "", time.Time{}, false
	}
	done := latestUpdate(acts)
	over := exec != pipeline.StateStarted && exec != pipeline.StateStopping
	for other, list := range stages {
		if other != stage && !earliestStart(list).Before(done) {
			over = true
		}
	}
	if over {
		return pipeline.StateSucceeded, done, true
	}
	return pipeline.StateStarted, earliestStart(acts), true
}

func latestUpdate(acts []pipeline.ActionExecution) time.Time {
	var t time.Time
	for _, a := range acts {
		if u := cmp.Or(a.UpdatedAt, a.StartTime); u.After(t) {
			t = u
		}
	}
	return t
}

func earliestStart(acts []pipeline.ActionExecution) time.Time {
	var t time.Time
	for _, a := range acts {
		if s := a.StartTime; !s.IsZero() && (t.IsZero() || s.Before(t)) {
			t = s
		}
	}
	return t
}

// latestKnown is the latest time the record holds, for an event whose own time CodePipeline
// does not report: deterministic, unlike the clock.
func latestKnown(run pipeline.Run) time.Time {
	t := run.At
	for _, st := range run.Stages {
		if st.At.After(t) {
			t = st.At
		}
		for _, a := range st.Actions {
			if a.At.After(t) {
				t = a.At
			}
		}
	}
	return cmp.Or(t, run.Began())
}

// currentAttempt is the highest pipeline-execution-attempt the record has seen.
func currentAttempt(run pipeline.Run) int {
	n := max(run.Attempt, 1)
	for _, st := range run.Stages {
		n = max(n, st.Attempt)
		for _, a := range st.Actions {
			n = max(n, a.Attempt)
		}
	}
	return n
}
