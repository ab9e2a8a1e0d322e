package runstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// ListSince returns the pipeline's runs that started at or after since, newest first: one
// Query of the byPipeline index (gsi1sk >= since), read page by page. Index items are placed
// no earlier than the event they record (see pipeline.Change), so every run whose STARTED
// event or push happened at or after since is found, a run whose events were all lost but
// whose push was recorded too.
func (d *Dynamo) ListSince(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Run, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName:              aws.String(d.table),
		IndexName:              aws.String(IndexByPipeline),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk >= :since"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":     &types.AttributeValueMemberS{Value: "PIPELINE#" + pipelineName},
			":since": &types.AttributeValueMemberS{Value: since.UTC().Format(timeLayout)},
		},
		ScanIndexForward: aws.Bool(false),
	})
	var index []map[string]types.AttributeValue
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query runs of %s since %s: %w", pipelineName, since.UTC().Format(time.RFC3339), err)
		}
		index = append(index, out.Items...)
	}
	// The index places a run by its pipeline events and its push; one that started before
	// since may be named by a later event: keep the runs that started at or after since.
	runs, err := d.runsOf(ctx, index, 0)
	if err != nil {
		return nil, err
	}
	kept := runs[:0]
	for _, r := range runs {
		if !r.Began().Before(since) {
			kept = append(kept, r)
		}
	}
	// The index orders by placement, which a late delivery moves: newest start first.
	sortNewestFirst(kept)
	return kept, nil
}

func sortNewestFirst(runs []pipeline.Run) {
	sort.Slice(runs, func(i, j int) bool {
		a, b := runs[i].Began(), runs[j].Began()
		if !a.Equal(b) {
			return a.After(b)
		}
		return runs[i].ExecutionID > runs[j].ExecutionID
	})
}

// ListSince returns the pipeline's runs that started at or after since, newest first.
func (m *Memory) ListSince(_ context.Context, pipelineName string, since time.Time) ([]pipeline.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var runs []pipeline.Run
	for k, mr := range m.runs {
		if r := mr.fold(k); k.Pipeline == pipelineName && !r.Began().Before(since) {
			runs = append(runs, r)
		}
	}
	sortNewestFirst(runs)
	return runs, nil
}
