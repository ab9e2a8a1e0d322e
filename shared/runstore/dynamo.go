package runstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
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
//	run          pk RUN#<pipeline>#<execution>   sk RUN
//	             gsi1pk PIPELINE#<pipeline>      gsi1sk <started at, RFC 3339>#<execution>
//	             one attribute per observed state: "ev|<element>|<state>|<attempt>"
//	outcome      pk PIPELINE#<pipeline>          sk OUTCOME#<ended at>#<execution>#<attempt>
//	notification pk NOTIFY#<key>                 sk NOTIFY
//
// Every item carries expiresAt (epoch seconds) for the table's TTL.
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrGSI1PK  = "gsi1pk"
	attrGSI1SK  = "gsi1sk"
	attrExpires = "expiresAt"
	// IndexByPipeline lists a pipeline's runs newest first.
	IndexByPipeline = "byPipeline"

	obsPrefix  = "ev|"
	timeLayout = "2006-01-02T15:04:05.000000000Z"
)

// Dynamo stores runs in one DynamoDB table.
type Dynamo struct {
	db        DynamoAPI
	table     string
	retention time.Duration

	recorded, duplicates, stale atomic.Int64
	writes, reads               atomic.Int64
}

var (
	_ pipeline.RunStore     = (*Dynamo)(nil)
	_ pipeline.OutcomeStore = (*Dynamo)(nil)
	_ pipeline.Claims       = (*Dynamo)(nil)
)

// DefaultRetention is how long items live before TTL removes them.
const DefaultRetention = 90 * 24 * time.Hour

// NewDynamo returns a store over table.
func NewDynamo(db DynamoAPI, table string) *Dynamo {
	return &Dynamo{db: db, table: table, retention: DefaultRetention}
}

// WithRetention sets how long items are kept (the TTL).
func (d *Dynamo) WithRetention(r time.Duration) *Dynamo {
	if r > 0 {
		d.retention = r
	}
	return d
}

// Stats returns the counters since the store was made.
func (d *Dynamo) Stats() Stats {
	return Stats{Recorded: d.recorded.Load(), Duplicates: d.duplicates.Load(), Stale: d.stale.Load()}
}

// Requests returns how many write and read requests the store sent.
func (d *Dynamo) Requests() (writes, reads int64) { return d.writes.Load(), d.reads.Load() }

func runKey(k pipeline.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: "RUN#" + k.Pipeline + "#" + k.ExecutionID},
		attrSK: &types.AttributeValueMemberS{Value: "RUN"},
	}
}

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

// element names the run element an event is about, for attribute names.
func element(ev pipeline.Event) string {
	switch ev.Level {
	case pipeline.LevelStage:
		return "S|" + ev.Stage
	case pipeline.LevelAction:
		return "A|" + ev.Stage + "|" + ev.Action
	}
	return "P"
}

// Record stores ev in its run item with one conditional UpdateItem and no read: the item keeps
// every distinct observation (element, state, attempt), and the run is their fold, computed
// from the item the write returns (ReturnValues ALL_NEW). The condition refuses a duplicate
// (the observation exists); the refusal returns the item as it was (ALL_OLD on condition
// failure, no read cost), so a duplicate costs one refused write.
//
// An event that the stored observations outrank (a STARTED after its SUCCEEDED) is stored
// all the same and reported as stale: it still carries the element's start time, which a
// refused write would lose, and it keeps the stored fold equal to the in-memory one.
func (d *Dynamo) Record(ctx context.Context, ev pipeline.Event, now time.Time) (pipeline.Run, []pipeline.Effect, error) {
	k := pipeline.Key{Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID}
	obsName := obsPrefix + element(ev) + "|" + string(ev.State) + "|" + strconv.Itoa(max(ev.Attempt, 1))
	obs, err := attributevalue.Marshal(toObservation(ev))
	if err != nil {
		return pipeline.Run{}, nil, fmt.Errorf("marshal observation: %w", err)
	}
	names := map[string]string{"#obs": obsName, "#pl": "pipeline", "#ex": "executionId", "#g1": attrGSI1PK, "#g2": attrGSI1SK, "#exp": attrExpires}
	values := map[string]types.AttributeValue{
		":obs": obs,
		":pl":  &types.AttributeValueMemberS{Value: k.Pipeline},
		":ex":  &types.AttributeValueMemberS{Value: k.ExecutionID},
		":g1":  &types.AttributeValueMemberS{Value: "PIPELINE#" + k.Pipeline},
		":g2":  &types.AttributeValueMemberS{Value: ev.Time.UTC().Format(timeLayout) + "#" + k.ExecutionID},
		":exp": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.retention).Unix(), 10)},
	}
	set := []string{"#obs = :obs", "#pl = :pl", "#ex = :ex", "#g1 = :g1", "#exp = :exp"}
	// The index sorts a pipeline's runs by start: the pipeline's STARTED event sets it, any
	// other event only until then.
	if ev.Level == pipeline.LevelPipeline && ev.State == pipeline.StateStarted {
		set = append(set, "#g2 = :g2")
	} else {
		set = append(set, "#g2 = if_not_exists(#g2, :g2)")
	}
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(d.table),
		Key:                                 runKey(k),
		UpdateExpression:                    aws.String("SET " + strings.Join(set, ", ")),
		ConditionExpression:                 aws.String("attribute_not_exists(#obs)"),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	d.writes.Add(1)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		d.duplicates.Add(1)
		item := ccf.Item
		if len(item) == 0 {
			// DynamoDB returns the item with the refusal; stand-ins that predate
			// ReturnValuesOnConditionCheckFailure (dynalite) do not, so read it.
			if item, err = d.getItem(ctx, k); err != nil {
				return pipeline.Run{}, nil, err
			}
		}
		run, err := foldItem(k, item, now)
		if err != nil {
			return pipeline.Run{}, nil, err
		}
		return run, []pipeline.Effect{pipeline.Ignored{Reason: pipeline.ReasonDuplicate}}, nil
	}
	if err != nil {
		return pipeline.Run{}, nil, fmt.Errorf("update run %s: %w", k.ExecutionID, err)
	}
	// Fold everything but this event, then this event, so that its effects are known.
	before := make(map[string]types.AttributeValue, len(out.Attributes))
	for name, v := range out.Attributes {
		if name != obsName {
			before[name] = v
		}
	}
	prev, err := foldItem(k, before, now)
	if err != nil {
		return pipeline.Run{}, nil, err
	}
	run, effects := pipeline.Apply(prev, ev, now)
	if len(effects) == 1 {
		if _, ignored := effects[0].(pipeline.Ignored); ignored {
			d.stale.Add(1)
			return run, effects, nil
		}
	}
	d.recorded.Add(1)
	return run, effects, nil
}

func (d *Dynamo) getItem(ctx context.Context, k pipeline.Key) (map[string]types.AttributeValue, error) {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: runKey(k), ConsistentRead: aws.Bool(true)})
	d.reads.Add(1)
	if err != nil {
		return nil, fmt.Errorf("get run %s: %w", k.ExecutionID, err)
	}
	return out.Item, nil
}

// foldItem rebuilds the run from a stored item. The fold is order-independent; sorting the
// observations only makes the work repeatable.
func foldItem(k pipeline.Key, item map[string]types.AttributeValue, now time.Time) (pipeline.Run, error) {
	if len(item) == 0 {
		return pipeline.Run{}, nil
	}
	names := make([]string, 0, len(item))
	for name := range item {
		if strings.HasPrefix(name, obsPrefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var run pipeline.Run
	for _, name := range names {
		var o observation
		if err := attributevalue.Unmarshal(item[name], &o); err != nil {
			return pipeline.Run{}, fmt.Errorf("decode stored %s of run %s: %w", name, k.ExecutionID, err)
		}
		run, _ = pipeline.Apply(run, o.event(k), now)
	}
	if run.Pipeline == "" {
		run.Pipeline, run.ExecutionID = k.Pipeline, k.ExecutionID
	}
	return pipeline.WithPush(run, pushFromItem(item)), nil
}

// pushRecord is what on-push stores of the commit.
type pushRecord struct {
	CommitID string `dynamodbav:"commitId"`
	Message  string `dynamodbav:"commitMessage"`
	Author   string `dynamodbav:"commitAuthor"`
	PushedAt string `dynamodbav:"pushedAt"`
	URL      string `dynamodbav:"commitUrl"`
}

func pushFromItem(item map[string]types.AttributeValue) pipeline.Commit {
	var p pushRecord
	if err := attributevalue.UnmarshalMap(item, &p); err != nil {
		return pipeline.Commit{}
	}
	t, _ := time.Parse(timeLayout, p.PushedAt)
	return pipeline.Commit{ID: p.CommitID, Message: p.Message, Author: p.Author, PushedAt: t, URL: p.URL}
}

// RecordPush stores what on-push learnt of the commit of an execution (one UpdateItem).
func (d *Dynamo) RecordPush(ctx context.Context, k pipeline.Key, c pipeline.Commit, now time.Time) error {
	vals := map[string]types.AttributeValue{
		":c": &types.AttributeValueMemberS{Value: c.ID}, ":m": &types.AttributeValueMemberS{Value: clip(c.Message)},
		":a": &types.AttributeValueMemberS{Value: c.Author}, ":t": &types.AttributeValueMemberS{Value: c.PushedAt.UTC().Format(timeLayout)},
		":u":   &types.AttributeValueMemberS{Value: c.URL},
		":pl":  &types.AttributeValueMemberS{Value: k.Pipeline},
		":ex":  &types.AttributeValueMemberS{Value: k.ExecutionID},
		":g1":  &types.AttributeValueMemberS{Value: "PIPELINE#" + k.Pipeline},
		":g2":  &types.AttributeValueMemberS{Value: c.PushedAt.UTC().Format(timeLayout) + "#" + k.ExecutionID},
		":exp": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.retention).Unix(), 10)},
	}
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table),
		Key:       runKey(k),
		UpdateExpression: aws.String("SET commitId = :c, commitMessage = :m, commitAuthor = :a, pushedAt = :t, commitUrl = :u, " +
			"#pl = :pl, executionId = :ex, gsi1pk = :g1, gsi1sk = if_not_exists(gsi1sk, :g2), expiresAt = :exp"),
		ExpressionAttributeNames:  map[string]string{"#pl": "pipeline"},
		ExpressionAttributeValues: vals,
	})
	d.writes.Add(1)
	if err != nil {
		return fmt.Errorf("record push of %s: %w", c.ID, err)
	}
	return nil
}

// Get reads one run (one GetItem).
func (d *Dynamo) Get(ctx context.Context, k pipeline.Key) (pipeline.Run, error) {
	item, err := d.getItem(ctx, k)
	if err != nil {
		return pipeline.Run{}, err
	}
	if len(item) == 0 {
		return pipeline.Run{}, pipeline.ErrNotFound
	}
	return foldItem(k, item, time.Now())
}

// List returns runs newest first: one Query of the index for a pipeline, or a Scan of the
// (sparse) index across pipelines.
func (d *Dynamo) List(ctx context.Context, pipelineName string, limit int) ([]pipeline.Run, error) {
	var items []map[string]types.AttributeValue
	if pipelineName != "" {
		out, err := d.db.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "PIPELINE#" + pipelineName}},
			ScanIndexForward:          aws.Bool(false),
			Limit:                     aws.Int32(int32(limit)),
		})
		d.reads.Add(1)
		if err != nil {
			return nil, fmt.Errorf("query runs of %s: %w", pipelineName, err)
		}
		items = out.Items
	} else {
		p := dynamodb.NewScanPaginator(d.db, &dynamodb.ScanInput{TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			d.reads.Add(1)
			if err != nil {
				return nil, fmt.Errorf("scan runs: %w", err)
			}
			for _, it := range out.Items {
				if isRunItem(it) {
					items = append(items, it)
				}
			}
		}
		sort.Slice(items, func(i, j int) bool { return str(items[i], attrGSI1SK) > str(items[j], attrGSI1SK) })
		if len(items) > limit {
			items = items[:limit]
		}
	}
	now := time.Now()
	runs := make([]pipeline.Run, 0, len(items))
	for _, it := range items {
		if !isRunItem(it) {
			continue
		}
		k := pipeline.Key{Pipeline: str(it, "pipeline"), ExecutionID: str(it, "executionId")}
		run, err := foldItem(k, it, now)
		if err != nil {
			return nil, err
		}
		if ttlExpired(it, now) {
			continue
		}
		runs = append(runs, run)
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
		d.reads.Add(1)
		if err != nil {
			return pipeline.Run{}, fmt.Errorf("find execution %s: %w", executionID, err)
		}
		for _, it := range out.Items {
			if !isRunItem(it) {
				continue
			}
			return foldItem(pipeline.Key{Pipeline: str(it, "pipeline"), ExecutionID: executionID}, it, time.Now())
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
