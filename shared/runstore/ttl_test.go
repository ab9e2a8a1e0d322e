package runstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/testing/harness"
)

// ttlStore is a store whose TTL runs when the test says: Memory's model, or dynalite swept as
// DynamoDB's TTL would sweep it.
type ttlStore struct {
	storeUnderTest
	expire func(now time.Time) int
}

func ttlStores(t *testing.T, clock pipeline.Clock, retention time.Duration) map[string]ttlStore {
	mem := NewMemory().WithClock(clock).WithRetention(retention)
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, TableInput(dynalitetest.UniqueTableName(t)))
	dyn := NewDynamo(db, table, clock).WithRetention(retention)
	return map[string]ttlStore{
		"memory": {mem, mem.ExpireTTL},
		"dynamo": {dyn, func(now time.Time) int { return dynalitetest.ExpireTTL(t, db, table, attrExpires, now) }},
	}
}

// shifted returns events moved by d.
func shifted(events []pipeline.Event, d time.Duration) []pipeline.Event {
	out := make([]pipeline.Event, 0, len(events))
	for _, ev := range events {
		ev.Time = ev.Time.Add(d)
		if !ev.StartTime.IsZero() {
			ev.StartTime = ev.StartTime.Add(d)
		}
		out = append(out, ev)
	}
	return out
}

// A pipeline that fails, then stays idle longer than the retention, still says "recovered"
// when it next succeeds (issue 9, defect 12): TTL removes the failed run, its claims and its
// events, but not the pipeline's decisive outcomes, which the decision reads.
func TestContractRecoveryAfterAnIdlePastTheRetention(t *testing.T) {
	const retention = 30 * 24 * time.Hour
	var failed, green []pipeline.Event
	for _, ev := range scenario(t, "red-then-green") {
		if ev.ExecutionID == "0e000000-0000-4000-8000-00000000000a" {
			failed = append(failed, ev)
		} else {
			green = append(green, ev)
		}
	}
	require.NotEmpty(t, failed)
	require.NotEmpty(t, green)
	failedAt := failed[len(failed)-1].Time
	idle := retention + 7*24*time.Hour
	green = shifted(green, idle)

	clock := harness.NewClock(failedAt.Add(time.Minute))
	for name, s := range ttlStores(t, clock, retention) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clock.Set(failedAt.Add(time.Minute))
			n := &notes{}
			r := pipeline.NewRecorder(s, s, &pipeline.Direct{Claims: s, Notifier: n, Clock: clock}, clock)
			for _, ev := range failed {
				_, err := r.Handle(ctx, ev)
				require.NoError(t, err)
			}
			require.Equal(t, []string{"failed#search#0e000000-0000-4000-8000-00000000000a"}, keys(n.sent))

			// Idle past the retention: TTL removes what expired.
			clock.Set(failedAt.Add(idle - time.Hour))
			assert.Positive(t, s.expire(clock.Now()), "nothing expired: the test proves nothing")
			_, err := s.Load(ctx, failed[0].Key())
			assert.True(t, errors.Is(err, pipeline.ErrNotFound), "the failed run outlived the retention: %v", err)

			for _, ev := range green {
				clock.Set(ev.Time.Add(2 * time.Second))
				_, err := r.Handle(ctx, ev)
				require.NoError(t, err)
			}
			require.Len(t, n.sent, 2, "notifications: %v", keys(n.sent))
			rec := n.sent[1]
			assert.Equal(t, pipeline.NotifyRecovered, rec.Type)
			assert.Equal(t, green[0].ExecutionID, rec.ExecutionID)
			assert.True(t, rec.BrokenSince.Equal(failedAt), "broken since %v, want %v", rec.BrokenSince, failedAt)
			assert.Equal(t, "0e000000-0000-4000-8000-00000000000a", rec.FirstFailedExecID)
		})
	}
}
