package runstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// What the reconciler reads and keeps so that a pass costs what changed, not the history
// (issue 9, defect 12): the runs whose record changed since a time (one Query of the
// byPipeline index, no run read), and its checkpoint, one item per pipeline.

const skCheckpoint = "CHECKPOINT"

func checkpointKey(pipelineName string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: "RECONCILE#" + pipelineName},
		attrSK: &types.AttributeValueMemberS{Value: skCheckpoint},
	}
}

// Changed returns the pipeline's runs that have an index item placed at or after since (a
// pipeline-level observation or a push, placed at the later of its time and when it was
// written), each with its latest placement, latest first. It reads the index only: one Query
// (paginated, keys and placements projected), no run.
func (d *Dynamo) Changed(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Change, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName:              aws.String(d.table),
		IndexName:              aws.String(IndexByPipeline),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk >= :since"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":     &types.AttributeValueMemberS{Value: "PIPELINE#" + pipelineName},
			":since": &types.AttributeValueMemberS{Value: since.UTC().Format(timeLayout)},
		},
		// Reserved words (DynamoDB's list is long) are avoided by naming every attribute.
		ProjectionExpression: aws.String("#pk, #sk, #pl, #ex, #exp"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK, "#sk": attrGSI1SK, "#pl": "pipeline", "#ex": "executionId", "#exp": attrExpires,
		},
		ScanIndexForward: aws.Bool(false),
	})
	now := d.clock.Now()
	seen := map[pipeline.Key]bool{}
	var out []pipeline.Change
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query changes of %s since %s: %w", pipelineName, since.UTC().Format(time.RFC3339), err)
		}
		for _, it := range page.Items {
			if !isRunItem(it) || ttlExpired(it, now) {
				continue
			}
			k := pipeline.Key{Pipeline: str(it, "pipeline"), ExecutionID: str(it, "executionId")}
			if seen[k] {
				continue // newest first: the first item is the run's latest placement
			}
			seen[k] = true
			at, _, _ := strings.Cut(str(it, attrGSI1SK), "#")
			t, err := time.Parse(timeLayout, at)
			if err != nil {
				return nil, fmt.Errorf("decode placement %q of run %s: %w", at, k.ExecutionID, err)
			}
			out = append(out, pipeline.Change{Key: k, At: t})
		}
	}
	return out, nil
}

// checkpointRecord is the reconciler's checkpoint as stored.
type checkpointRecord struct {
	PK        string        `dynamodbav:"pk"`
	SK        string        `dynamodbav:"sk"`
	Pipeline  string        `dynamodbav:"pipeline"`
	At        string        `dynamodbav:"at"`
	Open      []watchRecord `dynamodbav:"open,omitempty"`
	Failed    []watchRecord `dynamodbav:"failed,omitempty"`
	ExpiresAt int64         `dynamodbav:"expiresAt"`
}

type watchRecord struct {
	ExecutionID string `dynamodbav:"e"`
	Began       string `dynamodbav:"b,omitempty"`
	Ended       string `dynamodbav:"x,omitempty"`
	Attempt     int    `dynamodbav:"a,omitempty"`
	Stage       string `dynamodbav:"s,omitempty"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeLayout, s)
	return t
}

func toWatchRecords(ws []pipeline.Watch) []watchRecord {
	out := make([]watchRecord, 0, len(ws))
	for _, w := range ws {
		out = append(out, watchRecord{ExecutionID: w.ExecutionID, Began: formatTime(w.Began), Ended: formatTime(w.Ended), Attempt: w.Attempt, Stage: w.Stage})
	}
	return out
}

func fromWatchRecords(rs []watchRecord) []pipeline.Watch {
	var out []pipeline.Watch
	for _, r := range rs {
		out = append(out, pipeline.Watch{ExecutionID: r.ExecutionID, Began: parseTime(r.Began), Ended: parseTime(r.Ended), Attempt: r.Attempt, Stage: r.Stage})
	}
	return out
}

// Checkpoint returns the reconciler's checkpoint of the pipeline (one consistent GetItem), or
// an error wrapping pipeline.ErrNotFound when there is none (the first pass, or one whose
// checkpoint expired).
func (d *Dynamo) Checkpoint(ctx context.Context, pipelineName string) (pipeline.Checkpoint, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: checkpointKey(pipelineName), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return pipeline.Checkpoint{}, fmt.Errorf("read checkpoint of %s: %w", pipelineName, err)
	}
	if out.Item == nil || ttlExpired(out.Item, d.clock.Now()) {
		return pipeline.Checkpoint{}, fmt.Errorf("checkpoint of %s: %w", pipelineName, pipeline.ErrNotFound)
	}
	var rec checkpointRecord
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return pipeline.Checkpoint{}, fmt.Errorf("decode checkpoint of %s: %w", pipelineName, err)
	}
	return pipeline.Checkpoint{At: parseTime(rec.At), Open: fromWatchRecords(rec.Open), Failed: fromWatchRecords(rec.Failed)}, nil
}

// SaveCheckpoint stores cp as the pipeline's checkpoint with one PutItem, on condition that
// the stored one (if any) is older: of two passes that overlap, the later one's stays. A
// checkpoint refused for that reason is not an error.
func (d *Dynamo) SaveCheckpoint(ctx context.Context, pipelineName string, cp pipeline.Checkpoint) error {
	key := checkpointKey(pipelineName)
	rec := checkpointRecord{PK: str(key, attrPK), SK: skCheckpoint, Pipeline: pipelineName, At: formatTime(cp.At),
		Open: toWatchRecords(cp.Open), Failed: toWatchRecords(cp.Failed), ExpiresAt: d.expiresAt()}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return fmt.Errorf("marshal checkpoint of %s: %w", pipelineName, err)
	}
	_, err = d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table), Item: item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #at < :at"),
		ExpressionAttributeNames:  map[string]string{"#at": "at"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberS{Value: rec.At}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", pipelineName, err)
	}
	return nil
}

// Changed returns the pipeline's runs whose latest placement is at or after since, latest
// first (see Dynamo.Changed).
func (m *Memory) Changed(_ context.Context, pipelineName string, since time.Time) ([]pipeline.Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []pipeline.Change
	for k, r := range m.runs {
		if k.Pipeline == pipelineName && !r.placed.IsZero() && !r.placed.Before(since) {
			out = append(out, pipeline.Change{Key: k, At: r.placed})
		}
	}
	slices.SortFunc(out, func(a, b pipeline.Change) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(b.Key.ExecutionID, a.Key.ExecutionID)
	})
	return out, nil
}

// Checkpoint returns the pipeline's reconciler checkpoint, or pipeline.ErrNotFound.
func (m *Memory) Checkpoint(_ context.Context, pipelineName string) (pipeline.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, ok := m.checks[pipelineName]
	if !ok {
		return pipeline.Checkpoint{}, fmt.Errorf("checkpoint of %s: %w", pipelineName, pipeline.ErrNotFound)
	}
	cp.Open, cp.Failed = slices.Clone(cp.Open), slices.Clone(cp.Failed)
	return cp, nil
}

// SaveCheckpoint keeps cp unless the pipeline's stored checkpoint is as recent or more.
func (m *Memory) SaveCheckpoint(_ context.Context, pipelineName string, cp pipeline.Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if have, ok := m.checks[pipelineName]; ok && !have.At.Before(cp.At) {
		return nil
	}
	if m.checks == nil {
		m.checks = map[string]pipeline.Checkpoint{}
	}
	cp.Open, cp.Failed = slices.Clone(cp.Open), slices.Clone(cp.Failed)
	m.checks[pipelineName] = cp
	return nil
}
