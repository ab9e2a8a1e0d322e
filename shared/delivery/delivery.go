// Package delivery is the notifier function's use case: it takes the notifications the outbox
// queued (stream records of claim items) and the approval requests the deployer wrote (stream
// records of APPROVAL# items), claims each, enriches it, and delivers it to Slack and SNS, once
// per channel. It lives apart from shared/recording so that the hot-path
// functions do not link the rendering and channel code.
package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Enricher looks up what a notification says beyond the run record (shared/enrich). It never
// fails: what it cannot learn it reports in Details.Degraded.
type Enricher interface {
	Enrich(ctx context.Context, n pipeline.Notification, run pipeline.Run) pipeline.Details
}

// ChannelLog remembers which channels delivered a notification.
type ChannelLog interface {
	ChannelSent(ctx context.Context, n pipeline.Notification, channel string, now time.Time) error
}

// Sender is the notifier's pipeline.Notifier: enrich, compose, and deliver to each channel
// that has not delivered this notification yet. Channels are independent: one failing does
// not stop the other, and a retry does not repeat the one that succeeded.
type Sender struct {
	Enrich   Enricher // nil: the message says what the run record says
	Channels []notify.Channel
	Marks    ChannelLog // nil: nothing remembers per-channel delivery (replay)
	Log      *slog.Logger
	Clock    pipeline.Clock

	done map[string]bool // channels that delivered before this attempt
}

// With returns a copy of s that skips the channels in done.
func (s *Sender) With(done map[string]bool) *Sender {
	c := *s
	c.done = done
	return &c
}

// Notify delivers n. The error joins the channels' failures, each naming its channel.
func (s *Sender) Notify(ctx context.Context, n pipeline.Notification, run pipeline.Run) error {
	var d pipeline.Details
	if s.Enrich != nil {
		d = s.Enrich.Enrich(ctx, n, run)
	}
	m := notify.Compose(n, run, d)
	if len(d.Degraded) > 0 {
		s.Log.WarnContext(ctx, "notification with missing details", "notification", n.Key(), "degraded", d.Degraded)
	}
	// The channels run side by side, so that a Slack that hangs until its retries are spent
	// cannot use up the time SNS needs.
	errs := make([]error, len(s.Channels))
	delivered := make([]bool, len(s.Channels))
	markErrs := make([]error, len(s.Channels))
	var wg sync.WaitGroup
	for i, ch := range s.Channels {
		if s.done[ch.Name()] {
			continue
		}
		wg.Go(func() {
			if err := ch.Send(ctx, m); err != nil {
				errs[i] = fmt.Errorf("%s: %w", ch.Name(), err)
				return
			}
			delivered[i] = true
			markErrs[i] = s.mark(ctx, n, ch.Name())
		})
	}
	wg.Wait()
	var names []string
	for i, ch := range s.Channels {
		if delivered[i] {
			names = append(names, ch.Name())
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The delivered channels travel with the error, so that the claim remembers them
		// even when their own marks failed: a retry must not post them again.
		return &pipeline.DeliveryError{Delivered: names, Err: err}
	}
	if err := errors.Join(markErrs...); err != nil {
		s.Log.WarnContext(ctx, "delivered, but a channel mark was not written; the claim is marked sent instead", "notification", n.Key(), "error", err.Error())
		return &pipeline.DeliveryError{Delivered: names, Err: errors.Join(pipeline.ErrUnmarked, err)}
	}
	return nil
}

func (s *Sender) mark(ctx context.Context, n pipeline.Notification, channel string) error {
	if s.Marks == nil {
		return nil
	}
	return s.Marks.ChannelSent(ctx, n, channel, s.Clock.Now())
}

// LogGivenUp is the message of the one log line a given-up notification writes; the template's
// NotificationsGivenUpFilter counts it.
const LogGivenUp = "notification given up"

// DefaultLease is how long a notifier invocation holds a claim: longer than the function's
// timeout (60 s in template.yaml), so that a live sender is never overtaken.
const DefaultLease = 90 * time.Second

// Queue reads the notifications that on-pipeline-event queued (runstore.Dynamo).
type Queue interface {
	// FromStream returns the notification a stream record of the queue announces: a queued
	// claim, or an approval request the deployer wrote (pipeline.NotifyApproval, claimed for
	// the first time by Dispatch). ok is false for a record that announces none (another item,
	// a removal, a claim already sent, an approval's decision); the error wraps
	// pipeline.ErrNotFound when the claim is gone (expired), pipeline.ErrMalformed when the
	// record cannot be read.
	FromStream(ctx context.Context, rec events.DynamoDBEventRecord) (q pipeline.Queued, ok bool, err error)
	// Queued reads a notification's claim again.
	Queued(ctx context.Context, n pipeline.Notification) (pipeline.Queued, error)
}

// ApprovalReader reads an approval request as it stands (runstore.Dynamo.Approval).
type ApprovalReader interface {
	Approval(ctx context.Context, k pipeline.ApprovalKey) (pipeline.Approval, error)
}

// Notifications handles the runs table's stream (the notifier function): each new claim item,
// and each new approval request, is a notification to send.
type Notifications struct {
	Queue  Queue
	Runs   pipeline.RunStore
	Claims pipeline.Claims
	// Approvals, when set, is read before each attempt at an approval request: one that a
	// person decided, or whose deadline passed, is not asked again (a retry can come hours
	// after the first channel delivered).
	Approvals ApprovalReader
	Sender    *Sender
	Log       *slog.Logger
	Clock     pipeline.Clock
	Lease     time.Duration // zero: DefaultLease
}

// Handle sends the notifications the batch queued. A record whose sending failed is reported
// as a batch item failure (ReportBatchItemFailures), so Lambda retries from it and, once the
// retries are spent, hands it to the on-failure destination; the others are not repeated.
func (h *Notifications) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var resp events.DynamoDBEventResponse
	for _, rec := range ev.Records {
		if err := h.handleRecord(ctx, rec); err != nil {
			h.Log.ErrorContext(ctx, "notification not sent; Lambda will retry it", "eventId", rec.EventID, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
			// Stream order: the records after a failure are retried with it.
			break
		}
	}
	return resp, nil
}

func (h *Notifications) handleRecord(ctx context.Context, rec events.DynamoDBEventRecord) error {
	q, ok, err := h.Queue.FromStream(ctx, rec)
	if errors.Is(err, pipeline.ErrNotFound) {
		return nil // expired or deleted since
	}
	if errors.Is(err, pipeline.ErrMalformed) {
		// Reading it again gives the same: retrying would only hold up the shard.
		h.Log.ErrorContext(ctx, "stream record unreadable; dropped", "eventId", rec.EventID, "error", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	if !ok || !q.Pending() {
		return nil
	}
	if q.Notification.Type == pipeline.NotifyDigest {
		return nil // a weekly digest's claim: shared/digest sends it, within the invocation that claimed it
	}
	n := q.Notification
	if n.Type == pipeline.NotifyApproval && h.Approvals != nil {
		if done, err := h.approvalSettled(ctx, n); err != nil || done {
			return err
		}
	}
	run, err := pipeline.LoadRun(ctx, h.Runs, pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID})
	if errors.Is(err, pipeline.ErrNotFound) {
		run = pipeline.Run{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}
	} else if err != nil {
		return err
	}
	d := &pipeline.Direct{Claims: h.Claims, Notifier: h.Sender.With(q.Channels), Clock: h.Clock, Lease: cmp.Or(h.Lease, DefaultLease)}
	sent, err := d.Dispatch(ctx, n, run)
	switch {
	case errors.Is(err, pipeline.ErrGaveUp):
		// Visible for good: the claim is FAILED (`lp notifications`), and this log line is
		// what the template's alarm counts.
		h.Log.ErrorContext(ctx, LogGivenUp, "notification", n.Key(), "error", err.Error())
		return nil
	case errors.Is(err, pipeline.ErrAttemptFailed):
		// The attempt is over and recorded: the claim waits for its backoff, then the
		// reconciler hands it back. Failing the record would only hold up the shard.
		h.Log.WarnContext(ctx, "notification attempt failed; it is retried after its backoff", "notification", n.Key(), "error", err.Error())
		return nil
	case err != nil:
		return err
	}
	if !sent {
		// Someone else holds the claim, or it is waiting for its backoff: either way the
		// holder, or the reconciler once the lease is over, finishes it. Failing the record
		// would hold up the shard for as long as the lease (issue 9, defect 12).
		h.Log.InfoContext(ctx, "notification held by another attempt", "notification", n.Key())
		return nil
	}
	h.Log.InfoContext(ctx, "notification", "notification", n.Key(), "sent", sent, "channelsBefore", q.Channels)
	return nil
}

// approvalSettled reports whether the approval request n asks about no longer waits (decided,
// or past its deadline), and then settles its claim, if it has one, without sending: the
// people were told or decided without the message, and a late "waits for your approval"
// would only mislead.
func (h *Notifications) approvalSettled(ctx context.Context, n pipeline.Notification) (bool, error) {
	a, err := h.Approvals.Approval(ctx, pipeline.ApprovalKey{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID, Stack: n.Stack, Deploy: n.Deploy})
	if errors.Is(err, pipeline.ErrApprovalNotFound) {
		return false, nil // expired from the table: the claim and its retries decide
	}
	if err != nil {
		return false, fmt.Errorf("read approval request of %s: %w", n.Key(), err)
	}
	now := h.Clock.Now()
	st := a.State(now)
	if st == pipeline.ApprovalPending {
		return false, nil
	}
	if _, err := h.Queue.Queued(ctx, n); err == nil {
		if err := h.Claims.Sent(ctx, n, now); err != nil {
			return false, fmt.Errorf("settle the claim of %s: %w", n.Key(), err)
		}
	} else if !errors.Is(err, pipeline.ErrNotFound) {
		return false, fmt.Errorf("read the claim of %s: %w", n.Key(), err)
	}
	h.Log.InfoContext(ctx, "approval request no longer waits; not sent", "notification", n.Key(), "approval", string(st))
	return true, nil
}
