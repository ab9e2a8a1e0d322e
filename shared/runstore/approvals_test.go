package runstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

func sampleApproval(at time.Time) pipeline.Approval {
	return pipeline.Approval{
		Key:    pipeline.ApprovalKey{Pipeline: "my-lambda-pipeline", ExecutionID: "3a2b1c0d-1111-4000-8000-000000000001", Stack: "my-lambda-app", Deploy: "job-1"},
		Status: pipeline.ApprovalPending, TemplatePath: "SourceArtifact::infrastructure/lambda.yml",
		TemplateSHA256: "aa11", Widening: []string{"FunctionRole: added-action: s3:PutObject"},
		RequestedAt: at, Deadline: at.Add(20 * time.Hour),
	}
}

// The first request is stored; a later job of the same deploy gets the stored one back, not
// its own.
func TestRequestApprovalKeepsTheFirst(t *testing.T) {
	store, _, _ := newDynamo(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	first := sampleApproval(at)
	got, err := store.RequestApproval(ctx, first)
	require.NoError(t, err)
	assert.Equal(t, pipeline.ApprovalPending, got.Status)

	again := first
	again.RequestedAt, again.Deadline = at.Add(time.Minute), at.Add(21*time.Hour)
	got, err = store.RequestApproval(ctx, again)
	require.NoError(t, err)
	assert.True(t, got.RequestedAt.Equal(first.RequestedAt))
	assert.True(t, got.Deadline.Equal(first.Deadline))
	assert.Equal(t, first.Widening, got.Widening)

	// A retried stage is a new deploy: it asks again, and the first request stays on record.
	retry := first
	retry.Key.Deploy, retry.RequestedAt = "job-9", at.Add(2*time.Hour)
	got, err = store.RequestApproval(ctx, retry)
	require.NoError(t, err)
	assert.Equal(t, retry.Key, got.Key)

	list, err := store.Approvals(ctx, first.Key.Pipeline, first.Key.ExecutionID)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, first.Key, list[0].Key)
	assert.Equal(t, retry.Key, list[1].Key)

	_, err = store.Approval(ctx, pipeline.ApprovalKey{Pipeline: "p", ExecutionID: "e", Stack: "s", Deploy: "d"})
	assert.ErrorIs(t, err, pipeline.ErrApprovalNotFound)
}

// A decision is made once, by whoever is first; it records who and when.
func TestDecideApprovalOnce(t *testing.T) {
	store, _, _ := newDynamo(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	a := sampleApproval(at)
	_, err := store.RequestApproval(ctx, a)
	require.NoError(t, err)

	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: i%2 == 0, By: "arn:aws:iam::123456789012:user/p" + string(rune('0'+i)), At: at.Add(time.Hour)})
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range results {
		if err == nil {
			wins++
		} else {
			assert.ErrorIs(t, err, pipeline.ErrAlreadyDecided)
		}
	}
	assert.Equal(t, 1, wins)
	got, err := store.Approval(ctx, a.Key)
	require.NoError(t, err)
	assert.Contains(t, []pipeline.ApprovalStatus{pipeline.ApprovalApproved, pipeline.ApprovalRejected}, got.Status)
	assert.Contains(t, got.DecidedBy, "arn:aws:iam::123456789012:user/p")
	assert.True(t, got.DecidedAt.Equal(at.Add(time.Hour)))
}

// A pending approval sits in the index partition the reconciler sweeps (APPROVAL#PENDING,
// by request time); its decision takes it out.
func TestApprovalPendingIndexEntry(t *testing.T) {
	store, db, table := newDynamo(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	a := sampleApproval(at)
	_, err := store.RequestApproval(ctx, a)
	require.NoError(t, err)
	item := func() map[string]types.AttributeValue {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: approvalItemKey(a)})
		require.NoError(t, err)
		return out.Item
	}
	assert.Equal(t, &types.AttributeValueMemberS{Value: "APPROVAL#PENDING"}, item()["gsi1pk"])
	assert.Equal(t, &types.AttributeValueMemberS{Value: "2026-11-20T10:00:00.000000000Z#" + pipeline.ApprovalNotification(a).Key()}, item()["gsi1sk"])

	_, err = store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: true, By: "arn:aws:iam::123456789012:user/ana", At: at.Add(time.Hour)})
	require.NoError(t, err)
	assert.NotContains(t, item(), "gsi1pk")
	assert.NotContains(t, item(), "gsi1sk")
}

// Past its deadline an approval can no longer be decided; a missing one says so.
func TestDecideApprovalRefusesExpiredAndMissing(t *testing.T) {
	store, _, _ := newDynamo(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	a := sampleApproval(at)
	_, err := store.RequestApproval(ctx, a)
	require.NoError(t, err)

	got, err := store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: true, By: "arn:aws:iam::123456789012:user/late", At: a.Deadline})
	assert.ErrorIs(t, err, pipeline.ErrApprovalExpired)
	assert.Equal(t, pipeline.ApprovalExpired, got.State(a.Deadline))

	rejected, err := store.DecideApproval(ctx, a.Key, pipeline.Decision{By: "arn:aws:iam::123456789012:user/early", At: a.Deadline.Add(-time.Minute), Reason: "not now"})
	require.NoError(t, err)
	assert.Equal(t, pipeline.ApprovalRejected, rejected.Status)
	assert.Equal(t, "not now", rejected.Reason)

	_, err = store.DecideApproval(ctx, pipeline.ApprovalKey{Pipeline: "p", ExecutionID: "e", Stack: "s", Deploy: "d"}, pipeline.Decision{Approve: true, By: "x", At: at})
	assert.ErrorIs(t, err, pipeline.ErrApprovalNotFound)

	_, err = store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: true, At: at})
	assert.Error(t, err, "a decision without who decided")
}
