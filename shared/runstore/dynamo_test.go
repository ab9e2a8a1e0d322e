package runstore

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// now is the wall clock: List hides items whose TTL has passed, as DynamoDB may still return them.
var now = time.Now().UTC().Truncate(time.Second)

// scenario reads one of the shared scenarios as decoded events.
func scenario(t testing.TB, name string) []pipeline.Event {
	t.Helper()
	f, err := os.Open("../../cmd/lp/testdata/scenarios/shared/" + name + ".ndjson")
	require.NoError(t, err)
	defer f.Close()
	var out []pipeline.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		ev, err := ebevent.DecodePipelineEvent(sc.Bytes())
		require.NoError(t, err)
		out = append(out, ev)
	}
	require.NoError(t, sc.Err())
	return out
}

func memoryRuns(t testing.TB, events []pipeline.Event) map[pipeline.Key]pipeline.Run {
	mem := NewMemory()
	for _, ev := range events {
		_, err := mem.Append(context.Background(), ev)
		require.NoError(t, err)
	}
	out := map[pipeline.Key]pipeline.Run{}
	for _, r := range mem.Runs() {
		out[r.Key()] = r
	}
	return out
}

func TestDynamoRecordMatchesTheFold(t *testing.T) {
	for _, name := range []string{"success", "deploy-fails", "stopped-by-hand", "red-then-green-duplicated"} {
		t.Run(name, func(t *testing.T) {
			events := scenario(t, name)
			store := newDynamo(t)
			for _, ev := range events {
				_, err := store.Append(context.Background(), ev)
				require.NoError(t, err)
			}
			for k, want := range memoryRuns(t, events) {
				got, err := pipeline.LoadRun(context.Background(), store, k)
				require.NoError(t, err)
				assert.Equal(t, want, got)
			}
		})
	}
}

// TestDynamoConcurrentDeliveryConverges delivers every event of a scenario from 8 goroutines
// at once, each event several times, and expects the record sequential delivery gives.
func TestDynamoConcurrentDeliveryConverges(t *testing.T) {
	events := scenario(t, "red-then-green")
	want := memoryRuns(t, events)
	store := newDynamo(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(events))
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range events {
				// Each goroutine walks the events in its own rotation.
				ev := events[(i+w*3)%len(events)]
				if _, err := store.Append(context.Background(), ev); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for k, w := range want {
		got, err := pipeline.LoadRun(context.Background(), store, k)
		require.NoError(t, err)
		assert.Equal(t, w, got)
	}
}

// TestDynamoWriteUnitsPerRun: every stored item stays under 1 KB, so a run costs one write
// unit per event (DynamoDB bills a write by the size of the whole item written).
func TestDynamoWriteUnitsPerRun(t *testing.T) {
	for _, name := range []string{"success", "deploy-fails", "red-then-green"} {
		store := newDynamo(t)
		for _, ev := range scenario(t, name) {
			_, err := store.Append(context.Background(), ev)
			require.NoError(t, err)
			items, err := store.runItems(context.Background(), pipeline.Key{Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID})
			require.NoError(t, err)
			for _, it := range items {
				require.Less(t, itemSize(it), 1024, "%s: item %s", name, str(it, attrSK))
			}
		}
	}
}

// itemSize approximates DynamoDB's item size: names and values (numbers by digits).
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value)
	case *types.AttributeValueMemberN:
		return (len(x.Value)+1)/2 + 1
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range x.Value {
			n += len(k) + valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += valueSize(e) + 1
		}
		return n
	}
	return 1
}

func TestDynamoStaleEventChangesNothing(t *testing.T) {
	events := scenario(t, "deploy-fails")
	store := newDynamo(t)
	for _, ev := range events {
		_, err := store.Append(context.Background(), ev)
		require.NoError(t, err)
	}
	late := events[len(events)-2] // the failed stage
	require.Equal(t, pipeline.LevelStage, late.Level)
	late.State, late.ID = pipeline.StateStopping, "late-stopping"
	_, err := store.Append(context.Background(), late)
	require.NoError(t, err)
	run, err := pipeline.LoadRun(context.Background(), store, pipeline.Key{Pipeline: late.Pipeline, ExecutionID: late.ExecutionID})
	require.NoError(t, err)
	assert.Equal(t, pipeline.StatusFailed, run.Stages[late.Stage].Status)
	// Delivered again, it is a duplicate.
	dup, err := store.Append(context.Background(), late)
	require.NoError(t, err)
	assert.True(t, dup)
}

func TestDynamoListNewestFirstAndFind(t *testing.T) {
	store := newDynamo(t)
	for _, name := range []string{"red-then-green", "deploy-fails"} {
		for _, ev := range scenario(t, name) {
			_, err := store.Append(context.Background(), ev)
			require.NoError(t, err)
		}
	}
	runs, err := store.List(context.Background(), "search", 10)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Equal(t, "0e000000-0000-4000-8000-00000000000b", runs[0].ExecutionID, "newest first")
	assert.Equal(t, "7c7c7c", runs[1].Commit.ID)

	// A pending notification claim shares the index; it is not a run.
	_, err = Outbox{Store: store}.Dispatch(context.Background(), pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "search", ExecutionID: "0e000000-0000-4000-8000-00000000000a"}, pipeline.Run{})
	require.NoError(t, err)
	all, err := store.List(context.Background(), "", 3)
	require.NoError(t, err)
	assert.Len(t, all, 3)
	for _, r := range all {
		assert.NotEmpty(t, r.Stages, "a run, not a claim")
	}

	one, err := store.FindExecution(context.Background(), "0d000000-0000-4000-8000-000000000002")
	require.NoError(t, err)
	assert.Equal(t, "payments", one.Pipeline)
	assert.Equal(t, "CreateUpdateLambda", one.Failure().Stage)

	_, err = store.FindExecution(context.Background(), "nope")
	assert.ErrorIs(t, err, pipeline.ErrNotFound)
	_, err = store.Load(context.Background(), pipeline.Key{Pipeline: "search", ExecutionID: "nope"})
	assert.ErrorIs(t, err, pipeline.ErrNotFound)
}

func TestDynamoPushRecordJoinsTheRun(t *testing.T) {
	store := newDynamo(t)
	events := scenario(t, "success")
	k := pipeline.Key{Pipeline: events[0].Pipeline, ExecutionID: events[0].ExecutionID}
	pushed := time.Date(2026, 3, 2, 8, 59, 58, 0, time.UTC)
	require.NoError(t, store.RecordPush(context.Background(), k, pipeline.Commit{ID: "5a5a5a", Message: "Add the thing\n\nBody", Author: "Ana <ana@example.com>", PushedAt: pushed}))
	for _, ev := range events {
		_, err := store.Append(context.Background(), ev)
		require.NoError(t, err)
	}
	run, err := pipeline.LoadRun(context.Background(), store, k)
	require.NoError(t, err)
	assert.Equal(t, "Ana <ana@example.com>", run.Commit.Author)
	assert.Equal(t, "Add the thing\n\nBody", run.Commit.Message)
	assert.Equal(t, pushed, run.Commit.PushedAt)
}

func TestDynamoItemsCarryTTL(t *testing.T) {
	store := newDynamo(t).WithRetention(24 * time.Hour)
	ev := scenario(t, "success")[0]
	_, err := store.Append(context.Background(), ev)
	require.NoError(t, err)
	items, err := store.runItems(context.Background(), pipeline.Key{Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID})
	require.NoError(t, err)
	require.Len(t, items, 1)
	assert.Equal(t, now.Add(24*time.Hour).Unix(), mustInt(t, items[0]["expiresAt"]))
}

func TestDynamoClaimsOnceUnderConcurrency(t *testing.T) {
	store := newDynamo(t)
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "p", ExecutionID: "e"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			attempt, err := store.Claim(context.Background(), n, now, time.Minute)
			assert.NoError(t, err)
			if attempt > 0 {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, won)

	// A lease that ran out (the sender crashed) lets the retry take it.
	attempt, err := store.Claim(context.Background(), n, now.Add(2*time.Minute), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 2, attempt)
	// A released claim is free once its backoff is over; a sent one never again.
	require.NoError(t, store.Release(context.Background(), n, pipeline.Retry{RetryAt: now.Add(3 * time.Minute)}))
	attempt, err = store.Claim(context.Background(), n, now.Add(2*time.Minute), time.Minute)
	require.NoError(t, err)
	assert.Zero(t, attempt, "backing off")
	attempt, err = store.Claim(context.Background(), n, now.Add(4*time.Minute), time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 3, attempt)
	require.NoError(t, store.Sent(context.Background(), n, now))
	attempt, err = store.Claim(context.Background(), n, now.Add(time.Hour), time.Minute)
	require.NoError(t, err)
	assert.Zero(t, attempt)
}

// TestClaimGivenUpIsTerminalAndListed: a notification whose attempts are spent is FAILED for
// good (issue 9, defect 2): no claim takes it again, Requeue never hands it back, and it is
// listed among the given-up ones. Before, Release set the lease to 0 whatever the attempts.
func TestClaimGivenUpIsTerminalAndListed(t *testing.T) {
	for name, s := range map[string]interface {
		pipeline.Claims
		pipeline.Dispatcher
		Requeue(context.Context, time.Time, time.Time) (int, error)
		GaveUp(context.Context) ([]pipeline.Queued, error)
	}{"memory": memoryOutbox{NewMemory()}, "dynamo": dynamoOutbox{newDynamo(t)}} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "p", ExecutionID: "e"}
			_, err := s.Dispatch(ctx, n, pipeline.Run{})
			require.NoError(t, err)
			at := now
			for i := 1; i <= pipeline.MaxNotifyAttempts; i++ {
				attempt, err := s.Claim(ctx, n, at, time.Minute)
				require.NoError(t, err)
				require.Equal(t, i, attempt)
				require.NoError(t, s.Release(ctx, n, pipeline.Retry{RetryAt: at.Add(pipeline.NotifyBackoff(i)),
					GiveUp: i == pipeline.MaxNotifyAttempts, Delivered: []string{"sns"}, Reason: "slack: HTTP 500"}))
				at = at.Add(2 * time.Hour)
			}
			attempt, err := s.Claim(ctx, n, at.Add(24*time.Hour), time.Minute)
			require.NoError(t, err)
			assert.Zero(t, attempt)
			requeued, err := s.Requeue(ctx, at.Add(24*time.Hour), at.Add(24*time.Hour))
			require.NoError(t, err)
			assert.Zero(t, requeued)
			failed, err := s.GaveUp(ctx)
			require.NoError(t, err)
			require.Len(t, failed, 1)
			assert.Equal(t, pipeline.ClaimFailed, failed[0].State)
			assert.Equal(t, n.Key(), failed[0].Notification.Key())
			assert.True(t, failed[0].Channels["sns"], "the channel that delivered is remembered")
		})
	}
}

type memoryOutbox struct{ *Memory }

func (m memoryOutbox) Dispatch(ctx context.Context, n pipeline.Notification, r pipeline.Run) (bool, error) {
	return MemoryOutbox{Store: m.Memory}.Dispatch(ctx, n, r)
}

type dynamoOutbox struct{ *Dynamo }

func (d dynamoOutbox) Dispatch(ctx context.Context, n pipeline.Notification, r pipeline.Run) (bool, error) {
	return Outbox{Store: d.Dynamo}.Dispatch(ctx, n, r)
}

func TestDynamoOutcomesAround(t *testing.T) {
	store := newDynamo(t)
	at := func(m int) time.Time { return now.Add(time.Duration(m) * time.Minute) }
	add := func(exec string, s pipeline.Status, m int) []pipeline.Outcome {
		h, err := store.AddOutcome(context.Background(), pipeline.Outcome{Pipeline: "p", ExecutionID: exec, Attempt: 1, Status: s, At: at(m)}, now)
		require.NoError(t, err)
		return h
	}
	add("a", pipeline.StatusSucceeded, 0)
	add("b", pipeline.StatusFailed, 10)
	add("c", pipeline.StatusFailed, 20)
	h := add("d", pipeline.StatusSucceeded, 30)
	got := pipeline.Decide(h, h[0], false)
	require.Len(t, got, 1)
	assert.Equal(t, pipeline.NotifyRecovered, got[0].Type)
	assert.Equal(t, at(10), got[0].BrokenSince)
	// A failure that arrives late, before a known success: the success is its recovery.
	add("e", pipeline.StatusFailed, 35)
	h = add("z", pipeline.StatusFailed, 33)
	assert.Len(t, h, 3, "z, back to the success d, and the next one, e")
}

func mustInt(t testing.TB, v types.AttributeValue) int64 {
	t.Helper()
	n, ok := v.(*types.AttributeValueMemberN)
	require.True(t, ok, "want a number, got %T", v)
	out, err := strconv.ParseInt(n.Value, 10, 64)
	require.NoError(t, err)
	return out
}
