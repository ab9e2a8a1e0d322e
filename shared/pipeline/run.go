package pipeline

import (
	"cmp"
	"sort"
	"strings"
	"time"
)

// Status is the recorded status of a run, a stage or an action.
type Status string

const (
	StatusInProgress Status = "IN_PROGRESS"
	StatusSucceeded  Status = "SUCCEEDED"
	StatusFailed     Status = "FAILED"
	StatusStopping   Status = "STOPPING"
	StatusStopped    Status = "STOPPED"
	StatusSuperseded Status = "SUPERSEDED"
	StatusCanceled   Status = "CANCELED"
	StatusAbandoned  Status = "ABANDONED"
)

// Terminal reports whether nothing more happens to an element in this status (for its attempt).
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusStopped, StatusSuperseded, StatusCanceled, StatusAbandoned:
		return true
	}
	return false
}

// Decisive reports whether a run that ended in s counts for "is the pipeline broken?": only
// SUCCEEDED and FAILED do; superseded, cancelled and stopped runs say nothing about the code.
func (s Status) Decisive() bool { return s == StatusSucceeded || s == StatusFailed }

// order breaks ties between observations that have the same attempt, terminality and time, so
// that the fold stays deterministic whatever the delivery order.
func (s Status) order() int {
	switch s {
	case StatusInProgress:
		return 1
	case StatusStopping:
		return 2
	case StatusSucceeded:
		return 3
	case StatusAbandoned:
		return 4
	case StatusSuperseded:
		return 5
	case StatusCanceled:
		return 6
	case StatusStopped:
		return 7
	case StatusFailed:
		return 8
	}
	return 0
}

// Progress is where one element (the run, a stage, an action) stands, as told by the event that
// decides it.
type Progress struct {
	Status  Status    `json:"status"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`      // time of the deciding event
	EventID string    `json:"eventId"` // id of the deciding event
}

// beats reports whether observation p takes precedence over q. The relation is a strict total
// order, so keeping the maximum is commutative, associative and idempotent: any permutation of
// any number of copies of the same events ends in the same state.
//
//  1. a higher pipeline-execution-attempt wins (a retried stage starts afresh);
//  2. within an attempt a terminal state wins over a non-terminal one;
//  3. then the later event time wins;
//  4. then a fixed order of statuses, then the event id.
func (p Progress) beats(q Progress) bool {
	if p.Attempt != q.Attempt {
		return p.Attempt > q.Attempt
	}
	if pt, qt := p.Status.Terminal(), q.Status.Terminal(); pt != qt {
		return pt
	}
	if !p.At.Equal(q.At) {
		return p.At.After(q.At)
	}
	if p.Status != q.Status {
		return p.Status.order() > q.Status.order()
	}
	return p.EventID > q.EventID
}

// Commit is the revision a run builds.
type Commit struct {
	ID       string    `json:"id,omitempty"`
	Message  string    `json:"message,omitempty"`
	Author   string    `json:"author,omitempty"`
	PushedAt time.Time `json:"pushedAt,omitempty"`
	// CommittedAt is when the commit was made (its committer date, from codecommit:GetCommit,
	// as the committer's clock said); zero when on-push could not look it up.
	CommittedAt time.Time `json:"committedAt,omitzero"`
	URL         string    `json:"url,omitempty"`
}

// EnteredAt is when the change the run builds entered delivery, where its lead time starts
// (docs/metrics.md): the commit's time, else its push, else the run's start. A commit dated
// after its push (a committer's clock ahead) counts from the push.
func (r Run) EnteredAt() time.Time {
	c := r.Commit
	if !c.CommittedAt.IsZero() && (c.PushedAt.IsZero() || !c.CommittedAt.After(c.PushedAt)) {
		return c.CommittedAt
	}
	return cmp.Or(c.PushedAt, r.StartedAt)
}

// Run is the record of one pipeline execution.
type Run struct {
	Pipeline    string `json:"pipeline"` // the pipeline's identity (identity.go)
	ExecutionID string `json:"executionId"`

	Progress            // the run's own status, from pipeline-level events
	Version   int64     `json:"version,omitempty"`
	Trigger   Trigger   `json:"trigger"`
	Commit    Commit    `json:"commit"`
	StartedAt time.Time `json:"startedAt"`
	// StartTime is the execution's start as CodePipeline states it (detail start-time, which
	// V2 pipelines send); zero when no event told it. It orders runs that end in the same
	// second (Outcome.Started).
	StartTime time.Time `json:"startTime,omitempty"`
	EndedAt   time.Time `json:"endedAt,omitempty"`

	Stages map[string]Stage `json:"stages,omitempty"`

	// Outcomes holds every terminal pipeline-level state seen, one per attempt, so that a failed
	// attempt that a retry turned green is still known (for the "recovered" message).
	Outcomes []Outcome `json:"outcomes,omitempty"`
	// Failures holds, per attempt, where it failed, so that the failure of an attempt a retry
	// turned green can still be told.
	Failures []Failure `json:"failures,omitempty"`
}

// Stage is one stage of a run.
type Stage struct {
	Name string `json:"name"`
	Progress
	StartedAt time.Time         `json:"startedAt"`
	Actions   map[string]Action `json:"actions,omitempty"`
}

// Action is one action of a stage.
type Action struct {
	Name string `json:"name"`
	Progress
	StartedAt       time.Time       `json:"startedAt"`
	ExecutionID     string          `json:"actionExecutionId,omitempty"`
	Type            ActionType      `json:"type"`
	Result          ExecutionResult `json:"result"`
	InputArtifacts  []Artifact      `json:"inputArtifacts,omitempty"`
	OutputArtifacts []Artifact      `json:"outputArtifacts,omitempty"`
}

// Outcome is a terminal pipeline-level state of one attempt of a run.
type Outcome struct {
	Pipeline    string    `json:"pipeline"`
	ExecutionID string    `json:"executionId"`
	Attempt     int       `json:"attempt"`
	Status      Status    `json:"status"`
	At          time.Time `json:"at"`
	// Started is the execution's start as the ending event tells it (detail start-time, which
	// V2 pipelines send); zero when the event does not carry it. It orders runs that end in
	// the same second (CompareOutcomes).
	Started time.Time `json:"started,omitempty"`
	Trigger Trigger   `json:"trigger"`
}

// Key identifies an execution across pipelines, accounts and regions.
type Key struct {
	Pipeline    string // the pipeline's identity (identity.go)
	ExecutionID string
}

// Key returns the run's key.
func (r Run) Key() Key { return Key{r.Pipeline, r.ExecutionID} }

// CompareRuns orders runs by start, then pipeline and execution id (oldest first).
func CompareRuns(a, b Run) int {
	if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
		return c
	}
	if c := strings.Compare(a.Pipeline, b.Pipeline); c != 0 {
		return c
	}
	return strings.Compare(a.ExecutionID, b.ExecutionID)
}

// Duration is how long the run took, or has taken until now when it is still going.
func (r Run) Duration(now time.Time) time.Duration {
	if r.StartedAt.IsZero() {
		return 0
	}
	if !r.EndedAt.IsZero() {
		return r.EndedAt.Sub(r.StartedAt)
	}
	if r.Status.Terminal() {
		return r.At.Sub(r.StartedAt)
	}
	return now.Sub(r.StartedAt)
}

// StageStatus is a stage's status as far as the run's events tell it. A stage whose own stage
// events were lost (only its actions' arrived) takes its status from its actions: FAILED if one
// failed, IN_PROGRESS if one is running, SUCCEEDED if they all succeeded and the run is over or
// has gone past the stage, CANCELED if one was abandoned; otherwise IN_PROGRESS.
func (r Run) StageStatus(name string) Status {
	st := r.Stages[name]
	if st.Status != "" || len(st.Actions) == 0 {
		return st.Status
	}
	all, abandoned := true, false
	for _, a := range st.Actions {
		switch a.Status {
		case StatusFailed:
			return StatusFailed
		case StatusInProgress, StatusStopping:
			return StatusInProgress
		case StatusAbandoned:
			abandoned = true
		}
		all = all && a.Status == StatusSucceeded
	}
	switch {
	case abandoned:
		return StatusCanceled
	case all && (r.Status.Terminal() || r.laterStageStarted(st)):
		return StatusSucceeded
	}
	return StatusInProgress
}

// laterStageStarted reports whether another stage started after every action of st began.
func (r Run) laterStageStarted(st Stage) bool {
	var last time.Time
	for _, a := range st.Actions {
		if a.At.After(last) {
			last = a.At
		}
	}
	for name, other := range r.Stages {
		if name != st.Name && !other.StartedAt.Before(last) {
			return true
		}
	}
	return false
}

// StageNames returns the run's stages in the order they started.
func (r Run) StageNames() []string {
	names := make([]string, 0, len(r.Stages))
	for n := range r.Stages {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := r.Stages[names[i]], r.Stages[names[j]]
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.Before(b.StartedAt)
		}
		return names[i] < names[j]
	})
	return names
}

// ActionNames returns a stage's actions in the order they started.
func (s Stage) ActionNames() []string {
	names := make([]string, 0, len(s.Actions))
	for n := range s.Actions {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := s.Actions[names[i]], s.Actions[names[j]]
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.Before(b.StartedAt)
		}
		return names[i] < names[j]
	})
	return names
}

// Failure locates why a run failed: the failed stage and action of the latest attempt, and the
// action's result. Stage and Action are empty when the events that tell them have not arrived.
type Failure struct {
	Stage     string          `json:"stage"`
	Action    string          `json:"action,omitempty"`
	Attempt   int             `json:"attempt"`
	Result    ExecutionResult `json:"result"`
	Type      ActionType      `json:"type"`
	Artifacts []Artifact      `json:"artifacts,omitempty"`
	At        time.Time       `json:"at"`
	EventID   string          `json:"eventId"`
}

// beats orders two failures of one attempt: a failed action says more than a failed stage;
// then the later failure wins (as Progress orders them).
func (f Failure) beats(g Failure) bool {
	if (f.Action != "") != (g.Action != "") {
		return f.Action != ""
	}
	return Progress{Status: StatusFailed, Attempt: f.Attempt, At: f.At, EventID: f.EventID + f.Stage + "|" + f.Action}.
		beats(Progress{Status: StatusFailed, Attempt: g.Attempt, At: g.At, EventID: g.EventID + g.Stage + "|" + g.Action})
}

// OutcomeOf returns the terminal state the fold recorded for an attempt of the run.
func (r Run) OutcomeOf(attempt int) (Outcome, bool) {
	for _, o := range r.Outcomes {
		if o.Attempt == attempt {
			return o, true
		}
	}
	return Outcome{}, false
}

// FailureOf returns where the given attempt failed, and whether that is known.
func (r Run) FailureOf(attempt int) (Failure, bool) {
	for _, f := range r.Failures {
		if f.Attempt == attempt {
			return f, true
		}
	}
	return Failure{}, false
}

// FailureAt returns where the given attempt failed, or where the run failed when that is not
// recorded per attempt.
func (r Run) FailureAt(attempt int) Failure {
	if f, ok := r.FailureOf(attempt); ok {
		return f
	}
	return r.Failure()
}

// Failure returns where the run's latest attempt failed: from the failures recorded for that
// attempt or, failing that, from the failed stages and actions of the record. Among failed
// stages the one of the highest attempt and, within it, the latest to fail is chosen; likewise
// for its actions.
func (r Run) Failure() Failure {
	if f, ok := r.FailureOf(max(r.Attempt, 1)); ok {
		return f
	}
	var f Failure
	var best Progress
	for _, name := range r.StageNames() {
		st := r.Stages[name]
		if st.Status != StatusFailed {
			// A stage whose stage event was lost may still have a failed action.
			if !st.hasFailedAction() {
				continue
			}
		}
		p := st.Progress
		if st.Status != StatusFailed {
			p = st.latestFailedAction().Progress
		}
		if f.Stage == "" || p.beats(best) {
			f.Stage, best = name, p
		}
	}
	if f.Stage == "" {
		return f
	}
	st := r.Stages[f.Stage]
	f.Attempt = best.Attempt
	if a := st.latestFailedAction(); a.Name != "" {
		f.Action, f.Result, f.Type, f.Artifacts = a.Name, a.Result, a.Type, a.OutputArtifacts
	}
	return f
}

func (s Stage) hasFailedAction() bool { return s.latestFailedAction().Name != "" }

func (s Stage) latestFailedAction() Action {
	var out Action
	for _, name := range s.ActionNames() {
		a := s.Actions[name]
		if a.Status == StatusFailed && (out.Name == "" || a.Progress.beats(out.Progress)) {
			out = a
		}
	}
	return out
}

// Artifact returns the newest output artifact with the given name from any action of the run.
func (r Run) Artifact(name string) (Artifact, bool) {
	var out Artifact
	var best Progress
	found := false
	for _, st := range r.Stages {
		for _, a := range st.Actions {
			for _, art := range a.OutputArtifacts {
				if art.Name == name && (!found || a.Progress.beats(best)) {
					out, best, found = art, a.Progress, true
				}
			}
		}
	}
	return out, found
}

// Author formats a commit's author as git does: "Name <email>", or what is known of it.
func Author(name, email string) string {
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case email != "":
		return "<" + email + ">"
	}
	return name
}

// Began is when the run began, as far as the record knows: its first event or, for a run known
// only from the push that started it (its events lost), the push. Lists place runs by it.
func (r Run) Began() time.Time { return cmp.Or(r.StartedAt, r.Commit.PushedAt) }
