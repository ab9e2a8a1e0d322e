package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func TestMain(m *testing.M) { os.Exit(dynalitetest.Main(m)) }

const testTopic = "arn:aws:sns:eu-west-1:123456789012:my-lambda-notifications"

// stubEnricher stands in for shared/enrich: the end-to-end path is under test here.
type stubEnricher struct{ calls int }

func (s *stubEnricher) Enrich(context.Context, pipeline.Notification, pipeline.Run) pipeline.Details {
	s.calls++
	return pipeline.Details{Region: "eu-central-1", Build: &pipeline.BuildDetails{ID: "app-build:1", Status: "FAILED", FailedPhase: "BUILD",
		LogTail: []string{"--- FAIL: TestUpload (0.01s)", "FAIL"}}}
}

type notifierRig struct {
	store    *runstore.Dynamo
	db       *dynamodb.Client
	table    string
	events   *recording.PipelineEvents
	notifier *Notifications
	slack    *notifytest.SlackReceiver
	sns      *notifytest.SNSFake
}

func newNotifierRig(t *testing.T) *notifierRig {
	slack := notifytest.NewSlack(t)
	snsFake := notifytest.NewSNS(t, testTopic)
	rig := newRig(t, &Sender{
		Enrich: &stubEnricher{},
		Channels: []notify.Channel{
			&notify.SlackChannel{Poster: notify.Slack{URL: slack.URL(), Client: slack.Client(), MaxAttempts: 2, Sleep: func(context.Context, time.Duration) error { return nil }}, Log: discard},
			&notify.SNS{API: snsFake.Client(), TopicARN: testTopic},
		},
	})
	rig.slack, rig.sns = slack, snsFake
	return rig
}

// newRig wires on-pipeline-event's handler (with the outbox) and the notifier's handler to one
// table in dynalite.
func newRig(tb testing.TB, sender *Sender) *notifierRig {
	db := dynalitetest.Start(tb).Client(tb)
	clock := pipeline.SystemClock{}
	table := dynalitetest.CreateTable(tb, db, runstore.TableInput(dynalitetest.UniqueTableName(tb)))
	store := runstore.NewDynamo(db, table, clock)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	sender.Marks, sender.Log, sender.Clock = store, log, clock
	return &notifierRig{
		store:    store,
		db:       db,
		table:    table,
		events:   &recording.PipelineEvents{Recorder: store.Recorder(), Log: log},
		notifier: &Notifications{Queue: store, Runs: store, Claims: store, Approvals: store, Sender: sender, Log: log, Clock: clock},
	}
}

func readScenario(tb testing.TB, name string) string {
	tb.Helper()
	data, err := os.ReadFile("../../cmd/lp/testdata/scenarios/shared/" + name + ".ndjson")
	require.NoError(tb, err)
	return string(data)
}

func scenarioLines(t *testing.T, name string) []string {
	return strings.Split(strings.TrimSpace(readScenario(t, name)), "\n")
}

// streamInsert is the stream record DynamoDB emits when the outbox queues n.
func streamInsert(n pipeline.Notification, seq string) events.DynamoDBEvent {
	return events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{
		EventID: "ev-" + seq, EventName: "INSERT",
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: seq,
			Keys: map[string]events.DynamoDBAttributeValue{
				"pk": events.NewStringAttribute("NOTIFY#" + n.Key()), "sk": events.NewStringAttribute("NOTIFY"),
			},
			NewImage: map[string]events.DynamoDBAttributeValue{"state": events.NewStringAttribute("PENDING")},
		},
	}}}
}

// TestFailedEventDeliveredConcurrentlyNotifiesOnce: 8 concurrent deliveries of the same FAILED
// event queue one notification; the stream delivering its record three times at once sends
// one Slack post and one SNS publish.
func TestFailedEventDeliveredConcurrentlyNotifiesOnce(t *testing.T) {
	rig := newNotifierRig(t)
	lines := scenarioLines(t, "deploy-fails")
	ctx := context.Background()
	for _, l := range lines[:len(lines)-1] {
		_, err := rig.events.Handle(ctx, []byte(l))
		require.NoError(t, err)
	}
	failed := lines[len(lines)-1]
	var wg sync.WaitGroup
	var mu sync.Mutex
	var queued []string
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := rig.events.Handle(ctx, []byte(failed))
			assert.NoError(t, err)
			mu.Lock()
			queued = append(queued, resp.Notifications...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "payments", ExecutionID: "0d000000-0000-4000-8000-000000000002"}
	assert.Equal(t, []string{n.Key()}, queued, "queued once")

	retries := 0
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := rig.notifier.Handle(ctx, streamInsert(n, "100"))
			assert.NoError(t, err)
			// A delivery that finds the claim held while it is still PENDING asks the
			// stream to retry (its holder might have died).
			mu.Lock()
			retries += len(resp.BatchItemFailures)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for ; retries > 0; retries-- {
		resp, err := rig.notifier.Handle(ctx, streamInsert(n, "100"))
		require.NoError(t, err)
		assert.Empty(t, resp.BatchItemFailures, "the claim is SENT now")
	}
	require.Len(t, rig.slack.Delivered(), 1, "one Slack post")
	require.Len(t, rig.sns.Published(), 1, "one SNS publish")
	assert.Contains(t, string(rig.slack.Delivered()[0]), "CreateUpdateLambda")
	pub := rig.sns.Published()[0]
	assert.Contains(t, pub.Subject, "payments")
	q, err := rig.store.Queued(ctx, n)
	require.NoError(t, err)
	assert.False(t, q.Pending())
	assert.Equal(t, map[string]bool{notify.ChannelSlack: true, notify.ChannelSNS: true}, q.Channels)
}

// TestSlackOutageDeliveredOnceAfterwards: Slack is down for the first invocation; SNS goes out
// at once; the attempt ends with a backoff (the shard is not held up: no batch item failure),
// and the next attempt, once the backoff is over, delivers to Slack and does not publish to SNS
// again.
func TestSlackOutageDeliveredOnceAfterwards(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	for _, l := range scenarioLines(t, "deploy-fails") {
		_, err := rig.events.Handle(ctx, []byte(l))
		require.NoError(t, err)
	}
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "payments", ExecutionID: "0d000000-0000-4000-8000-000000000002"}
	rig.slack.FailNext(notifytest.Unavailable, notifytest.RollupError)

	resp, err := rig.notifier.Handle(ctx, streamInsert(n, "200"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures, "a failed attempt does not hold up the shard")
	assert.Empty(t, rig.slack.Delivered())
	assert.Len(t, rig.sns.Published(), 1, "SNS does not wait for Slack")

	resp, err = rig.notifier.Handle(ctx, streamInsert(n, "200"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Empty(t, rig.slack.Delivered(), "backing off")

	rig.notifier.Claims = claimsAt{rig.store, time.Now().Add(pipeline.NotifyBackoff(1) + time.Second)}
	resp, err = rig.notifier.Handle(ctx, streamInsert(n, "200"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, rig.slack.Delivered(), 1, "delivered after the outage, once")
	assert.Len(t, rig.sns.Published(), 1, "not published twice")

	resp, err = rig.notifier.Handle(ctx, streamInsert(n, "200"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, rig.slack.Delivered(), 1)
}

func TestSlackRefusalFallsBackToPlainText(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	for _, l := range scenarioLines(t, "deploy-fails") {
		_, err := rig.events.Handle(ctx, []byte(l))
		require.NoError(t, err)
	}
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "payments", ExecutionID: "0d000000-0000-4000-8000-000000000002"}
	rig.slack.FailNext(notifytest.InvalidBlocks)
	resp, err := rig.notifier.Handle(ctx, streamInsert(n, "300"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	require.Len(t, rig.slack.Delivered(), 1)
	assert.NotContains(t, string(rig.slack.Delivered()[0]), `"blocks"`)
	assert.Contains(t, string(rig.slack.Delivered()[0]), "payments")
}

func TestNotifierIgnoresOtherStreamRecords(t *testing.T) {
	rig := newNotifierRig(t)
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		{EventName: "MODIFY", Change: events.DynamoDBStreamRecord{SequenceNumber: "1", Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("RUN#p#e")}}},
		{EventName: "REMOVE", Change: events.DynamoDBStreamRecord{SequenceNumber: "2", Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("NOTIFY#failed#p#e")}}},
		{EventName: "MODIFY", Change: events.DynamoDBStreamRecord{SequenceNumber: "3",
			Keys:     map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("NOTIFY#failed#p#e")},
			NewImage: map[string]events.DynamoDBAttributeValue{"state": events.NewStringAttribute("SENT")}}},
		{EventName: "INSERT", Change: events.DynamoDBStreamRecord{SequenceNumber: "4",
			Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("NOTIFY#failed#p#gone")}}},
	}}
	resp, err := rig.notifier.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Empty(t, rig.slack.Posts())
}

// TestUnreadableWebhookHoldsUpSlackOnly: the webhook secret cannot be read at first (deleted,
// throttled): SNS goes out at once; the retry reads it and posts to Slack, once.
func TestUnreadableWebhookHoldsUpSlackOnly(t *testing.T) {
	slack := notifytest.NewSlack(t)
	snsFake := notifytest.NewSNS(t, testTopic)
	reads := 0
	rig := newRig(t, &Sender{
		Enrich: &stubEnricher{},
		Channels: []notify.Channel{
			&notify.SlackChannel{Log: discard, Resolve: func(context.Context) (string, error) {
				reads++
				if reads == 1 {
					return "", errors.New("ParameterNotFound")
				}
				return slack.URL(), nil
			}},
			&notify.SNS{API: snsFake.Client(), TopicARN: testTopic},
		},
	})
	ctx := context.Background()
	for _, l := range scenarioLines(t, "deploy-fails") {
		_, err := rig.events.Handle(ctx, []byte(l))
		require.NoError(t, err)
	}
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "payments", ExecutionID: "0d000000-0000-4000-8000-000000000002"}
	resp, err := rig.notifier.Handle(ctx, streamInsert(n, "400"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, snsFake.Published(), 1)
	assert.Empty(t, slack.Posts())

	rig.notifier.Claims = claimsAt{rig.store, time.Now().Add(pipeline.NotifyBackoff(1) + time.Second)}
	resp, err = rig.notifier.Handle(ctx, streamInsert(n, "400"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, snsFake.Published(), 1)
	assert.Len(t, slack.Delivered(), 1)
	assert.Equal(t, 2, reads, "read again after the failure, then kept")
}

// TestCrashedSenderIsOvertakenAfterItsLease: an invocation claimed the notification and died
// before sending. The stream's retry is refused while the lease runs, then sends.
func TestCrashedSenderIsOvertakenAfterItsLease(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	for _, l := range scenarioLines(t, "deploy-fails") {
		_, err := rig.events.Handle(ctx, []byte(l))
		require.NoError(t, err)
	}
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "payments", ExecutionID: "0d000000-0000-4000-8000-000000000002"}
	clock := time.Now()
	attempt, err := rig.store.Claim(ctx, n, clock, DefaultLease) // the crashed invocation
	require.NoError(t, err)
	require.Equal(t, 1, attempt)

	resp, err := rig.notifier.Handle(ctx, streamInsert(n, "500"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures, "held by a sender that may be dead: the reconciler hands it back; the shard goes on")
	assert.Empty(t, rig.slack.Posts())

	// Spent stream retries: the reconciler requeues it once the lease has run out.
	later := clock.Add(DefaultLease + time.Second)
	requeued, err := rig.store.Requeue(ctx, later, later)
	require.NoError(t, err)
	assert.Equal(t, 1, requeued)
	rig.notifier.Claims = claimsAt{rig.store, later}
	resp, err = rig.notifier.Handle(ctx, streamModifyReleased(n, "501"))
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
	assert.Len(t, rig.slack.Delivered(), 1)
	assert.Len(t, rig.sns.Published(), 1)
	requeued, err = rig.store.Requeue(ctx, later.Add(time.Hour), later.Add(time.Hour))
	require.NoError(t, err)
	assert.Zero(t, requeued, "a sent claim leaves the pending index")
}

// claimsAt claims as if the clock read at.
type claimsAt struct {
	*runstore.Dynamo
	at time.Time
}

func (c claimsAt) Claim(ctx context.Context, n pipeline.Notification, _ time.Time, lease time.Duration) (int, error) {
	return c.Dynamo.Claim(ctx, n, c.at, lease)
}

func streamModifyReleased(n pipeline.Notification, seq string) events.DynamoDBEvent {
	ev := streamInsert(n, seq)
	ev.Records[0].EventName = "MODIFY"
	ev.Records[0].Change.NewImage["leaseUntil"] = events.NewNumberAttribute("0")
	return ev
}

var discard = slog.New(slog.DiscardHandler)
