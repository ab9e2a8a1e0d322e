package runstore

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// One dynalite per test binary; each test uses its own table.
func TestMain(m *testing.M) { dynalitetest.Main(m) }

// newDynamo returns a store over a fresh table in the shared dynalite.
func newDynamo(t testing.TB) *Dynamo {
	t.Helper()
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, TableInput(dynalitetest.UniqueTableName(t)))
	return NewDynamo(&counting{DynamoAPI: db}, table, pipeline.ClockFunc(func() time.Time { return now }))
}

// requests returns how many write and read requests the store sent.
func requests(d *Dynamo) (writes, reads int64) {
	c := d.db.(*counting)
	return c.writes.Load(), c.reads.Load()
}

// counting counts the requests a store sends: writes (PutItem, UpdateItem) and reads
// (GetItem, Query and Scan pages).
type counting struct {
	DynamoAPI
	writes, reads atomic.Int64
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.writes.Add(1)
	return c.DynamoAPI.PutItem(ctx, in, opts...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.writes.Add(1)
	return c.DynamoAPI.UpdateItem(ctx, in, opts...)
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.reads.Add(1)
	return c.DynamoAPI.GetItem(ctx, in, opts...)
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.reads.Add(1)
	return c.DynamoAPI.Query(ctx, in, opts...)
}

func (c *counting) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.reads.Add(1)
	return c.DynamoAPI.Scan(ctx, in, opts...)
}
