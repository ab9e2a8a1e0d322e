package runstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// MemoryOutbox is Outbox over Memory: it queues a decided notification as a PENDING claim and
// appends the stream record that Dynamo's table stream would deliver to the notifier
// (Memory.TakeStream). With it, Memory runs the deployed flow — on-pipeline-event queues, the
// notifier sends — in one process (the simulation, tests).
type MemoryOutbox struct{ Store *Memory }

var _ pipeline.Dispatcher = MemoryOutbox{}

// Dispatch queues n. It returns false when n was queued (or claimed, or sent) before.
func (o MemoryOutbox) Dispatch(_ context.Context, n pipeline.Notification, _ pipeline.Run) (bool, error) {
	m := o.Store
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.claims[n.Key()]; ok {
		return false, nil
	}
	m.claims[n.Key()] = claim{queued: true, queuedAt: m.now(), channels: map[string]bool{}, expires: m.expiry(m.now())}
	m.notes[n.Key()] = n
	m.emit("INSERT", n.Key())
	return true, nil
}

// WithClock sets the clock that stamps queue times (the zero time without one).
func (m *Memory) WithClock(c pipeline.Clock) *Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clock = c
	return m
}

func (m *Memory) now() time.Time {
	if m.clock == nil {
		return time.Time{}
	}
	return m.clock.Now()
}

// emit appends the stream record of a claim change that the notifier's filter passes
// (template.yaml, NotifierStream: an INSERT of a claim, or a MODIFY leaving it PENDING with
// lease 0). m.mu is held.
func (m *Memory) emit(name, key string) {
	m.seq++
	m.stream = append(m.stream, events.DynamoDBEventRecord{
		EventID: strconv.Itoa(m.seq), EventName: name,
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: strconv.Itoa(m.seq),
			Keys:           map[string]events.DynamoDBAttributeValue{attrPK: events.NewStringAttribute("NOTIFY#" + key)},
			NewImage: map[string]events.DynamoDBAttributeValue{
				"state": events.NewStringAttribute(pipeline.ClaimPending), "leaseUntil": events.NewNumberAttribute("0"),
			},
		},
	})
}

// TakeStream returns the stream records written since the last call, oldest first.
func (m *Memory) TakeStream() []events.DynamoDBEventRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.stream
	m.stream = nil
	return out
}

// FromStream returns the notification a stream record announces, as Dynamo.FromStream does.
func (m *Memory) FromStream(ctx context.Context, rec events.DynamoDBEventRecord) (pipeline.Queued, bool, error) {
	pk := streamString(rec.Change.Keys, attrPK)
	if isApprovalKey(pk) {
		n, ok, err := approvalFromStream(rec)
		if !ok || err != nil {
			return pipeline.Queued{}, false, err
		}
		q, err := m.queued(n.Key())
		return approvalQueued(n, q, err)
	}
	if rec.EventName == "REMOVE" || !isClaimKey(pk) {
		return pipeline.Queued{}, false, nil
	}
	if state := streamString(rec.Change.NewImage, "state"); state != "" && state != pipeline.ClaimPending {
		return pipeline.Queued{}, false, nil
	}
	q, err := m.queued(pk[len("NOTIFY#"):])
	return q, err == nil, err
}

// Queued reads a notification's claim.
func (m *Memory) Queued(_ context.Context, n pipeline.Notification) (pipeline.Queued, error) {
	return m.queued(n.Key())
}

func (m *Memory) queued(key string) (pipeline.Queued, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.claims[key]
	n, known := m.notes[key]
	if !ok || !known {
		return pipeline.Queued{}, fmt.Errorf("claim %s: %w", key, pipeline.ErrNotFound)
	}
	q := pipeline.Queued{Notification: n, State: pipeline.ClaimPending, Channels: map[string]bool{}}
	switch {
	case c.sent:
		q.State = pipeline.ClaimSent
	case c.failed:
		q.State = pipeline.ClaimFailed
	}
	for ch := range c.channels {
		q.Channels[ch] = true
	}
	return q, nil
}

// ChannelSent records that one channel delivered n.
func (m *Memory) ChannelSent(_ context.Context, n pipeline.Notification, channel string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.claims[n.Key()]
	if c.channels == nil {
		c.channels = map[string]bool{}
	}
	c.channels[channel] = true
	m.claims[n.Key()] = c
	return nil
}

// Requeue hands back PENDING queued claims queued before cutoff whose lease ran out, as
// Dynamo.Requeue does.
func (m *Memory) Requeue(_ context.Context, cutoff, now time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.claims))
	for k := range m.claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n := 0
	for _, k := range keys {
		c := m.claims[k]
		if !c.queued || c.sent || c.failed || !c.queuedAt.Before(cutoff) || !c.leaseUntil.Before(now) {
			continue
		}
		c.leaseUntil = time.Time{}
		m.claims[k] = c
		m.emit("MODIFY", k)
		n++
	}
	return n, nil
}

// Pending returns the queued notifications neither sent nor given up, by key.
func (m *Memory) Pending() []pipeline.Notification { return m.inState(false) }

func (m *Memory) inState(failed bool) []pipeline.Notification {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pipeline.Notification
	for k, c := range m.claims {
		if c.queued && !c.sent && c.failed == failed {
			out = append(out, m.notes[k])
		}
	}
	slices.SortFunc(out, func(a, b pipeline.Notification) int { return cmpString(a.Key(), b.Key()) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GaveUp returns the notifications whose attempts were spent (pipeline.ClaimFailed), by key.
func (m *Memory) GaveUp(ctx context.Context) ([]pipeline.Queued, error) {
	var out []pipeline.Queued
	for _, n := range m.inState(true) {
		q, err := m.Queued(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}
