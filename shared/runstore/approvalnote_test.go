package runstore_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// approvalQueue is what the notifier needs of a store for approval notifications, as both
// Memory and Dynamo provide it.
type approvalQueue interface {
	pipeline.Claims
	FromStream(ctx context.Context, rec events.DynamoDBEventRecord) (pipeline.Queued, bool, error)
	Queued(ctx context.Context, n pipeline.Notification) (pipeline.Queued, error)
	Requeue(ctx context.Context, cutoff, now time.Time) (int, error)
	GaveUp(ctx context.Context) ([]pipeline.Queued, error)
}

var (
	_ approvalQueue = (*runstore.Memory)(nil)
	_ approvalQueue = (*runstore.Dynamo)(nil)
)

func approvalItemKey(a pipeline.Approval) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: runstore.ApprovalPrefix + a.Key.Pipeline + "#" + a.Key.ExecutionID},
		"sk": &types.AttributeValueMemberS{Value: "STACK#" + a.Key.Stack + "#" + a.Key.Deploy},
	}
}

// The stream record of the item the deployer's RequestApproval writes announces the pending
// approval notification, to either store; the decision (a MODIFY), a removal and an item that
// does not read as an approval announce none.
func TestApprovalRequestFromTheStream(t *testing.T) {
	ctx := context.Background()
	store, db, table := newDynamo(t)
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	a := sampleApproval(at)
	a.Widening = append(a.Widening, "FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*")
	_, err := store.RequestApproval(ctx, a)
	require.NoError(t, err)
	insert := dynalitetest.StreamRecord(t, db, table, approvalItemKey(a), "INSERT", "1")

	for name, s := range map[string]approvalQueue{"dynamo": store, "memory": runstore.NewMemory()} {
		t.Run(name, func(t *testing.T) {
			q, ok, err := s.FromStream(ctx, insert)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, pipeline.Queued{Notification: pipeline.ApprovalNotification(a), State: pipeline.ClaimPending, Channels: map[string]bool{}}, q)
			assert.Equal(t, "approval#my-lambda-pipeline#"+a.Key.ExecutionID+"#my-lambda-app#job-1", q.Notification.Key())

			remove := insert
			remove.EventName = "REMOVE"
			_, ok, err = s.FromStream(ctx, remove)
			require.NoError(t, err)
			assert.False(t, ok, "a removal (TTL)")

			broken := insert
			broken.Change.NewImage = dynalitetest.StreamImage(map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "APPROVAL#p#e"}, "status": &types.AttributeValueMemberS{Value: "PENDING"}})
			_, ok, err = s.FromStream(ctx, broken)
			assert.ErrorIs(t, err, pipeline.ErrMalformed)
			assert.False(t, ok)
		})
	}

	_, err = store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: true, By: "arn:aws:iam::123456789012:user/ana", At: at.Add(time.Hour)})
	require.NoError(t, err)
	decided := dynalitetest.StreamRecord(t, db, table, approvalItemKey(a), "MODIFY", "2")
	_, ok, err := store.FromStream(ctx, decided)
	require.NoError(t, err)
	assert.False(t, ok, "the decision tells nobody")
	decided.EventName = "INSERT"
	_, ok, err = store.FromStream(ctx, decided)
	require.NoError(t, err)
	assert.False(t, ok, "a request decided already tells nobody")
}

// No outbox queued an approval notification: its first Claim does, keeping what the message
// says, so that a failed attempt is handed back by Requeue and composed again from the claim,
// and a given-up one is listed whole.
func TestApprovalClaimKeepsTheMessage(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	dynamo, _, _ := newDynamo(t)
	for name, s := range map[string]approvalQueue{"dynamo": dynamo, "memory": runstore.NewMemory()} {
		t.Run(name, func(t *testing.T) {
			a := sampleApproval(at)
			a.Widening = append(a.Widening, "FunctionRole: added-managed-policy: arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess")
			n := pipeline.ApprovalNotification(a)
			n.WideningLeft = 3
			now := at.Add(time.Second)

			attempt, err := s.Claim(ctx, n, now, time.Minute)
			require.NoError(t, err)
			require.Equal(t, 1, attempt)
			require.NoError(t, s.Release(ctx, n, pipeline.Retry{Delivered: []string{"sns"}, RetryAt: now.Add(time.Minute), Reason: "slack: 503"}))

			q, err := s.Queued(ctx, n)
			require.NoError(t, err)
			assert.Equal(t, pipeline.Queued{Notification: n, State: pipeline.ClaimPending, Channels: map[string]bool{"sns": true}}, q)

			later := now.Add(2 * time.Minute)
			requeued, err := s.Requeue(ctx, later, later)
			require.NoError(t, err)
			assert.Equal(t, 1, requeued, "the claim is in the pending queue, as the outbox would have put it")

			attempt, err = s.Claim(ctx, n, later, time.Minute)
			require.NoError(t, err)
			assert.Equal(t, 2, attempt)
			require.NoError(t, s.Release(ctx, n, pipeline.Retry{RetryAt: later, GiveUp: true, Reason: "slack: 503"}))
			gaveUp, err := s.GaveUp(ctx)
			require.NoError(t, err)
			require.Len(t, gaveUp, 1)
			assert.Equal(t, n, gaveUp[0].Notification)
			requeued, err = s.Requeue(ctx, later.Add(time.Hour), later.Add(time.Hour))
			require.NoError(t, err)
			assert.Zero(t, requeued)
		})
	}
}

// events/notifier-approval-insert.json (scripts/invoke's sample for the notifier) is the
// stream record of an item exactly as RequestApproval writes it.
func TestApprovalSampleIsTheItemTheDeployerWrites(t *testing.T) {
	raw, err := os.ReadFile("../../events/notifier-approval-insert.json")
	require.NoError(t, err)
	var sample events.DynamoDBEvent
	require.NoError(t, json.Unmarshal(raw, &sample))
	require.Len(t, sample.Records, 1)

	at := time.Date(2026, 11, 23, 11, 21, 5, 0, time.UTC)
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, runstore.TableInput(dynalitetest.UniqueTableName(t)))
	store := runstore.NewDynamo(db, table, pipeline.ClockFunc(func() time.Time { return at })).WithRetention(90 * 24 * time.Hour)
	a := pipeline.Approval{
		Key: pipeline.ApprovalKey{Pipeline: "my-lambda-pipeline", ExecutionID: "a1f0c2d4-1111-4a5b-8c6d-000000000002", Stack: "my-lambda-app",
			Deploy: "6d7e8f90-1a2b-4c3d-8e4f-5a6b7c8d9e02"},
		Status: pipeline.ApprovalPending, TemplatePath: "SourceArtifact::infrastructure/lambda.yml",
		TemplateSHA256: "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a0c2e4f6a8b0d2f4e6a8c0b",
		BaseSHA256:     "1c3e5a7b9d0f2e4a6c8b0d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a0c",
		Widening:       []string{"FunctionRole: added-action: s3:PutObject", "FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*"},
		RequestedAt:    at, Deadline: at.Add(20 * time.Hour),
	}
	_, err = store.RequestApproval(context.Background(), a)
	require.NoError(t, err)
	written := dynalitetest.StreamRecord(t, db, table, approvalItemKey(a), "INSERT", "1")
	assert.Equal(t, written.Change.Keys, sample.Records[0].Change.Keys)
	assert.Equal(t, written.Change.NewImage, sample.Records[0].Change.NewImage)

	q, ok, err := store.FromStream(context.Background(), sample.Records[0])
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, pipeline.ApprovalNotification(a), q.Notification)
}
