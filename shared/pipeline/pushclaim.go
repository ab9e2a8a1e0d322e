package pipeline

import (
	"strings"
	"time"
)

// Push claims make on-push start one pipeline run per commit, however often and however
// concurrently EventBridge delivers its push events. A claim moves PENDING (with a lease) →
// STARTED (with the execution id), or PENDING → SKIPPED ([skip ci]). A PENDING claim whose
// lease ran out (its holder crashed between claiming and starting) is taken again by the next
// delivery; the clientRequestToken is fixed by the first claim, so that a holder that did
// start before crashing and its successor start the same execution.

// Push claim states.
const (
	PushPending = "PENDING"
	PushStarted = "STARTED"
	PushSkipped = "SKIPPED"
)

// PushClaim is where the start of one pushed commit stands.
type PushClaim struct {
	State string // PushPending, PushStarted or PushSkipped; "" when the commit was never claimed
	// Held is true when this caller holds the claim: it must start (or skip) the run, then
	// settle the claim as started (or skipped), or release it when it cannot.
	Held        bool
	EventID     string // the event that first claimed the commit
	Token       string // the clientRequestToken of the commit's run, fixed by the first claim
	ExecutionID string // the run started for the commit (PushStarted)
	Reason      string // why the commit runs nothing (PushSkipped)
	Attempts    int    // how often the claim was taken
	LeaseUntil  time.Time
	SettledAt   time.Time // when it was STARTED or SKIPPED
}

// RerunAfter is how long after its run started a commit pushed again runs again. Within it, a
// second event for the same commit is the same push told twice (a branch created and updated
// in one push); after it, it is a person pushing an old commit again — a rollback with
// `git push --force aws <commit>:main` — who expects it deployed.
const RerunAfter = 10 * time.Minute

// Rerunnable reports whether a settled claim may be taken again by push p of its commit: p is
// another push of the commit, made (by its event time) after the claim settled, and at least
// RerunAfter ago. A push dated before the claim settled is served by the run that settled it
// (a delivery retried for hours, or the re-drive having started the commit first); a re-drive
// never runs a commit again (Push.Redriven).
func (c PushClaim) Rerunnable(p Push, now time.Time) bool {
	return (c.State == PushStarted || c.State == PushSkipped) && c.EventID != p.ID && !p.Redriven() &&
		!c.SettledAt.IsZero() && p.Time.After(c.SettledAt) && now.Sub(c.SettledAt) >= RerunAfter
}

// RedrivePrefix starts the ids of the pushes that the push re-drive makes up
// (pushstart.Redrive): the head of a tracked branch that no push event started.
const RedrivePrefix = "redrive-"

// RedrivePush is the push the re-drive makes up for commitID, found at the head of branch
// at now. Its id derives from the commit, so that every pass names the same push, and so does
// its clientRequestToken (when it is the commit's first claim); its time is when the re-drive
// found it, as the push's own time is not known.
func RedrivePush(region, repository, branch, commitID string, now time.Time) Push {
	return Push{ID: RedrivePrefix + commitID, Time: now.UTC(), Region: region, Repository: repository,
		Kind: PushReferenceUpdated, RefType: "branch", RefName: branch, RefFullName: "refs/heads/" + branch, CommitID: commitID}
}

// Redriven reports whether p was made up by the re-drive rather than told by CodeCommit.
func (p Push) Redriven() bool { return strings.HasPrefix(p.ID, RedrivePrefix) }

// Claimable reports whether push p may take claim c at now: a commit never claimed, a PENDING
// claim whose lease ran out, or a settled one that p runs again (Rerunnable).
func (c PushClaim) Claimable(p Push, now time.Time) bool {
	return c.State == "" || c.State == PushPending && c.LeaseUntil.Before(now) || c.Rerunnable(p, now)
}

// PushSkip is a push that started nothing: another repository or branch, a tag, a deleted
// branch, or an event kind that does not run the pipeline.
type PushSkip struct {
	EventID    string
	Repository string
	Kind       string
	RefType    string
	RefName    string
	CommitID   string
	Reason     string
	At         time.Time
}

// SkipOf describes push p that starts nothing, for the reason given.
func SkipOf(p Push, reason string, now time.Time) PushSkip {
	return PushSkip{EventID: p.ID, Repository: p.Repository, Kind: p.Kind, RefType: p.RefType, RefName: p.RefName,
		CommitID: p.Commit(), Reason: reason, At: now.UTC()}
}

// Commit is the commit a push is about: the new one, or the old one of a deletion.
func (p Push) Commit() string {
	if p.CommitID != "" {
		return p.CommitID
	}
	return p.OldCommitID
}

// Notification claim states: a decided notification is queued PENDING, then marked SENT once
// every channel delivered it, or FAILED when its attempts are spent.
const (
	ClaimPending = "PENDING"
	ClaimSent    = "SENT"
	// ClaimFailed: every attempt failed (MaxNotifyAttempts); nothing sends it any more.
	ClaimFailed = "FAILED"
)

// Queued is a decided notification as the notifier finds it: its claim's state and the
// channels that delivered it already.
type Queued struct {
	Notification Notification
	State        string // ClaimPending, ClaimSent or ClaimFailed
	Channels     map[string]bool
}

// Pending reports whether the notification still has to be sent.
func (q Queued) Pending() bool { return q.State == ClaimPending }
