// Package reconcile is the reconciler function's use case: EventBridge may lose events, so runs
// still in progress after a while are compared with what CodePipeline says, and the truth is
// folded in through the same recorder as the live events.
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
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// RecentRuns lists a pipeline's runs that started at or after since.
type RecentRuns interface {
	ListSince(ctx context.Context, pipeline string, since time.Time) ([]pipeline.Run, error)
}

// ExecutionReader reads what CodePipeline knows of an execution (codepipelineapi.Reader). It
// returns an error wrapping pipeline.ErrNotFound when CodePipeline does not know it.
type ExecutionReader interface {
	Execution(ctx context.Context, k pipeline.Key) (pipeline.ExecutionView, error)
}

// Defaults for a Reconciler's zero fields.
const (
	DefaultStaleAfter = 30 * time.Minute
	// DefaultLookback covers the longest a run can wait on CodePipeline's side: a manual
	// approval waits up to seven days.
	DefaultLookback = 8 * 24 * time.Hour
)

// EventPrefix starts the ids of the events the reconciler makes up.
const EventPrefix = "reconciler-"

// Reconciler is the reconciler use case: EventBridge delivers at least once but may lose
// events, so runs that stay in progress past StaleAfter are compared with what CodePipeline
// says, and the truth is folded in as events, through the same Recorder as the live events, so
// that a run whose FAILED event was lost still ends FAILED and still sends its notification.
type Reconciler struct {
	Runs       RecentRuns
	Executions ExecutionReader
	Recorder   *pipeline.Recorder
	Log        *slog.Logger
	Clock      pipeline.Clock

	PipelineName string
	StaleAfter   time.Duration // a run in progress for longer is checked; zero: DefaultStaleAfter
	Lookback     time.Duration // runs that started earlier are not looked at; zero: DefaultLookback

	// Requeue, when set, hands notifications queued before the cutoff and still not sent back
	// to the notifier (runstore.Dynamo.Requeue): the way back after the stream's retries.
	Requeue func(ctx context.Context, cutoff, now time.Time) (int, error)
}

// ReconcileResponse is what one pass did.
type ReconcileResponse struct {
	lambdaio.Response
	Checked int `json:"checked"`           // runs compared with CodePipeline
	Settled int `json:"settled"`           // of those, runs that this pass ended
	Missing int `json:"missing,omitempty"` // runs CodePipeline does not know (left as they are)
	// Redriven counts runs this reconciler ended before, whose notifications were decided again
	// (the claims keep each message single), in case a pass failed to send them.
	Redriven int `json:"redriven,omitempty"`
	// Requeued counts notifications handed back to the notifier.
	Requeued int `json:"requeued,omitempty"`
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
	staleAfter, lookback := cmp.Or(r.StaleAfter, DefaultStaleAfter), cmp.Or(r.Lookback, DefaultLookback)
	resp := ReconcileResponse{Response: lambdaio.Response{Outcome: lambdaio.OutcomeDone, Pipeline: r.PipelineName}}
	runs, err := r.Runs.ListSince(ctx, r.PipelineName, now.Add(-lookback))
	if err != nil {
		err = fmt.Errorf("list runs of %s: %w", r.PipelineName, err)
		r.Log.ErrorContext(ctx, "reconcile pass failed", "pipeline", r.PipelineName, "error", err.Error())
		return resp, err
	}
	var errs []error
	for _, run := range runs {
		attrs := []any{"pipeline", run.Pipeline, "executionId", run.ExecutionID, "status", string(run.Status), "startedAt", run.Began()}
		switch {
		case redrivable(run):
			if err := r.redrive(ctx, run); err != nil {
				r.Log.ErrorContext(ctx, "run not redriven", append(attrs, "error", err.Error())...)
				errs = append(errs, err)
				continue
			}
			resp.Redriven++
		case run.Status.Terminal() || now.Sub(run.Began()) < staleAfter:
			continue
		default:
			resp.Checked++
			after, found, err := r.reconcile(ctx, run, now)
			switch {
			case err != nil:
				r.Log.ErrorContext(ctx, "run not reconciled", append(attrs, "error", err.Error())...)
				errs = append(errs, err)
			case !found:
				resp.Missing++
				r.Log.WarnContext(ctx, "CodePipeline does not know the execution; run left as it is", attrs...)
			case after.Status.Terminal():
				resp.Settled++
				r.Log.InfoContext(ctx, "run settled", append(attrs, "newStatus", string(after.Status))...)
			default:
				r.Log.InfoContext(ctx, "run still in progress", append(attrs, "newStatus", string(after.Status))...)
			}
		}
	}
	if r.Requeue != nil {
		n, err := r.Requeue(ctx, now.Add(-staleAfter), now)
		resp.Requeued = n
		if err != nil {
			r.Log.ErrorContext(ctx, "notifications not requeued", "error", err.Error())
			errs = append(errs, err)
		} else if n > 0 {
			r.Log.WarnContext(ctx, "notifications requeued: they were still unsent", "count", n)
		}
	}
	resp.Reason = fmt.Sprintf("checked %d, settled %d", resp.Checked, resp.Settled)
	if err := errors.Join(errs...); err != nil {
		return resp, fmt.Errorf("reconcile %s: %d of %d runs failed: %w", r.PipelineName, len(errs), len(runs), err)
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
	after = run
	for _, ev := range ExecutionEvents(run, view, now) {
		res, err := r.Recorder.Handle(ctx, ev)
		if err != nil {
			return after, true, fmt.Errorf("fold %s: %w", ev.ID, err)
		}
		if res.Loaded {
			after = res.Run
		} else {
			after.Status = res.Status
		}
	}
	return after, true, nil
}

// redrivable reports whether run was ended by the reconciler with a status that notifies. Its
// notification was decided when it ended; deciding it again on later passes (within Lookback)
// sends it if that pass failed to, since the run, now terminal, is otherwise not looked at
// again. The claims keep it to one message.
func redrivable(run pipeline.Run) bool {
	return strings.HasPrefix(run.EventID, EventPrefix) && run.Status.Decisive()
}

// redrive takes the notification decision of the run's ended attempt again, on the run as read.
func (r *Reconciler) redrive(ctx context.Context, run pipeline.Run) error {
	if _, err := r.Recorder.Decide(ctx, run, max(run.Attempt, 1)); err != nil {
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
	attempt := currentAttempt(run)
	base := pipeline.Event{Pipeline: run.Pipeline, ExecutionID: run.ExecutionID, Attempt: attempt, Version: exec.Version}
	id := func(element string, s pipeline.State) string {
		return EventPrefix + run.ExecutionID + "-" + element + "-" + string(s) + "-" + strconv.Itoa(attempt)
	}

	latest := latestActions(exec.Actions)
	var events []pipeline.Event
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
