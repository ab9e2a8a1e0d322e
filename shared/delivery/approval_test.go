package delivery

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

const approvalExec = "7b2e9d41-5c3a-4f8e-b1d6-2a9c0e4f7d13"

// approvalAskedAt is when the test's deploy asks: now, since the notifier does not ask about a
// request past its deadline by its clock (the system clock here, as the claims use).
var (
	approvalAskedAt  = time.Now().UTC().Truncate(time.Second)
	approvalDeadline = approvalAskedAt.Add(20*time.Hour).Format("2006-01-02 15:04") + " UTC"
)

// requestApproval writes the approval request as the deployer does (its gate calls
// RequestApproval), and returns it with the stream record of its INSERT.
func (rig *notifierRig) requestApproval(t *testing.T, seq string) (pipeline.Approval, events.DynamoDBEvent) {
	t.Helper()
	at := approvalAskedAt
	a := pipeline.Approval{
		Key: pipeline.ApprovalKey{Pipeline: "my-lambda-pipeline", ExecutionID: approvalExec, Stack: "my-lambda-app",
			Deploy: "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"},
		Status: pipeline.ApprovalPending, TemplatePath: "SourceArtifact::infrastructure/lambda.yml", TemplateSHA256: "9f2c4e6a",
		Widening: []string{
			"FunctionRole: added-action: s3:PutObject",
			"FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*",
		},
		RequestedAt: at, Deadline: at.Add(20 * time.Hour),
	}
	stored, err := rig.store.RequestApproval(context.Background(), a)
	require.NoError(t, err)
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "APPROVAL#my-lambda-pipeline#" + approvalExec},
		"sk": &types.AttributeValueMemberS{Value: "STACK#my-lambda-app#" + a.Key.Deploy},
	}
	return stored, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{dynalitetest.StreamRecord(t, rig.db, rig.table, key, "INSERT", seq)}}
}

// handBack is the reconciler handing n's claim back once its first backoff is over (Requeue),
// and the stream record of that MODIFY; the notifier's claims see the time after the backoff.
func (rig *notifierRig) handBack(t *testing.T, n pipeline.Notification, seq string) (time.Time, events.DynamoDBEvent) {
	t.Helper()
	later := time.Now().Add(pipeline.NotifyBackoff(1) + time.Second)
	requeued, err := rig.store.Requeue(context.Background(), later, later)
	require.NoError(t, err)
	require.Equal(t, 1, requeued, "the claim waits in the pending queue")
	rig.notifier.Claims = claimsAt{rig.store, later}
	return later, rig.claimRecord(t, n, "MODIFY", seq)
}

// claimRecord is the stream record of a write to n's claim item, as the table holds it now.
func (rig *notifierRig) claimRecord(t *testing.T, n pipeline.Notification, eventName, seq string) events.DynamoDBEvent {
	key := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "NOTIFY#" + n.Key()}, "sk": &types.AttributeValueMemberS{Value: "NOTIFY"},
	}
	return events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{dynalitetest.StreamRecord(t, rig.db, rig.table, key, eventName, seq)}}
}

func (rig *notifierRig) handle(t *testing.T, ev events.DynamoDBEvent) {
	t.Helper()
	resp, err := rig.notifier.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Empty(t, resp.BatchItemFailures)
}

// assertApprovalMessage checks that a message tells what waits, until when, how to decide,
// what it widens, and links the execution.
func assertApprovalMessage(t *testing.T, channel, text string) {
	t.Helper()
	for _, want := range []string{
		"my-lambda-app", "my-lambda-pipeline", "waits for your approval until", approvalDeadline,
		"lp approve --deploy-stack my-lambda-app " + approvalExec, "lp reject --deploy-stack my-lambda-app --reason", "FunctionRole: added-action: s3:PutObject",
		"arn:aws:s3:::my-lambda-uploads/*", "/codepipeline/pipelines/my-lambda-pipeline/executions/" + approvalExec,
	} {
		assert.Contains(t, text, want, channel)
	}
}

// TestApprovalRequestToldOnce: the stream's INSERT of the item the deployer wrote sends one
// Slack message and one e-mail saying what waits and how to decide; the stream delivering the
// record again, the INSERT of the claim item the first delivery wrote, and the decision (a
// MODIFY of the approval item) send nothing more.
func TestApprovalRequestToldOnce(t *testing.T) {
	rig := newNotifierRig(t)
	a, insert := rig.requestApproval(t, "100")

	rig.handle(t, insert)
	require.Len(t, rig.slack.Delivered(), 1, "one Slack post")
	require.Len(t, rig.sns.Published(), 1, "one SNS publish")
	var slack struct{ Text string }
	require.NoError(t, json.Unmarshal(rig.slack.Delivered()[0], &slack))
	assert.Contains(t, slack.Text, "APPROVAL NEEDED my-lambda-pipeline")
	assertApprovalMessage(t, "slack", string(rig.slack.Delivered()[0]))
	pub := rig.sns.Published()[0]
	assertApprovalMessage(t, "sns", pub.Message)
	assert.Equal(t, "APPROVAL NEEDED my-lambda-pipeline: stack my-lambda-app waits until "+approvalDeadline, pub.Subject)
	assert.Equal(t, map[string]notifytest.Attribute{
		"pipeline": {DataType: "String", StringValue: "my-lambda-pipeline"},
		"project":  {DataType: "String", StringValue: "my-lambda"},
		"status":   {DataType: "String", StringValue: "IN_PROGRESS"},
		"type":     {DataType: "String", StringValue: "approval"},
	}, pub.Attributes)
	assert.NotContains(t, pub.Message, "TestUpload", "an approval carries no build failure")

	n := pipeline.ApprovalNotification(a)
	q, err := rig.store.Queued(context.Background(), n)
	require.NoError(t, err)
	assert.Equal(t, pipeline.ClaimSent, q.State)
	assert.Equal(t, map[string]bool{notify.ChannelSlack: true, notify.ChannelSNS: true}, q.Channels)

	rig.handle(t, insert)                                 // the stream delivers it again
	rig.handle(t, rig.claimRecord(t, n, "INSERT", "101")) // the claim item the first delivery wrote
	_, err = rig.store.DecideApproval(context.Background(), a.Key, pipeline.Decision{Approve: true, By: "arn:aws:iam::123456789012:user/ana", At: a.RequestedAt.Add(time.Hour)})
	require.NoError(t, err)
	_, decided := rig.requestApproval(t, "102") // the same request, stored already: the record shows it decided
	decided.Records[0].EventName = "MODIFY"
	rig.handle(t, decided)
	assert.Len(t, rig.slack.Delivered(), 1, "nothing more to Slack")
	assert.Len(t, rig.sns.Published(), 1, "nothing more to SNS")
}

// TestApprovalSlackFailureRetriesThroughTheClaim: Slack is down when the request arrives; SNS
// goes out at once, and the attempt ends with a backoff. The stream's redelivery during it
// sends nothing; the reconciler's Requeue hands the claim back once it is over, and the
// message, composed again from the claim item alone, reaches Slack, once, and SNS not again.
func TestApprovalSlackFailureRetriesThroughTheClaim(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	a, insert := rig.requestApproval(t, "200")
	n := pipeline.ApprovalNotification(a)
	rig.slack.FailNext(notifytest.Unavailable, notifytest.RollupError)

	rig.handle(t, insert)
	assert.Empty(t, rig.slack.Delivered())
	assert.Len(t, rig.sns.Published(), 1, "SNS does not wait for Slack")

	rig.handle(t, insert)
	assert.Empty(t, rig.slack.Delivered(), "backing off")

	later, handedBack := rig.handBack(t, n, "201")
	assert.Equal(t, "0", handedBack.Records[0].Change.NewImage["leaseUntil"].Number(), "the record the stream's MODIFY filter passes")
	rig.handle(t, handedBack)
	require.Len(t, rig.slack.Delivered(), 1, "delivered after the outage, once")
	assertApprovalMessage(t, "slack", string(rig.slack.Delivered()[0]))
	assert.Len(t, rig.sns.Published(), 1, "not published twice")
	assert.True(t, strings.Contains(string(rig.slack.Delivered()[0]), "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"), "the deploy, from the claim")

	rig.handle(t, rig.claimRecord(t, n, "MODIFY", "202"))
	assert.Len(t, rig.slack.Delivered(), 1)
	requeued, err := rig.store.Requeue(ctx, later.Add(time.Hour), later.Add(time.Hour))
	require.NoError(t, err)
	assert.Zero(t, requeued, "a sent claim leaves the pending queue")
}

// A request decided while one channel was backing off is not asked again: the retry posts
// nothing, and the claim is settled (it leaves the pending queue).
func TestApprovalDecidedBeforeTheRetryIsNotAskedAgain(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	a, insert := rig.requestApproval(t, "250")
	n := pipeline.ApprovalNotification(a)
	rig.slack.FailNext(notifytest.Unavailable, notifytest.RollupError)
	rig.handle(t, insert)
	require.Len(t, rig.sns.Published(), 1, "SNS told it")
	require.Empty(t, rig.slack.Delivered())

	_, err := rig.store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: true, By: "arn:aws:iam::123456789012:user/ana", At: time.Now()})
	require.NoError(t, err)
	_, handedBack := rig.handBack(t, n, "251")
	rig.handle(t, handedBack)
	assert.Empty(t, rig.slack.Delivered(), "approved since: Slack is not asked")
	assert.Len(t, rig.sns.Published(), 1)
	q, err := rig.store.Queued(ctx, n)
	require.NoError(t, err)
	assert.False(t, q.Pending(), "the claim is settled")
}

// An approval item the notifier cannot read is dropped, with a log line: the stream would
// deliver the same again.
func TestUnreadableApprovalRecordIsDropped(t *testing.T) {
	rig := newNotifierRig(t)
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: "1",
		Keys:           map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("APPROVAL#p#e")},
	}}}}
	rig.handle(t, ev)
	assert.Empty(t, rig.slack.Posts())
	assert.Empty(t, rig.sns.Published())
}

// TestApprovalRequestTheNotifierNeverToldIsSwept: the notifier failed for the stream record
// of the request before its first Claim until the stream's retries were spent, so no claim
// remembers it. The reconciler's sweep, once ten minutes have passed, queues the notification
// as the outbox would; the claim item's INSERT tells it, once, composed from the claim alone.
// A later sweep, and the lost record delivered after all, tell nothing more.
func TestApprovalRequestTheNotifierNeverToldIsSwept(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	a, insert := rig.requestApproval(t, "300") // and the notifier never gets past it
	n := pipeline.ApprovalNotification(a)

	early := a.RequestedAt.Add(5 * time.Minute)
	queued, err := rig.store.SweepApprovals(ctx, early.Add(-10*time.Minute), early)
	require.NoError(t, err)
	assert.Zero(t, queued, "the stream's own retries still have time")

	later := a.RequestedAt.Add(11 * time.Minute)
	queued, err = rig.store.SweepApprovals(ctx, later.Add(-10*time.Minute), later)
	require.NoError(t, err)
	require.Equal(t, 1, queued)
	rig.handle(t, rig.claimRecord(t, n, "INSERT", "301"))
	require.Len(t, rig.slack.Delivered(), 1, "told on Slack")
	require.Len(t, rig.sns.Published(), 1, "told by SNS")
	assertApprovalMessage(t, "slack", string(rig.slack.Delivered()[0]))
	assertApprovalMessage(t, "sns", rig.sns.Published()[0].Message)

	queued, err = rig.store.SweepApprovals(ctx, later, later.Add(10*time.Minute))
	require.NoError(t, err)
	assert.Zero(t, queued, "its claim exists")
	rig.handle(t, insert)
	assert.Len(t, rig.slack.Delivered(), 1, "not told twice")
	assert.Len(t, rig.sns.Published(), 1, "not told twice")
}

// A request the notifier told, a decided one and one past its deadline are not swept.
func TestApprovalSweepLeavesToldDecidedAndExpired(t *testing.T) {
	rig := newNotifierRig(t)
	ctx := context.Background()
	a, insert := rig.requestApproval(t, "400")
	rig.handle(t, insert)
	require.Len(t, rig.slack.Delivered(), 1)
	later := a.RequestedAt.Add(time.Hour)
	queued, err := rig.store.SweepApprovals(ctx, later.Add(-10*time.Minute), later)
	require.NoError(t, err)
	assert.Zero(t, queued, "told by the notifier")
	assert.Len(t, rig.slack.Delivered(), 1)

	decided := newNotifierRig(t)
	a, _ = decided.requestApproval(t, "500")
	_, err = decided.store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: false, By: "arn:aws:iam::123456789012:user/ana", At: a.RequestedAt.Add(time.Minute), Reason: "no"})
	require.NoError(t, err)
	queued, err = decided.store.SweepApprovals(ctx, later.Add(-10*time.Minute), later)
	require.NoError(t, err)
	assert.Zero(t, queued, "decided: out of the index")

	expired := newNotifierRig(t)
	a, _ = expired.requestApproval(t, "600")
	past := a.Deadline.Add(time.Minute)
	queued, err = expired.store.SweepApprovals(ctx, past.Add(-10*time.Minute), past)
	require.NoError(t, err)
	assert.Zero(t, queued, "past its deadline: nobody can decide it any more")
	_, err = expired.store.Queued(ctx, pipeline.ApprovalNotification(a))
	assert.ErrorIs(t, err, pipeline.ErrNotFound)
}
