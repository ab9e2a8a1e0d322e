package runstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

func TestOutboxQueuesOnceAndTheNotifierClaimsIt(t *testing.T) {
	store := newDynamo(t)
	n := pipeline.Notification{Type: pipeline.NotifyRecovered, Pipeline: "p", ExecutionID: "e", Attempt: 2,
		At: now, BrokenSince: now.Add(-time.Hour), FirstFailedExecID: "d"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	queued := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := Outbox{Store: store}.Dispatch(context.Background(), n, pipeline.Run{})
			assert.NoError(t, err)
			if ok {
				mu.Lock()
				queued++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, queued)

	q, err := store.Queued(context.Background(), n)
	require.NoError(t, err)
	assert.True(t, q.Pending())
	assert.Equal(t, n, q.Notification)

	// The notifier's claim takes the queued item (its lease is zero)...
	attempt, err := store.Claim(context.Background(), n, now, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 1, attempt)
	require.NoError(t, store.ChannelSent(context.Background(), n, "slack", now))
	require.NoError(t, store.Sent(context.Background(), n, now))
	q, err = store.Queued(context.Background(), n)
	require.NoError(t, err)
	assert.False(t, q.Pending())
	assert.Equal(t, map[string]bool{"slack": true}, q.Channels)

	// ...and a later decision of the same notification queues nothing.
	ok, err := Outbox{Store: store}.Dispatch(context.Background(), n, pipeline.Run{})
	require.NoError(t, err)
	assert.False(t, ok)

	_, err = store.queued(context.Background(), "RUN#p#e")
	assert.ErrorIs(t, err, ErrNotNotification)
	_, err = store.Queued(context.Background(), pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "p", ExecutionID: "nope"})
	assert.ErrorIs(t, err, pipeline.ErrNotFound)
}
