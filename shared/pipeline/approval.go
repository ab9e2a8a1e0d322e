package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ApprovalKey names the approval of one deploy: the stack a deploy action of one pipeline
// execution widens IAM on, and the deploy itself. An execution has two deploy actions (the
// pipeline's own stack, the application's), so the stack is part of the key; a retried stage
// is a new deploy (its first job has a new id), which asks again.
type ApprovalKey struct {
	Pipeline    string `json:"pipeline"`
	ExecutionID string `json:"executionId"`
	Stack       string `json:"stack"`
	// Deploy is the deploy's token: the id of the job that started it.
	Deploy string `json:"deploy"`
}

func (k ApprovalKey) String() string {
	return fmt.Sprintf("%s/%s stack %s (deploy %s)", k.Pipeline, k.ExecutionID, k.Stack, k.Deploy)
}

// ApprovalStatus is where an approval stands.
type ApprovalStatus string

// Statuses of an approval. An expired approval is PENDING past its deadline (Approval.State).
const (
	ApprovalPending  ApprovalStatus = "PENDING"
	ApprovalApproved ApprovalStatus = "APPROVED"
	ApprovalRejected ApprovalStatus = "REJECTED"
	ApprovalExpired  ApprovalStatus = "EXPIRED"
)

// Approval is a deploy that widens IAM, waiting for a person: the deployer requests it, a
// person decides it once (lp approve, lp reject). It binds the decision to exactly one change:
// this stack, from the template whose digest is BaseSHA256 ("" when the stack had none) to the
// one whose digest is TemplateSHA256, granting the Widening listed.
type Approval struct {
	Key            ApprovalKey    `json:"key"`
	Status         ApprovalStatus `json:"status"`
	TemplatePath   string         `json:"templatePath,omitempty"`
	TemplateSHA256 string         `json:"templateSha256"`
	BaseSHA256     string         `json:"baseSha256,omitempty"`
	// Widening lists how the new template grants more than the stack's current one, one change
	// a line (policy.Change.String: "ROLE: KIND: DETAIL").
	Widening    []string  `json:"widening"`
	RequestedAt time.Time `json:"requestedAt"`
	Deadline    time.Time `json:"deadline"` // undecided by then, the deploy fails: approval expired
	DecidedBy   string    `json:"decidedBy,omitempty"`
	DecidedAt   time.Time `json:"decidedAt,omitzero"`
	Reason      string    `json:"reason,omitempty"`
}

// State is the status at now: a pending approval past its deadline is EXPIRED.
func (a Approval) State(now time.Time) ApprovalStatus {
	if a.Status == ApprovalPending && !now.Before(a.Deadline) {
		return ApprovalExpired
	}
	return a.Status
}

// Covers reports whether this approval vouches for a deploy of the same stack to the same
// template whose widening is changes: every change must be one the person saw.
func (a Approval) Covers(templateSHA256 string, changes []string) bool {
	if a.TemplateSHA256 != templateSHA256 {
		return false
	}
	seen := make(map[string]bool, len(a.Widening))
	for _, c := range a.Widening {
		seen[c] = true
	}
	for _, c := range changes {
		if !seen[c] {
			return false
		}
	}
	return true
}

// Decision is a person's answer to an approval.
type Decision struct {
	Approve bool
	By      string // the caller's ARN (sts:GetCallerIdentity)
	At      time.Time
	Reason  string
}

// Errors of a decision that cannot be made.
var (
	ErrApprovalNotFound = errors.New("no approval request")
	ErrAlreadyDecided   = errors.New("already decided")
	ErrApprovalExpired  = errors.New("approval expired")
)

// MaxApprovalReason bounds a rejection's reason (it reaches the action's failure message).
const MaxApprovalReason = 500

// Validate checks a decision before it is stored.
func (d Decision) Validate() error {
	switch {
	case strings.TrimSpace(d.By) == "":
		return errors.New("decision: who decided is unknown")
	case d.At.IsZero():
		return errors.New("decision: no time")
	case len(d.Reason) > MaxApprovalReason:
		return fmt.Errorf("decision: reason of %d characters, at most %d", len(d.Reason), MaxApprovalReason)
	}
	return nil
}

// NotifyApproval tells people that a deploy which widens IAM waits for their decision (lp
// approve, lp reject; docs/security.md). No run decides it: the notifier learns of the request
// from the runs table's stream (the APPROVAL# item the deployer writes) and tells it once per
// request, under a key that names the stack and the deploy (Notification.Key).
const NotifyApproval NotificationType = "approval"

// Bounds of the widening an approval notification carries. Its claim item keeps the list (a
// retry is composed from it) and every message shows it whole, so it is cut here to fit the
// smallest text the channels allow: a Slack section of 3,000 characters (shared/notify,
// SlackMaxSectionText; bytes are never fewer than characters), with room for its heading.
// What is left out is counted (Notification.WideningLeft); lp show lists it all.
const (
	MaxNotifyWideningLine = 300  // bytes of one change
	MaxNotifyWidening     = 2400 // bytes of the changes kept, a newline after each
)

// ApprovalNotification is the notification of an approval request: pipeline, execution, stack
// and deploy from its key, asked at RequestedAt, waiting until Deadline, with the widening cut
// to MaxNotifyWideningLine a change and MaxNotifyWidening in all, earlier changes first.
func ApprovalNotification(a Approval) Notification {
	n := Notification{Type: NotifyApproval, Pipeline: a.Key.Pipeline, ExecutionID: a.Key.ExecutionID, At: a.RequestedAt,
		Stack: a.Key.Stack, Deploy: a.Key.Deploy, Deadline: a.Deadline}
	used := 0
	for i, c := range a.Widening {
		c = clipBytes(c, MaxNotifyWideningLine)
		if used+len(c)+1 > MaxNotifyWidening {
			n.WideningLeft = len(a.Widening) - i
			break
		}
		used += len(c) + 1
		n.Widening = append(n.Widening, c)
	}
	return n
}

// clipBytes cuts s to at most limit bytes between runes, ending in "…" when it cut.
func clipBytes(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const mark = "…"
	cut := 0
	for i := range s {
		if i > limit-len(mark) {
			break
		}
		cut = i
	}
	return s[:cut] + mark
}
