package runstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Foreign pipelines are the pipelines of other accounts and regions whose events reach the
// control plane (forwarded to its bus) and whose runs it records under their ARN
// (pipeline.Home). The reconciler finds the home's pipelines among the declared projects; it
// finds these here, so that it takes their decisions again like any other's (it cannot ask
// CodePipeline about them). on-pipeline-event remembers a pipeline each time one of its
// attempts ends:
//
//	foreign pipeline  pk FOREIGN  sk <pipeline ARN>   (expiresAt: the retention after its last end)
//
// A few items, written once per ended run of a forwarded pipeline: not a hot partition.
const foreignPK = "FOREIGN"

// RememberForeign records that the pipeline of identity pipelineID (another account's or
// region's) has runs, for ForeignPipelines. It is one unconditional write, idempotent: a
// repeat only moves the item's expiry.
func (d *Dynamo) RememberForeign(ctx context.Context, pipelineID string) error {
	_, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: map[string]types.AttributeValue{
		attrPK:      &types.AttributeValueMemberS{Value: foreignPK},
		attrSK:      &types.AttributeValueMemberS{Value: pipelineID},
		attrExpires: &types.AttributeValueMemberN{Value: strconv.FormatInt(d.expiresAt(), 10)},
	}})
	if err != nil {
		return fmt.Errorf("remember foreign pipeline %s: %w", pipelineID, err)
	}
	return nil
}

// ForeignPipelines returns the identities RememberForeign recorded (one Query), sorted.
func (d *Dynamo) ForeignPipelines(ctx context.Context) ([]string, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName:                 aws.String(d.table),
		KeyConditionExpression:    aws.String("pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: foreignPK}},
	})
	var out []string
	now := d.clock.Now()
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list foreign pipelines: %w", err)
		}
		for _, item := range page.Items {
			if !ttlExpired(item, now) {
				out = append(out, str(item, attrSK))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// RememberForeign records that the pipeline of identity pipelineID has runs.
func (m *Memory) RememberForeign(_ context.Context, pipelineID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.foreign == nil {
		m.foreign = map[string]bool{}
	}
	m.foreign[pipelineID] = true
	return nil
}

// ForeignPipelines returns the identities RememberForeign recorded, sorted.
func (m *Memory) ForeignPipelines(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.foreign))
	for id := range m.foreign {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}
