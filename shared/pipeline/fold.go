package pipeline

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Effect is something the caller should act on after a fold.
type Effect interface{ isEffect() }

// Ended says that a terminal pipeline-level state was recorded for an attempt of the run for
// the first time. Notification decisions start from it.
type Ended struct{ Outcome Outcome }

// Ignored says that the event changed nothing: a duplicate, or a state that an observation
// already folded in outranks (a late STARTED after SUCCEEDED).
type Ignored struct{ Reason string }

func (Ended) isEffect()   {}
func (Ignored) isEffect() {}

// Ignore reasons.
const (
	ReasonDuplicate = "duplicate"
	ReasonStale     = "stale"
)

// Apply folds one event into the run record and returns the new record and its effects. It is
// pure: run is not modified, and the result depends on the set of events folded so far, not on
// their order or on how often each was delivered.
//
// run may be the zero Run (the first event of an execution). ev must belong to run's
// execution when run is not zero.
func Apply(run Run, ev Event) (Run, []Effect) {
	if ev.Attempt < 1 {
		ev.Attempt = 1
	}
	next := run
	next.Pipeline, next.ExecutionID = ev.Pipeline, ev.ExecutionID
	obs := Progress{Status: ev.State.Status(), Attempt: ev.Attempt, At: ev.Time, EventID: ev.ID}

	next.StartedAt = earliest(next.StartedAt, ev.Time)
	if !ev.StartTime.IsZero() {
		next.StartedAt = earliest(next.StartedAt, ev.StartTime)
		next.StartTime = earliest(next.StartTime, ev.StartTime)
	}
	if ev.Version > next.Version {
		next.Version = ev.Version
	}

	var effects []Effect
	var won bool
	switch ev.Level {
	case LevelPipeline:
		won = next.Status == "" || obs.beats(next.Progress)
		if won {
			next.Progress = obs
		}
		if ev.Trigger != (Trigger{}) && next.Trigger == (Trigger{}) || won && ev.Trigger != (Trigger{}) {
			next.Trigger = ev.Trigger
		}
		if obs.Status.Terminal() {
			out := Outcome{Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID, Attempt: ev.Attempt, Status: obs.Status, At: ev.Time, Started: next.StartTime, Trigger: next.Trigger}
			if added, outcomes := addOutcome(next.Outcomes, out); added {
				next.Outcomes = outcomes
				effects = append(effects, Ended{Outcome: out})
				won = true
			}
		}
	case LevelStage:
		next.Stages = maps.Clone(next.Stages)
		if next.Stages == nil {
			next.Stages = map[string]Stage{}
		}
		st := next.Stages[ev.Stage]
		st.Name = ev.Stage
		st.StartedAt = earliest(st.StartedAt, ev.Time)
		if won = st.Status == "" || obs.beats(st.Progress); won {
			st.Progress = obs
		}
		next.Stages[ev.Stage] = st
		if ev.State == StateFailed {
			f := Failure{Stage: ev.Stage, Attempt: obs.Attempt, At: ev.Time, EventID: ev.ID}
			if changed, list := addFailure(next.Failures, f); changed {
				next.Failures, won = list, true
			}
		}
	case LevelAction:
		next.Stages = maps.Clone(next.Stages)
		if next.Stages == nil {
			next.Stages = map[string]Stage{}
		}
		st := next.Stages[ev.Stage]
		st.Name = ev.Stage
		st.StartedAt = earliest(st.StartedAt, ev.Time)
		st.Actions = maps.Clone(st.Actions)
		if st.Actions == nil {
			st.Actions = map[string]Action{}
		}
		a := st.Actions[ev.Action]
		a.Name = ev.Action
		a.StartedAt = earliest(a.StartedAt, ev.Time)
		if won = a.Status == "" || obs.beats(a.Progress); won {
			// An action's details are those of the observation that decides it, so that a
			// retried action does not keep the failed attempt's result.
			a.Progress = obs
			a.ExecutionID = ev.ActionExecutionID
			a.Type = ev.ActionType
			a.Result = ev.Result
			a.InputArtifacts = slices.Clone(ev.InputArtifacts)
			a.OutputArtifacts = slices.Clone(ev.OutputArtifacts)
		}
		st.Actions[ev.Action] = a
		next.Stages[ev.Stage] = st
		if ev.State == StateFailed {
			f := Failure{Stage: ev.Stage, Action: ev.Action, Attempt: obs.Attempt, Result: ev.Result, Type: ev.ActionType,
				Artifacts: slices.Clone(ev.OutputArtifacts), At: ev.Time, EventID: ev.ID}
			if changed, list := addFailure(next.Failures, f); changed {
				next.Failures, won = list, true
			}
		}
		if isSource(ev) && obs.Status == StatusSucceeded {
			next.Commit = commitFromSource(next.Commit, ev.Result)
		}
	}

	// Every outcome carries the run's trigger and start time, whichever event told them
	// (AWS's FAILED event may come without execution-trigger, and before STARTED).
	if hasOtherTrigger(next) {
		next.Outcomes = slices.Clone(next.Outcomes)
		for i := range next.Outcomes {
			next.Outcomes[i].Trigger, next.Outcomes[i].Started = next.Trigger, next.StartTime
		}
	}
	if next.Status.Terminal() {
		next.EndedAt = next.At
	} else {
		next.EndedAt = time.Time{}
	}
	if next.Status == "" {
		// Stage or action events came first: the run is under way.
		// Attempt 0 and no time: any pipeline-level observation outranks this placeholder.
		next.Status = StatusInProgress
	}
	if !won && sameStart(run, next) {
		reason := ReasonStale
		if seen(run, ev) {
			reason = ReasonDuplicate
		}
		return run, []Effect{Ignored{Reason: reason}}
	}
	return next, effects
}

// WithPush records what on-push learnt of the commit (author, message, pushed-at); it wins over
// what the Source action reported, which lacks the author.
func WithPush(run Run, c Commit) Run {
	next := run
	next.Commit.ID = cmp.Or(c.ID, run.Commit.ID)
	next.Commit.Message = cmp.Or(c.Message, run.Commit.Message)
	next.Commit.Author = cmp.Or(c.Author, run.Commit.Author)
	next.Commit.URL = cmp.Or(run.Commit.URL, c.URL)
	if !c.PushedAt.IsZero() {
		next.Commit.PushedAt = c.PushedAt
	}
	if !c.CommittedAt.IsZero() {
		next.Commit.CommittedAt = c.CommittedAt
	}
	return next
}

func isSource(ev Event) bool {
	if ev.ActionType.Category != "" {
		return ev.ActionType.Category == "Source"
	}
	return ev.Stage == "Source"
}

// commitFromSource fills what the push record did not: the Source action reports the commit id
// in external-execution-id and the commit message in external-execution-summary.
func commitFromSource(c Commit, r ExecutionResult) Commit {
	if c.ID == "" {
		c.ID = r.ExternalID
	}
	if c.Message == "" {
		c.Message = r.Summary
	}
	if c.URL == "" {
		c.URL = r.URL
	}
	return c
}

func hasOtherTrigger(r Run) bool {
	for _, o := range r.Outcomes {
		if o.Trigger != r.Trigger || !o.Started.Equal(r.StartTime) {
			return true
		}
	}
	return false
}

// addOutcome adds o to the per-attempt outcomes, keeping them sorted by attempt. Two terminal
// states for one attempt (rare, e.g. STOPPED and a late FAILED) keep the winner.
func addOutcome(list []Outcome, o Outcome) (bool, []Outcome) {
	for i, have := range list {
		if have.Attempt != o.Attempt {
			continue
		}
		hp := Progress{Status: have.Status, Attempt: have.Attempt, At: have.At}
		op := Progress{Status: o.Status, Attempt: o.Attempt, At: o.At}
		if !op.beats(hp) {
			return false, list
		}
		out := slices.Clone(list)
		out[i] = o
		return true, out
	}
	out := append(slices.Clone(list), o)
	slices.SortFunc(out, func(a, b Outcome) int { return a.Attempt - b.Attempt })
	return true, out
}

// addFailure keeps, per attempt, the failure that says most (see Failure.beats).
func addFailure(list []Failure, f Failure) (bool, []Failure) {
	for i, have := range list {
		if have.Attempt != f.Attempt {
			continue
		}
		if !f.beats(have) {
			return false, list
		}
		out := slices.Clone(list)
		out[i] = f
		return true, out
	}
	out := append(slices.Clone(list), f)
	slices.SortFunc(out, func(a, b Failure) int { return a.Attempt - b.Attempt })
	return true, out
}

// seen reports whether run already holds exactly this event's observation.
func seen(run Run, ev Event) bool {
	obs := Progress{Status: ev.State.Status(), Attempt: max(ev.Attempt, 1), At: ev.Time, EventID: ev.ID}
	switch ev.Level {
	case LevelPipeline:
		return run.Progress == obs
	case LevelStage:
		return run.Stages[ev.Stage].Progress == obs
	case LevelAction:
		return run.Stages[ev.Stage].Actions[ev.Action].Progress == obs
	}
	return false
}

// sameStart reports whether the fold moved no start time or version either, so that an
// outranked event that still taught us an earlier start is not reported as ignored.
func sameStart(a, b Run) bool {
	if !a.StartedAt.Equal(b.StartedAt) || !a.StartTime.Equal(b.StartTime) || a.Version != b.Version || a.Status != b.Status {
		return false
	}
	for name, sb := range b.Stages {
		sa, ok := a.Stages[name]
		if !ok || !sa.StartedAt.Equal(sb.StartedAt) || len(sa.Actions) != len(sb.Actions) {
			return false
		}
		for an, ab := range sb.Actions {
			aa, ok := sa.Actions[an]
			if !ok || !aa.StartedAt.Equal(ab.StartedAt) || aa.ExecutionID != ab.ExecutionID {
				return false
			}
		}
	}
	return a.Commit == b.Commit && a.Trigger == b.Trigger
}

func earliest(have, t time.Time) time.Time {
	if have.IsZero() || (!t.IsZero() && t.Before(have)) {
		return t
	}
	return have
}
