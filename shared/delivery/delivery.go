// Package delivery is the notifier function's use case: it takes the notifications the outbox
// queued (stream records of claim items), claims each, enriches it, and delivers it to Slack
// and SNS, once per channel. It lives apart from shared/handler so that the hot-path
// functions do not link the rendering and channel code.
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
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

// Channel names, as recorded on the claim item.
const (
	ChannelSlack = "slack"
	ChannelSNS   = "sns"
)

// Sender is the notifier's pipeline.Notifier: enrich, compose, render, and deliver to each
// channel that has not delivered this notification yet. Channels are independent: one failing
// does not stop the other, and a retry does not repeat the one that succeeded.
type Sender struct {
	Enrich Enricher
	Slack  *notify.Slack // nil: Slack is off (unless SlackURL is set)
	// SlackURL, when Slack is nil, resolves the webhook URL on first use (and again after a
	// failure): a missing or unreadable secret then holds up the Slack channel only, not SNS.
	SlackURL *URLResolver
	SNS      *notify.SNS // nil: no topic
	Marks    ChannelLog
	Log      *slog.Logger
	Now      func() time.Time

	done map[string]bool // channels that delivered before this attempt
}

// URLResolver reads the Slack webhook URL once and keeps it; a failed read is tried again on
// the next notification.
type URLResolver struct {
	Resolve func(ctx context.Context) (string, error)

	mu    sync.Mutex
	slack *notify.Slack
}

// Slack returns the channel, or nil when no webhook is configured.
func (r *URLResolver) Slack(ctx context.Context) (*notify.Slack, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slack != nil {
		return r.slack, nil
	}
	url, err := r.Resolve(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the webhook URL: %w", err)
	}
	if url == "" {
		return nil, nil
	}
	r.slack = &notify.Slack{URL: url}
	return r.slack, nil
}

// With returns a copy of s that skips the channels in done.
func (s *Sender) With(done map[string]bool) *Sender {
	c := *s
	c.done = done
	return &c
}

// Notify delivers n. The error joins the channels' transient failures; a permanent Slack
// refusal of the rich message is answered with a plain-text one, so the team still hears.
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
	var slackErr, snsErr error
	var wg sync.WaitGroup
	if !s.done[ChannelSlack] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slackErr = s.deliverSlack(ctx, n, m)
		}()
	}
	if s.SNS != nil && !s.done[ChannelSNS] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.SNS.Publish(ctx, notify.RenderSNS(m)); err != nil {
				snsErr = fmt.Errorf("sns: %w", err)
				return
			}
			snsErr = s.mark(ctx, n, ChannelSNS)
		}()
	}
	wg.Wait()
	return errors.Join(slackErr, snsErr)
}

func (s *Sender) deliverSlack(ctx context.Context, n pipeline.Notification, m notify.Message) error {
	slack := s.Slack
	if slack == nil && s.SlackURL != nil {
		var err error
		if slack, err = s.SlackURL.Slack(ctx); err != nil {
			return fmt.Errorf("slack: %w", err)
		}
	}
	if slack == nil {
		return nil
	}
	if err := s.postSlack(ctx, slack, m); err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return s.mark(ctx, n, ChannelSlack)
}

func (s *Sender) postSlack(ctx context.Context, slack *notify.Slack, m notify.Message) error {
	payload, err := notify.RenderSlack(m)
	if err == nil {
		err = slack.Post(ctx, payload)
	}
	if err == nil || !notify.IsPermanent(err) {
		return err
	}
	// Slack refused the message itself (invalid_blocks, say): a retry would be refused
	// again. Say it in plain text instead, and log why.
	s.Log.ErrorContext(ctx, "slack refused the message; sending it as plain text", "error", err.Error())
	plain, merr := plainSlack(notify.Headline(m) + "\n" + m.ConsoleURL)
	if merr != nil {
		return merr
	}
	if perr := slack.Post(ctx, plain); perr != nil {
		if notify.IsPermanent(perr) {
			// Nothing this invocation or a retry can do: the webhook is gone or refuses us.
			s.Log.ErrorContext(ctx, "slack refused the plain-text message too; giving up on slack", "error", perr.Error())
			return nil
		}
		return perr
	}
	return nil
}

func (s *Sender) mark(ctx context.Context, n pipeline.Notification, channel string) error {
	if s.Marks == nil {
		return nil
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	return s.Marks.ChannelSent(ctx, n, channel, now)
}

// DefaultLease is how long a notifier invocation holds a claim: longer than the function's
// timeout (60 s in template.yaml), so that a live sender is never overtaken.
const DefaultLease = 90 * time.Second

// QueueReader reads queued notifications (runstore.Dynamo).
type QueueReader interface {
	Queued(ctx context.Context, pk string) (runstore.Queued, error)
}

// RunReader reads run records.
type RunReader interface {
	Get(ctx context.Context, k pipeline.Key) (pipeline.Run, error)
}

// Notifications handles the runs table's stream (the notifier function): each new claim item
// is a notification to send.
type Notifications struct {
	Queue  QueueReader
	Runs   RunReader
	Claims pipeline.Claims
	Sender *Sender
	Log    *slog.Logger
	Lease  time.Duration
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
	pk := stringAttr(rec.Change.Keys, "pk")
	if rec.EventName == "REMOVE" || !runstore.IsClaimKey(pk) {
		return nil
	}
	if state := stringAttr(rec.Change.NewImage, "state"); state != "" && state != "PENDING" {
		return nil
	}
	q, err := h.Queue.Queued(ctx, pk)
	if errors.Is(err, pipeline.ErrNotFound) {
		return nil // expired or deleted since
	}
	if err != nil {
		return err
	}
	if !q.Pending() {
		return nil
	}
	n := q.Notification
	run, err := h.Runs.Get(ctx, pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID})
	if errors.Is(err, pipeline.ErrNotFound) {
		run = pipeline.Run{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}
	} else if err != nil {
		return err
	}
	lease := h.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	d := &pipeline.Direct{Claims: h.Claims, Notifier: h.Sender.With(q.Channels), Lease: lease}
	sent, err := d.Dispatch(ctx, n, run)
	if err != nil {
		return err
	}
	if !sent {
		// Someone holds the claim. If it is still PENDING, that sender may have died: fail
		// the record so the stream retries it after the lease; a SENT claim is done.
		if q, err := h.Queue.Queued(ctx, pk); err == nil && q.Pending() {
			return fmt.Errorf("%s is being sent by another invocation; retrying after its lease", n.Key())
		}
	}
	h.Log.InfoContext(ctx, "notification", "notification", n.Key(), "sent", sent, "channelsBefore", q.Channels)
	return nil
}

// stringAttr reads a string attribute of a stream image, "" when absent or of another type.
func stringAttr(m map[string]events.DynamoDBAttributeValue, name string) string {
	v, ok := m[name]
	if !ok || v.DataType() != events.DataTypeString {
		return ""
	}
	return v.String()
}

// plainSlack is the smallest webhook payload: text only.
func plainSlack(text string) ([]byte, error) {
	return json.Marshal(map[string]string{"text": text})
}
