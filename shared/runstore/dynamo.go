package runstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// DynamoAPI is the part of the DynamoDB client the store uses.
type DynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// Table layout (docs/runs-table.md):
//
//	observation  pk RUN#<pipeline>#<execution>   sk EV|<element>|<state>|<attempt>
//	             (pipeline-level ones) gsi1pk PIPELINE#<pipeline>  gsi1sk <placed at>#<execution>
//	push         pk RUN#<pipeline>#<execution>   sk PUSH  (gsi1pk/gsi1sk placed at the push)
//	outcome      pk PIPELINE#<pipeline>          sk OUTCOME#<ended at>#<execution>#<attempt>
//	notification pk NOTIFY#<key>                 sk NOTIFY
//	foreign      pk FOREIGN                      sk <pipeline ARN>  (foreign.go)
//	checkpoint   pk RECONCILE#<pipeline>         sk CHECKPOINT  (the reconciler's, see changes.go)
//
// An item is placed in the index at the later of its event's time and when it was written
// (placedAt), so that the index answers both "runs that started since T" and "runs whose
// record changed since T", whatever the delivery delay.
//
// <pipeline> is the pipeline's identity (pipeline.Home): its name for the home's pipelines,
// its ARN for another account's or region's.
//
// Every item but the outcomes (dynamo_outcomes.go) and the project declarations carries
// expiresAt (epoch seconds) for the table's TTL.
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrGSI1PK  = "gsi1pk"
	attrGSI1SK  = "gsi1sk"
	attrExpires = "expiresAt"
	// IndexByPipeline lists a pipeline's runs newest first.
	IndexByPipeline = "byPipeline"

	obsPrefix  = "EV|"
	skPush     = "PUSH"
	timeLayout = "2006-01-02T15:04:05.000000000Z"
)

// Dynamo stores runs in one DynamoDB table.
type Dynamo struct {
	db        DynamoAPI
	table     string
	retention time.Duration
	clock     pipeline.Clock // stamps TTLs and queue times, and tells expired items apart
}

var (
	_ pipeline.RunStore     = (*Dynamo)(nil)
	_ pipeline.OutcomeStore = (*Dynamo)(nil)
	_ pipeline.Claims       = (*Dynamo)(nil)
)

// DefaultRetention is how long items live before TTL removes them.
const DefaultRetention = 90 * 24 * time.Hour

// NewDynamo returns a store over table.
func NewDynamo(db DynamoAPI, table string, clock pipeline.Clock) *Dynamo {
	return &Dynamo{db: db, table: table, retention: DefaultRetention, clock: clock}
}

// expiresAt is the TTL of an item written now.
func (d *Dynamo) expiresAt() int64 { return d.clock.Now().Add(d.retention).Unix() }

// placedAt is where an item about something that happened at t is placed in the index: at
// the later of t and now (see pipeline.Change).
func (d *Dynamo) placedAt(t time.Time) string {
	return laterOf(t, d.clock.Now()).UTC().Format(timeLayout)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// WithRetention sets how long items are kept (the TTL).
func (d *Dynamo) WithRetention(r time.Duration) *Dynamo {
	if r > 0 {
		d.retention = r
	}
	return d
}

func runPK(k pipeline.Key) string { return "RUN#" + k.Pipeline + "#" + k.ExecutionID }

// observation is one event as stored in its run item.
type observation struct {
	ID                string              `dynamodbav:"id"`
	Level             int                 `dynamodbav:"lvl"`
	Stage             string              `dynamodbav:"st,omitempty"`
	Action            string              `dynamodbav:"ac,omitempty"`
	State             string              `dynamodbav:"s"`
	Attempt           int                 `dynamodbav:"at"`
	Time              string              `dynamodbav:"t"`
	StartTime         string              `dynamodbav:"stt,omitempty"`
	Version           int64               `dynamodbav:"v,omitempty"`
	Trigger           pipeline.Trigger    `dynamodbav:"tr,omitempty"`
	ActionExecutionID string              `dynamodbav:"aei,omitempty"`
	Type              pipeline.ActionType `dynamodbav:"ty,omitempty"`
	Result            resultRecord        `dynamodbav:"r,omitempty"`
	Input             []pipeline.Artifact `dynamodbav:"in,omitempty"`
	Output            []pipeline.Artifact `dynamodbav:"out,omitempty"`
}

type resultRecord struct {
	ExternalID string `dynamodbav:"id,omitempty"`
	Summary    string `dynamodbav:"sum,omitempty"`
	URL        string `dynamodbav:"url,omitempty"`
	ErrorCode  string `dynamodbav:"err,omitempty"`
}

// CodePipeline bounds summaries at 2,048 characters; keep the item far from 400 KB even so.
const maxStoredText = 4096

func toObservation(ev pipeline.Event) observation {
	o := observation{ID: ev.ID, Level: int(ev.Level), Stage: ev.Stage, Action: ev.Action, State: string(ev.State),
		Attempt: max(ev.Attempt, 1), Time: ev.Time.UTC().Format(timeLayout), Version: ev.Version, Trigger: ev.Trigger,
		ActionExecutionID: ev.ActionExecutionID, Type: ev.ActionType,
		Result: resultRecord{ExternalID: clip(ev.Result.ExternalID), Summary: clip(ev.Result.Summary), URL: clip(ev.Result.URL), ErrorCode: ev.Result.ErrorCode},
		Input:  ev.InputArtifacts, Output: ev.OutputArtifacts}
	if !ev.StartTime.IsZero() {
		o.StartTime = ev.StartTime.UTC().Format(timeLayout)
	}
	return o
}

func (o observation) event(k pipeline.Key) pipeline.Event {
	t, _ := time.Parse(timeLayout, o.Time)
	st, _ := time.Parse(timeLayout, o.StartTime)
	return pipeline.Event{ID: o.ID, Time: t, StartTime: st, Level: pipeline.Level(o.Level), Pipeline: k.Pipeline, ExecutionID: k.ExecutionID,
		Stage: o.Stage, Action: o.Action, State: pipeline.State(o.State), Attempt: o.Attempt, Version: o.Version, Trigger: o.Trigger,
		ActionExecutionID: o.ActionExecutionID, ActionType: o.Type,
		Result:         pipeline.ExecutionResult{ExternalID: o.Result.ExternalID, Summary: o.Result.Summary, URL: o.Result.URL, ErrorCode: o.Result.ErrorCode},
		InputArtifacts: o.Input, OutputArtifacts: o.Output}
}

func clip(s string) string {
	if len(s) <= maxStoredText {
		return s
	}
	return s[:maxStoredText] + "…"
}

// Append stores ev as one small item of its own: one conditional PutItem, no read. A run is
// the fold of its observation items (see docs/runs-table.md: a run item that grew with every
// event cost a write unit per kilobyte of the whole item on every event, ~2-3 times the 40
// units a run may cost). The condition refuses a duplicate (the same observation id).
func (d *Dynamo) Append(ctx context.Context, ev pipeline.Event) (bool, error) {
	k := ev.Key()
	sk := obsPrefix + ev.ObservationID()
	item, err := attributevalue.MarshalMap(observationItem{
		PK: runPK(k), SK: sk, Pipeline: k.Pipeline, ExecutionID: k.ExecutionID, Obs: toObservation(ev),
		ExpiresAt: d.expiresAt(),
	})
	if err != nil {
		return false, fmt.Errorf("marshal observation: %w", err)
	}
	if ev.Level == pipeline.LevelPipeline {
		// Pipeline-level observations place the run in the byPipeline index.
		item[attrGSI1PK] = &types.AttributeValueMemberS{Value: "PIPELINE#" + k.Pipeline}
		item[attrGSI1SK] = &types.AttributeValueMemberS{Value: d.placedAt(ev.Time) + "#" + k.ExecutionID}
	}
	_, err = d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("record %s of run %s: %w", sk, k.ExecutionID, err)
	}
	return false, nil
}

// observationItem is one stored event.
type observationItem struct {
	PK          string      `dynamodbav:"pk"`
	SK          string      `dynamodbav:"sk"`
	Pipeline    string      `dynamodbav:"pipeline"`
	ExecutionID string      `dynamodbav:"executionId"`
	Obs         observation `dynamodbav:"o"`
	ExpiresAt   int64       `dynamodbav:"expiresAt"`
}

// runItems reads a run's partition (one consistent Query, paginated).
func (d *Dynamo) runItems(ctx context.Context, k pipeline.Key) ([]map[string]types.AttributeValue, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName: aws.String(d.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: runPK(k)}},
	})
	var items []map[string]types.AttributeValue
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read run %s: %w", k.ExecutionID, err)
		}
		items = append(items, out.Items...)
	}
	return items, nil
}

// historyOf decodes a run's stored items.
func historyOf(k pipeline.Key, items []map[string]types.AttributeValue) (pipeline.History, error) {
	h := pipeline.History{Key: k}
	for _, it := range items {
		switch sk := str(it, attrSK); {
		case strings.HasPrefix(sk, obsPrefix):
			var o observationItem
			if err := attributevalue.UnmarshalMap(it, &o); err != nil {
				return pipeline.History{}, fmt.Errorf("decode stored %s of run %s: %w", sk, k.ExecutionID, err)
			}
			h.Events = append(h.Events, o.Obs.event(k))
		case sk == skPush:
			h.Push = pushFromItem(it)
		}
	}
	return h, nil
}

// pushRecord is what on-push stores of the commit.
type pushRecord struct {
	CommitID string `dynamodbav:"commitId"`
	Message  string `dynamodbav:"commitMessage"`
	Author   string `dynamodbav:"commitAuthor"`
	PushedAt string `dynamodbav:"pushedAt"`
	URL      string `dynamodbav:"commitUrl"`
	// CommittedAt is absent from pushes recorded before it was kept.
	CommittedAt string `dynamodbav:"committedAt"`
}

func pushFromItem(item map[string]types.AttributeValue) pipeline.Commit {
	var p pushRecord
	if err := attributevalue.UnmarshalMap(item, &p); err != nil {
		return pipeline.Commit{}
	}
	t, _ := time.Parse(timeLayout, p.PushedAt)
	c, _ := time.Parse(timeLayout, p.CommittedAt)
	return pipeline.Commit{ID: p.CommitID, Message: p.Message, Author: p.Author, PushedAt: t, CommittedAt: c, URL: p.URL}
}

// RecordPush stores what on-push learnt of the commit of an execution (one PutItem; the
// push also places the run in the index, in case its pipeline events are lost).
func (d *Dynamo) RecordPush(ctx context.Context, k pipeline.Key, c pipeline.Commit) error {
	item := map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: runPK(k)}, attrSK: &types.AttributeValueMemberS{Value: skPush},
		"pipeline": &types.AttributeValueMemberS{Value: k.Pipeline}, "executionId": &types.AttributeValueMemberS{Value: k.ExecutionID},
		"commitId": &types.AttributeValueMemberS{Value: c.ID}, "commitMessage": &types.AttributeValueMemberS{Value: clip(c.Message)},
		"commitAuthor": &types.AttributeValueMemberS{Value: c.Author}, "pushedAt": &types.AttributeValueMemberS{Value: c.PushedAt.UTC().Format(timeLayout)},
		"commitUrl": &types.AttributeValueMemberS{Value: c.URL},
		attrGSI1PK:  &types.AttributeValueMemberS{Value: "PIPELINE#" + k.Pipeline},
		attrGSI1SK:  &types.AttributeValueMemberS{Value: d.placedAt(c.PushedAt) + "#" + k.ExecutionID},
		attrExpires: &types.AttributeValueMemberN{Value: strconv.FormatInt(d.expiresAt(), 10)},
	}
	if !c.CommittedAt.IsZero() {
		item["committedAt"] = &types.AttributeValueMemberS{Value: c.CommittedAt.UTC().Format(timeLayout)}
	}
	_, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item})
	if err != nil {
		return fmt.Errorf("record push of %s: %w", c.ID, err)
	}
	return nil
}

// Load reads one run's history (one Query of its partition, paginated).
func (d *Dynamo) Load(ctx context.Context, k pipeline.Key) (pipeline.History, error) {
	items, err := d.runItems(ctx, k)
	if err != nil {
		return pipeline.History{}, err
	}
	if len(items) == 0 {
		return pipeline.History{}, pipeline.ErrNotFound
	}
	return historyOf(k, items)
}

// runsOf reads the runs the index items name, in the order they first appear, skipping other
// items (pending claims) and expired ones; at most limit runs (0: all).
func (d *Dynamo) runsOf(ctx context.Context, index []map[string]types.AttributeValue, limit int) ([]pipeline.Run, error) {
	now := d.clock.Now()
	seen := map[pipeline.Key]bool{}
	var runs []pipeline.Run
	for _, it := range index {
		if !isRunItem(it) || ttlExpired(it, now) {
			continue
		}
		k := pipeline.Key{Pipeline: str(it, "pipeline"), ExecutionID: str(it, "executionId")}
		if seen[k] {
			continue
		}
		seen[k] = true
		run, err := pipeline.LoadRun(ctx, d, k)
		if errors.Is(err, pipeline.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
		if limit > 0 && len(runs) == limit {
			break
		}
	}
	return runs, nil
}

// List returns runs newest first: a Query of the index for a pipeline (or a Scan of the sparse
// index across pipelines), then one Query per run.
func (d *Dynamo) List(ctx context.Context, pipelineName string, limit int) ([]pipeline.Run, error) {
	var index []map[string]types.AttributeValue
	if pipelineName != "" {
		p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
			TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "PIPELINE#" + pipelineName}},
			ScanIndexForward:          aws.Bool(false),
		})
		// A run has up to three index items (STARTED, its end, the push): read enough.
		for p.HasMorePages() && len(index) < 4*limit {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("query runs of %s: %w", pipelineName, err)
			}
			index = append(index, out.Items...)
		}
	} else {
		p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("scan runs: %w", err)
			}
			index = append(index, out.Items...)
		}
		sort.SliceStable(index, func(i, j int) bool { return str(index[i], attrGSI1SK) > str(index[j], attrGSI1SK) })
	}
	runs, err := d.runsOf(ctx, index, 0)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(runs, func(a, b pipeline.Run) int { return pipeline.CompareRuns(b, a) })
	if len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}

// FindExecution finds a run by execution id alone, through the index (execution ids are
// unique across pipelines).
func (d *Dynamo) FindExecution(ctx context.Context, executionID string) (pipeline.Run, error) {
	p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{
		TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline),
		FilterExpression:          aws.String("executionId = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": &types.AttributeValueMemberS{Value: executionID}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return pipeline.Run{}, fmt.Errorf("find execution %s: %w", executionID, err)
		}
		runs, err := d.runsOf(ctx, out.Items, 1)
		if err != nil {
			return pipeline.Run{}, err
		}
		if len(runs) == 1 {
			return runs[0], nil
		}
	}
	return pipeline.Run{}, pipeline.ErrNotFound
}

// ttlExpired filters items TTL has not removed yet (it may take up to two days).
func ttlExpired(item map[string]types.AttributeValue, now time.Time) bool {
	n, ok := item[attrExpires].(*types.AttributeValueMemberN)
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(n.Value, 10, 64)
	return err == nil && exp < now.Unix()
}

// isRunItem tells run items from the other items the index holds (pending notification claims).
func isRunItem(item map[string]types.AttributeValue) bool {
	return strings.HasPrefix(str(item, attrPK), "RUN#")
}

func str(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
