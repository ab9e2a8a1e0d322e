package pipeline

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// NotificationType is the kind of message a run deserves.
type NotificationType string

const (
	// NotifyFailed: a run failed. One per failed execution.
	NotifyFailed NotificationType = "failed"
	// NotifyRecovered: a run succeeded and the pipeline's previous decisive run had failed.
	NotifyRecovered NotificationType = "recovered"
	// NotifyPushToStart: the run CodePipeline starts on creation failed in Source because the
	// repository is still empty. Said once per pipeline instead of a failure.
	NotifyPushToStart NotificationType = "push-to-start"
)

// Notification is a decision to tell people about a run. What it says (commit, logs, links) is
// gathered when it is sent, from the run record and from AWS.
type Notification struct {
	Type        NotificationType `json:"type"`
	Pipeline    string           `json:"pipeline"`
	ExecutionID string           `json:"executionId"`
	Attempt     int              `json:"attempt,omitempty"`
	At          time.Time        `json:"at"`
	// For recovered: when the pipeline went red (the first failure of the streak) and which
	// execution failed first.
	BrokenSince       time.Time `json:"brokenSince,omitempty"`
	FirstFailedExecID string    `json:"firstFailedExecutionId,omitempty"`
	// Recovers is, for recovered, the failure streak the success ends, oldest first, as the
	// decision knew it: a streak is recovered once (Recorder, OutcomeStore.Recover),
	// whichever success of the green streak is learnt first.
	Recovers []Outcome `json:"-"`
	// For approval (ApprovalNotification): the deploy that waits — its stack and its token, as
	// in its ApprovalKey —, until when, and what it widens, one change a line, bounded;
	// WideningLeft counts the changes left out. At is when the deployer asked.
	Stack        string    `json:"stack,omitempty"`
	Deploy       string    `json:"deploy,omitempty"`
	Deadline     time.Time `json:"deadline,omitzero"`
	Widening     []string  `json:"widening,omitempty"`
	WideningLeft int       `json:"wideningLeft,omitempty"`
}

// Key identifies the notification for its claim, so that it is sent once however often it is
// decided: one failure, one recovery, one push-to-start per execution. (push-to-start was keyed
// per pipeline: a later run taken for one, wrongly, was then never reported at all.) An
// approval is told once per request, and an execution may ask more than once (its two deploy
// stacks, or a retried stage's new deploy): its key names the stack and the deploy too.
func (n Notification) Key() string {
	parts := []string{string(n.Type), n.Pipeline, n.ExecutionID}
	if n.Type == NotifyApproval {
		parts = append(parts, n.Stack, n.Deploy)
	}
	return strings.Join(parts, "#")
}

// IsPushToStart reports whether an ended run failed only because the repository has no commit
// on the tracked branch yet, from what proves it (issue 9, defect 3), never from missing
// history: the run failed in Source and no later stage started, and either CodePipeline
// started it when the pipeline was created (trigger CreatePipeline), or the Source action's
// error says the branch or the repository is missing or empty (CodePipeline reports a
// ConfigurationError then; see "Troubleshooting CodePipeline",
// https://docs.aws.amazon.com/codepipeline/latest/userguide/troubleshooting.html). A Source
// failure with the trigger unknown and any other error is a failure.
func IsPushToStart(run Run, o Outcome) bool {
	if o.Status != StatusFailed || !onlySourceStage(run) {
		return false
	}
	return o.Trigger.Type == TriggerCreatePipeline || o.Trigger == (Trigger{}) && emptySourceError(run)
}

// emptyBranch matches the Source action's messages for a repository without the tracked
// branch: "The branch main does not exist in the repository app", "no branch named main was
// found", "The repository app is empty".
var emptyBranch = regexp.MustCompile(`(?i)branch \S+ (does not exist|was not found)|no branch named|repository \S+ is empty|empty repository`)

// emptySourceError reports whether a failed Source action of the run says its branch or
// repository is missing or empty.
func emptySourceError(run Run) bool {
	for _, st := range run.Stages {
		for _, a := range st.Actions {
			if a.Status == StatusFailed && (a.Type.Category == "Source" || st.Name == "Source") &&
				a.Result.ErrorCode == "ConfigurationError" && emptyBranch.MatchString(a.Result.Summary) {
				return true
			}
		}
	}
	for _, f := range run.Failures {
		if f.Stage == "Source" && f.Result.ErrorCode == "ConfigurationError" && emptyBranch.MatchString(f.Result.Summary) {
			return true
		}
	}
	return false
}

// onlySourceStage reports whether no stage after Source has started in the run.
func onlySourceStage(run Run) bool {
	for name := range run.Stages {
		if name != "Source" && !isSourceStage(run.Stages[name]) {
			return false
		}
	}
	return true
}

func isSourceStage(st Stage) bool {
	if len(st.Actions) == 0 {
		return false
	}
	for _, a := range st.Actions {
		if a.Type.Category != "Source" {
			return false
		}
	}
	return true
}

// Silent reports whether an ended attempt never produces a message nor counts as decisive:
// superseded, cancelled (a self-update restarts the run on the new definition), stopped.
func Silent(o Outcome) bool { return !o.Status.Decisive() }

// Decide returns the notifications that the pipeline's history calls for once o has ended.
// history holds the pipeline's decisive outcomes around o (o included or not), in any order;
// it must reach back at least to the start of the failure streak before o, and include the
// next decisive outcome after o when one is known. Decide is pure and may return a
// notification that an earlier call already returned: callers claim each by its Key.
func Decide(history []Outcome, o Outcome, pushToStart bool) []Notification {
	if pushToStart {
		return []Notification{{Type: NotifyPushToStart, Pipeline: o.Pipeline, ExecutionID: o.ExecutionID, Attempt: o.Attempt, At: o.At}}
	}
	if Silent(o) {
		return nil
	}
	h := decisive(history, o)
	i := slices.IndexFunc(h, func(x Outcome) bool { return sameAttempt(x, o) })
	var out []Notification
	if o.Status == StatusFailed {
		out = append(out, Notification{Type: NotifyFailed, Pipeline: o.Pipeline, ExecutionID: o.ExecutionID, Attempt: o.Attempt, At: o.At})
		// A success that arrived before this failure but ended after it is a recovery.
		if i+1 < len(h) && h[i+1].Status == StatusSucceeded {
			out = append(out, recovered(h, i+1))
		}
		return out
	}
	if i > 0 && h[i-1].Status == StatusFailed {
		out = append(out, recovered(h, i))
	}
	return out
}

// recovered builds the recovery of h[i], a success preceded by a failure.
func recovered(h []Outcome, i int) Notification {
	first := i - 1
	for first > 0 && h[first-1].Status == StatusFailed {
		first--
	}
	s := h[i]
	return Notification{Type: NotifyRecovered, Pipeline: s.Pipeline, ExecutionID: s.ExecutionID, Attempt: s.Attempt, At: s.At,
		BrokenSince: h[first].At, FirstFailedExecID: h[first].ExecutionID, Recovers: slices.Clone(h[first:i])}
}

// decisive returns the decisive outcomes of o's pipeline, with o, without duplicates, in the
// order they ended.
func decisive(history []Outcome, o Outcome) []Outcome {
	h := make([]Outcome, 0, len(history)+1)
	for _, x := range append(slices.Clone(history), o) {
		if x.Pipeline != o.Pipeline || !x.Status.Decisive() {
			continue
		}
		if slices.ContainsFunc(h, func(y Outcome) bool { return sameAttempt(x, y) }) {
			continue
		}
		h = append(h, x)
	}
	slices.SortFunc(h, CompareOutcomes)
	return h
}

// CompareOutcomes orders outcomes by the time they ended, as the "recovered" decision needs
// it. EventBridge times have a resolution of one second, so two runs of a pipeline can end in
// the same second; the order of such a tie uses what the events tell, never their ids:
//
//  1. the earlier end second first (times finer than a second, as the reconciler reads them
//     from CodePipeline, count by their second, like the events');
//  2. within one second, the run that started earlier first (detail start-time; a run whose
//     ending event does not carry it counts as started earliest): the later one ran the newer
//     revision, and its result is the pipeline's state;
//  3. attempts of one execution in the order they ran;
//  4. an exact tie puts the success first, so that the pipeline counts as red afterwards: a
//     green pipeline gets the failure and no "recovered", a red one its "recovered" (the
//     success ends the streak) and then the failure;
//  5. only then execution id and attempt, so that the order is total. Outcomes that are still
//     tied here have the same status, so the ids change which execution a message names, never
//     which messages are sent.
func CompareOutcomes(a, b Outcome) int {
	if c := a.At.Truncate(time.Second).Compare(b.At.Truncate(time.Second)); c != 0 {
		return c
	}
	if c := a.Started.Compare(b.Started); c != 0 {
		return c
	}
	if a.ExecutionID == b.ExecutionID && a.Attempt != b.Attempt {
		return a.Attempt - b.Attempt
	}
	if c := tieRank(a.Status) - tieRank(b.Status); c != 0 {
		return c
	}
	if c := strings.Compare(a.ExecutionID, b.ExecutionID); c != 0 {
		return c
	}
	return a.Attempt - b.Attempt
}

// tieRank places a success before a failure that ended at the same time.
func tieRank(s Status) int {
	if s == StatusSucceeded {
		return 0
	}
	return 1
}

func sameAttempt(a, b Outcome) bool {
	return a.Pipeline == b.Pipeline && a.ExecutionID == b.ExecutionID && a.Attempt == b.Attempt
}
