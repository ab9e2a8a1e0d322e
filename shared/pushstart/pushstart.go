// Package pushstart is the on-push function's use case: one pipeline run, pinned to the
// commit, per push to the tracked branch of the tracked repository.
package pushstart

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// CommitInfo is what codecommit:GetCommit tells of a commit that the push event does not.
type CommitInfo struct {
	Message     string
	AuthorName  string
	AuthorEmail string
	// AuthorDate and CommitterDate are as CodeCommit gives them: git's "<epoch seconds>
	// <±hhmm>". The committer date is when the commit was made as it is (a rebase or an
	// amend moves it); the lead time of a change starts there (docs/metrics.md).
	AuthorDate    string
	CommitterDate string
}

// gitTime reads a CodeCommit date, git's "<epoch seconds> <±hhmm>" ("1484167798 -0800",
// "GetCommit", AWS CodeCommit API Reference); zero when it does not read as one.
func gitTime(s string) time.Time {
	secs, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// CommitGetter looks a commit up (codecommit:GetCommit). Unlike the CodePipeline interfaces it
// does not take the SDK's types, so that this package, which every function links, does not
// import the CodeCommit client: from v1.37 on (schema-based serde) that client registers the
// schemas of its whole API at init, about 1 MB on arm64, which on-pipeline-event's 8 MB budget
// cannot take. functions/on-push adapts the SDK client.
type CommitGetter interface {
	GetCommit(ctx context.Context, repository, commitID string) (CommitInfo, error)
}

// ExecutionStarter starts a pipeline run on a commit (codepipelineapi.Starter); the same token
// names the same execution.
type ExecutionStarter interface {
	Start(ctx context.Context, pipelineName, commitID, token string) (executionID string, err error)
}

// ProjectFinder finds the declared project a repository belongs to (projects.Lookup), or
// returns an error wrapping pipeline.ErrUndeclaredProject.
type ProjectFinder interface {
	ByRepository(ctx context.Context, repository string) (pipeline.Project, error)
}

// PushStore keeps push claims, skipped pushes and the pushed commit of each run.
type PushStore interface {
	ClaimPush(ctx context.Context, p pipeline.Push, token string, now time.Time, lease time.Duration) (pipeline.PushClaim, error)
	MarkPushStarted(ctx context.Context, p pipeline.Push, executionID string, now time.Time) error
	MarkPushSkipped(ctx context.Context, p pipeline.Push, reason string, now time.Time) error
	ReleasePush(ctx context.Context, p pipeline.Push) error
	RecordSkip(ctx context.Context, p pipeline.Push, reason string, now time.Time) error
	RecordPush(ctx context.Context, k pipeline.Key, c pipeline.Commit) error
}

// DefaultPushLease is the push claim lease when Pushes.Lease is zero. It must exceed the time
// from claim to start (two AWS calls and two writes) and stay under Lambda's first async
// retry delay (1 minute), so that the retry of a crashed delivery finds the claim free.
const DefaultPushLease = 50 * time.Second

// Pushes is the on-push use case: one pipeline run, pinned to the commit, per push to the
// tracked branch of the tracked repository.
type Pushes struct {
	Commits   CommitGetter
	Pipelines ExecutionStarter
	Store     PushStore
	Log       *slog.Logger
	Clock     pipeline.Clock

	// Projects routes every repository's pushes to its project's pipeline (<P>-pipeline) and
	// branch: one function for the account's projects. Nil: the single project below
	// (PipelineName, RepositoryName, Branch), as a per-project deployment had it.
	Projects ProjectFinder

	PipelineName   string
	RepositoryName string
	Branch         string
	Lease          time.Duration // zero: DefaultPushLease

	// Home is the control plane's own account and region. A push to a repository elsewhere
	// (forwarded from another account's or region's bus) is skipped: its commit is not in
	// the home's same-named repository, and the home's pipeline is not that repository's
	// (issue 9, defect 6). The zero Home takes every push for its own.
	Home pipeline.Home
}

// target is where a push goes: the pipeline of the repository's project and its branch.
type target struct{ pipeline, repository, branch string }

// Handle decides what one CodeCommit event does, and does it at most once per push of a commit
// (a commit pushed again after pipeline.RerunAfter — a rollback — runs again):
//
//   - malformed or unsupported input: logged and dropped (outcome rejected, nil error);
//   - a repository of another account or region, another repository, a tag, another branch,
//     a deleted branch, a kind of event that moves no branch: recorded as skipped (outcome
//     skipped);
//   - a commit whose message asks to skip CI: the claim is settled SKIPPED (outcome skipped);
//   - a commit already started (by this event, or by another within RerunAfter), or being
//     started by a concurrent delivery: outcome ignored, with the execution id when known;
//   - otherwise the run starts (outcome recorded, with the execution id) and its commit is
//     recorded.
//
// A store or CodePipeline failure is returned, so that Lambda retries the event; a failed
// commit look-up only costs the record its author and message.
func (h *Pushes) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	p, err := ebevent.DecodePush(raw)
	if err != nil {
		h.Log.WarnContext(ctx, "event rejected", "error", err.Error(), "bytes", len(raw))
		return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: err.Error()}, nil
	}
	now := h.Clock.Now()
	attrs := []any{"eventId", p.ID, "repository", p.Repository, "event", p.Kind, "referenceType", p.RefType,
		"reference", p.RefName, "commitId", p.CommitID}
	to := target{pipeline: h.PipelineName, repository: h.RepositoryName, branch: h.Branch}
	unrouted := ""
	if !h.Home.Owns(p.Account, p.Region) {
		to = target{}
		unrouted = fmt.Sprintf("a push to %s in account %s, %s: not this control plane's account and region", p.Repository, p.Account, p.Region)
	} else if h.Projects != nil {
		proj, err := h.Projects.ByRepository(ctx, p.Repository)
		switch {
		case errors.Is(err, pipeline.ErrUndeclaredProject):
			unrouted = fmt.Sprintf("repository %s belongs to no declared project", p.Repository)
		case err != nil:
			err = fmt.Errorf("look up the project of %s: %w", p.Repository, err)
			h.Log.ErrorContext(ctx, "project not looked up; returning the error so that Lambda retries it", append(attrs, "error", err.Error())...)
			return lambdaio.Response{}, err
		default:
			to = target{pipeline: pipeline.PipelineOf(proj.Name), repository: proj.Name, branch: proj.Branch}
			attrs = append(attrs, "project", proj.Name)
		}
	}
	resp := lambdaio.Response{Pipeline: to.pipeline}

	reason := unrouted
	if reason == "" {
		reason = to.skipReason(p)
	}
	if reason != "" {
		if err := h.Store.RecordSkip(ctx, p, reason, now); err != nil {
			err = fmt.Errorf("record skipped push %s: %w", p.ID, err)
			h.Log.ErrorContext(ctx, "push not recorded; returning the error so that Lambda retries it", append(attrs, "error", err.Error())...)
			return resp, err
		}
		h.Log.InfoContext(ctx, "push skipped", append(attrs, "reason", reason)...)
		resp.Outcome, resp.Reason = lambdaio.OutcomeSkipped, reason
		return resp, nil
	}

	lease := h.Lease
	if lease <= 0 {
		lease = DefaultPushLease
	}
	claim, err := h.Store.ClaimPush(ctx, p, RequestToken(p.ID), now, lease)
	if err != nil {
		err = fmt.Errorf("claim push of %s: %w", p.CommitID, err)
		h.Log.ErrorContext(ctx, "push not claimed; returning the error so that Lambda retries it", append(attrs, "error", err.Error())...)
		return resp, err
	}
	if !claim.Held {
		resp.Outcome, resp.ExecutionID = lambdaio.OutcomeIgnored, claim.ExecutionID
		switch claim.State {
		case pipeline.PushStarted:
			resp.Reason = "duplicate: the commit's run was started by event " + claim.EventID
		case pipeline.PushSkipped:
			resp.Outcome, resp.Reason = lambdaio.OutcomeSkipped, claim.Reason
		default:
			// The holder's own retry takes over if it crashed (after the lease).
			resp.Reason = "in progress: another delivery is starting the commit's run"
		}
		h.Log.InfoContext(ctx, "push ignored", append(attrs, "reason", resp.Reason, "executionId", claim.ExecutionID, "claimState", claim.State)...)
		return resp, nil
	}

	execID, skip, err := h.start(ctx, p, to.pipeline, claim, now, attrs)
	if err != nil {
		h.Log.ErrorContext(ctx, "run not started; returning the error so that Lambda retries it", append(attrs, "error", err.Error())...)
		return resp, err
	}
	if skip != "" {
		h.Log.InfoContext(ctx, "push skipped", append(attrs, "reason", skip)...)
		resp.Outcome, resp.Reason = lambdaio.OutcomeSkipped, skip
		return resp, nil
	}
	h.Log.InfoContext(ctx, "run started", append(attrs, "pipeline", to.pipeline, "executionId", execID, "attempts", claim.Attempts)...)
	resp.Outcome, resp.ExecutionID, resp.Reason = lambdaio.OutcomeRecorded, execID, "run started"
	return resp, nil
}

// start runs a held claim to its end: look the commit up, skip it or start its run, record
// the push, settle the claim. It returns the execution id, or the reason the commit was
// skipped.
func (h *Pushes) start(ctx context.Context, p pipeline.Push, pipelineName string, claim pipeline.PushClaim, now time.Time, attrs []any) (execID, skipped string, err error) {
	commit := pipeline.Commit{ID: p.CommitID, PushedAt: p.Time, URL: console.CommitURL(p.Region, p.Repository, p.CommitID)}
	info, lookupErr := h.Commits.GetCommit(ctx, p.Repository, p.CommitID)
	if lookupErr != nil {
		// The run matters more than its label: start it without author and message (the
		// Source action still reports the message) rather than hold the push back.
		h.Log.WarnContext(ctx, "commit look-up failed; starting the run without author and message", append(attrs, "error", lookupErr.Error())...)
	} else {
		commit.Message, commit.Author = info.Message, pipeline.Author(info.AuthorName, info.AuthorEmail)
		commit.CommittedAt = cmp.Or(gitTime(info.CommitterDate), gitTime(info.AuthorDate))
		if marker := skipMarker(info.Message); marker != "" {
			reason := "the commit message says " + marker
			if err := h.Store.MarkPushSkipped(ctx, p, reason, now); err != nil {
				return "", "", h.release(ctx, p, fmt.Errorf("record skipped commit %s: %w", p.CommitID, err))
			}
			return "", reason, nil
		}
	}

	execID, err = h.Pipelines.Start(ctx, pipelineName, p.CommitID, claim.Token)
	if err != nil {
		// Nothing started: free the claim so that the retry takes it at once.
		return "", "", h.release(ctx, p, fmt.Errorf("start %s for commit %s: %w", pipelineName, p.CommitID, err))
	}
	// From here on the claim keeps its lease on failure: the retry, after the lease, starts
	// again with the same token, which names the same execution.
	if err := h.Store.RecordPush(ctx, pipeline.Key{Pipeline: pipelineName, ExecutionID: execID}, commit); err != nil {
		return "", "", fmt.Errorf("record push of %s for execution %s: %w", p.CommitID, execID, err)
	}
	if err := h.Store.MarkPushStarted(ctx, p, execID, now); err != nil {
		return "", "", fmt.Errorf("mark push of %s started as %s: %w", p.CommitID, execID, err)
	}
	return execID, "", nil
}

// release frees the claim after err, and returns err (with the release's failure, if any: the
// lease then runs out on its own).
func (h *Pushes) release(ctx context.Context, p pipeline.Push, err error) error {
	if rerr := h.Store.ReleasePush(ctx, p); rerr != nil {
		return errors.Join(err, fmt.Errorf("release push claim: %w", rerr))
	}
	return err
}

// skipReason says why a push runs nothing, or "" when it is a new commit on the tracked branch.
func (to target) skipReason(p pipeline.Push) string {
	switch {
	case p.Repository != to.repository:
		return fmt.Sprintf("repository %s is not the tracked repository %s", p.Repository, to.repository)
	case p.Kind != pipeline.PushReferenceCreated && p.Kind != pipeline.PushReferenceUpdated && p.Kind != pipeline.PushReferenceDeleted:
		return fmt.Sprintf("event %s moves no branch", p.Kind)
	case p.RefType != "branch":
		return fmt.Sprintf("%s %s is not a branch", p.RefType, p.RefName)
	case p.RefName != to.branch:
		return fmt.Sprintf("branch %s is not the tracked branch %s", p.RefName, to.branch)
	case p.Kind == pipeline.PushReferenceDeleted:
		return fmt.Sprintf("branch %s was deleted", p.RefName)
	}
	return ""
}

var skipMarkers = regexp.MustCompile(`(?i)\[(skip ci|ci skip)\]`)

// skipMarker returns the [skip ci] or [ci skip] marker found anywhere in message, in any case.
func skipMarker(message string) string { return skipMarkers.FindString(message) }

var tokenSafe = regexp.MustCompile(`^[a-zA-Z0-9-]{1,100}$`)

// RequestToken derives StartPipelineExecution's clientRequestToken from a push event's id, so
// that every retry of one push names the same execution request. CodePipeline accepts
// ^[a-zA-Z0-9-]+$ up to 128 characters: an EventBridge id (a UUID) is kept readable, anything
// else is hashed.
func RequestToken(eventID string) string {
	if tokenSafe.MatchString(eventID) {
		return "push-" + eventID
	}
	sum := sha256.Sum256([]byte(eventID))
	return "push-" + hex.EncodeToString(sum[:])
}
