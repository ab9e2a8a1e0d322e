package pipeline

import (
	"cmp"
	"slices"
	"time"
)

// ExecutionView is what CodePipeline's API (GetPipelineExecution, ListActionExecutions) reports
// of an execution, in the domain's words. The reconciler turns it into the events that would
// have told it; the notifier reads the failed action from it when the events missed it.
type ExecutionView struct {
	// State is the execution's status as the event state that tells it (InProgress is
	// STARTED, Cancelled is CANCELED); "" for a status the API adds later.
	State   State
	Version int64
	Trigger Trigger
	Actions []ActionExecution
}

// ExecutionSummary is one execution as ListPipelineExecutions summarises it.
type ExecutionSummary struct {
	ExecutionID string
	// State is the execution's status as the event state that tells it; "" for a status
	// the API adds later.
	State     State
	StartTime time.Time
	Trigger   Trigger
	// Revisions are the source revisions (commit ids) the execution runs; empty while
	// CodePipeline has not resolved them yet.
	Revisions []string
}

// Runs reports whether the execution runs commitID.
func (s ExecutionSummary) Runs(commitID string) bool { return slices.Contains(s.Revisions, commitID) }

// ActionExecution is one execution of one action (ListActionExecutions): a retried action has
// several.
type ActionExecution struct {
	Stage, Action string
	State         State // STARTED, SUCCEEDED, FAILED or ABANDONED; "" when unknown
	ExecutionID   string
	StartTime     time.Time
	UpdatedAt     time.Time
	Region        string
	Type          ActionType
	Result        ExecutionResult // for a failure, Summary is the action's error message
	Input, Output []Artifact
}

// Failure returns where a failed action execution puts the failure of attempt.
func (a ActionExecution) Failure(attempt int) Failure {
	return Failure{Stage: a.Stage, Action: a.Action, Attempt: attempt, Result: a.Result, Type: a.Type, Artifacts: a.Output,
		At: cmp.Or(a.UpdatedAt, a.StartTime)}
}

// LatestFailure returns the failed action execution that ended last, in stage (any stage when
// stage is ""): a retried stage that failed again has two.
func (v ExecutionView) LatestFailure(stage string) (ActionExecution, bool) {
	var found ActionExecution
	ok := false
	for _, a := range v.Actions {
		if a.State != StateFailed || stage != "" && a.Stage != stage {
			continue
		}
		if !ok || a.UpdatedAt.After(found.UpdatedAt) {
			found, ok = a, true
		}
	}
	return found, ok
}
