//go:build unix

package dynalitetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

// TestDynalite proves the helper against the real wire protocol: a table with
// a partition+sort key and a GSI, a conditional put that fails the second
// time with ConditionalCheckFailedException, and a query on the GSI.
func TestDynalite(t *testing.T) {
	ctx := context.Background()
	db := Start(t).Client(t)

	table := CreateTable(t, db, &dynamodb.CreateTableInput{
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("gsi1pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("gsi1sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String("gsi1"),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("gsi1pk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("gsi1sk"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})

	item := map[string]types.AttributeValue{
		"pk":     &types.AttributeValueMemberS{Value: "PIPELINE#demo"},
		"sk":     &types.AttributeValueMemberS{Value: "RUN#0001"},
		"gsi1pk": &types.AttributeValueMemberS{Value: "STATUS#FAILED"},
		"gsi1sk": &types.AttributeValueMemberS{Value: "2026-01-02T03:04:05Z"},
		"commit": &types.AttributeValueMemberS{Value: "0123abcd"},
	}
	put := &dynamodb.PutItemInput{
		TableName:           aws.String(table),
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}

	_, err := db.PutItem(ctx, put)
	require.NoError(t, err)

	_, err = db.PutItem(ctx, put)
	require.Error(t, err)
	var ccf *types.ConditionalCheckFailedException
	require.True(t, errors.As(err, &ccf), "want *types.ConditionalCheckFailedException, got %T: %v", err, err)

	// dynalite maintains indexes synchronously (real GSIs are eventually
	// consistent), so the item is visible at once.
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(table),
		IndexName:              aws.String("gsi1"),
		KeyConditionExpression: aws.String("gsi1pk = :p AND begins_with(gsi1sk, :y)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": &types.AttributeValueMemberS{Value: "STATUS#FAILED"},
			":y": &types.AttributeValueMemberS{Value: "2026-"},
		},
	})
	require.NoError(t, err)
	require.Len(t, out.Items, 1)
	require.Equal(t, item, out.Items[0])
}

// TestStartUnshared checks Start without Main: a process of its own, gone
// once the test's Cleanup has run.
func TestStartUnshared(t *testing.T) {
	unshare(t)

	var s *Server
	t.Run("own", func(t *testing.T) {
		s = Start(t)
		require.NotSame(t, s, shared.server)
		_, err := s.Client(t).ListTables(context.Background(), &dynamodb.ListTablesInput{})
		require.NoError(t, err)
	})
	require.NotNil(t, s)
	select {
	case <-s.exited:
	default:
		t.Fatal("dynalite still running after the test's Cleanup")
	}
}

// unshare turns Main's sharing off for the rest of t.
func unshare(t *testing.T) {
	shared.mu.Lock()
	wasShared := shared.enabled
	shared.enabled = false
	shared.mu.Unlock()
	t.Cleanup(func() {
		shared.mu.Lock()
		shared.enabled = wasShared
		shared.mu.Unlock()
	})
}

// TestStartWithoutDynalite checks that a missing dynalite fails the test with
// the npm ci instruction, and does not skip it.
func TestStartWithoutDynalite(t *testing.T) {
	t.Setenv(EnvBin, "/nonexistent/dynalite")

	_, err := start()
	require.Error(t, err)
	require.Contains(t, err.Error(), "/nonexistent/dynalite")
	require.Contains(t, err.Error(), "npm ci")

	// Through Start, unshared: the failure is a Fatalf, never a Skip.
	unshare(t)

	rec := &recordingTB{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Start(rec)
	}()
	wg.Wait()
	require.True(t, rec.fatal, "Start must fail the test")
	require.False(t, rec.skipped, "Start must not skip the test")
	require.Contains(t, rec.msg, "npm ci")
}

// recordingTB records Fatalf and Skip instead of ending the real test.
type recordingTB struct {
	testing.TB
	fatal, skipped bool
	msg            string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Skip(args ...any) { r.skipped = true; runtime.Goexit() }

func (r *recordingTB) Skipf(string, ...any) { r.skipped = true; runtime.Goexit() }

func (r *recordingTB) SkipNow() { r.skipped = true; runtime.Goexit() }

func (r *recordingTB) Cleanup(func()) {}
