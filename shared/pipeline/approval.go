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
