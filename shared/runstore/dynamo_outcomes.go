package runstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// outcomeRecord is a pipeline's decisive outcome, sorted under the pipeline by end time.
//
// Unlike every other item it carries no expiresAt: TTL never removes it. "Recovered" is
// decided from the pipeline's previous decisive outcome however long ago it was, and a red
// pipeline left idle longer than the retention would otherwise lose its failure to TTL and
// never say that it recovered (issue 9, defect 12). Kept are a few hundred bytes per
// decisive attempt (50 runs a day for ten years: about 55 MB, cents a month), at no extra
// request: the alternative, a per-pipeline latest-outcome item without TTL, costs one more
// conditional write per decisive attempt and a second way to find a streak's start. Reads
// never reach far back: AddOutcome walks back only to the last success, ten items a page.
// Outcomes written before this change keep the expiresAt they were written with.
type outcomeRecord struct {
	PK          string           `dynamodbav:"pk"`
	SK          string           `dynamodbav:"sk"`
	Pipeline    string           `dynamodbav:"pipeline"`
	ExecutionID string           `dynamodbav:"executionId"`
	Attempt     int              `dynamodbav:"attempt"`
	Status      string           `dynamodbav:"status"`
	At          string           `dynamodbav:"at"`
	Started     string           `dynamodbav:"started,omitempty"`
	Trigger     pipeline.Trigger `dynamodbav:"trigger"`
}

// maxStreak bounds how far back AddOutcome looks for the start of a failure streak.
const maxStreak = 100

func outcomeSK(o pipeline.Outcome) string {
	return fmt.Sprintf("OUTCOME#%s#%s#%04d", o.At.UTC().Format(timeLayout), o.ExecutionID, o.Attempt)
}

// outcomeSecond is the prefix of the sort keys of the outcomes that ended in t's second: the
// items are sorted by end time, and pipeline.CompareOutcomes orders those of one second by
// what they carry, so AddOutcome reads a second whole.
func outcomeSecond(t time.Time) string {
	return "OUTCOME#" + t.UTC().Format(timeLayout)[:len("2006-01-02T15:04:05")]
}

// afterSecond sorts after every sort key of the outcomes that ended in t's second.
func afterSecond(t time.Time) string { return outcomeSecond(t) + "\uffff" }

// AddOutcome stores o (a PutItem, without TTL; storing it again is harmless) and returns the
// pipeline's decisive outcomes around it: every one that ended in o's second, back through the failures
// before that up to the last success, and the next one after that second. Two Queries, each
// on one partition.
func (d *Dynamo) AddOutcome(ctx context.Context, o pipeline.Outcome, _ time.Time) ([]pipeline.Outcome, error) {
	pk := "PIPELINE#" + o.Pipeline
	rec := outcomeRecord{PK: pk, SK: outcomeSK(o), Pipeline: o.Pipeline, ExecutionID: o.ExecutionID, Attempt: o.Attempt,
		Status: string(o.Status), At: o.At.UTC().Format(timeLayout), Started: outcomeStart(o.Started), Trigger: o.Trigger}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return nil, fmt.Errorf("marshal outcome: %w", err)
	}
	if _, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		return nil, fmt.Errorf("put outcome of %s: %w", o.ExecutionID, err)
	}

	history := []pipeline.Outcome{o}
	// o's second, then before it, newest first, until a success of an earlier second ends
	// the streak.
	var start map[string]types.AttributeValue
	for len(history) <= maxStreak {
		out, err := d.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              aws.String(d.table),
			KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": &types.AttributeValueMemberS{Value: pk},
				":lo": &types.AttributeValueMemberS{Value: "OUTCOME#"},
				":hi": &types.AttributeValueMemberS{Value: afterSecond(o.At)},
			},
			ScanIndexForward: aws.Bool(false), ConsistentRead: aws.Bool(true), Limit: aws.Int32(10), ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("query outcomes of %s: %w", o.Pipeline, err)
		}
		done := false
		for _, it := range out.Items {
			x, err := decodeOutcome(it)
			if err != nil {
				return nil, err
			}
			if x.ExecutionID == o.ExecutionID && x.Attempt == o.Attempt {
				continue
			}
			history = append(history, x)
			if x.Status == pipeline.StatusSucceeded && outcomeSecond(x.At) < outcomeSecond(o.At) {
				done = true
				break
			}
		}
		if done || len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	// The next one after o's second.
	out, err := d.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(d.table),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :sk AND :last"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: pk},
			":sk":   &types.AttributeValueMemberS{Value: afterSecond(o.At)},
			":last": &types.AttributeValueMemberS{Value: "OUTCOME#\uffff"},
		},
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(1),
	})
	if err != nil {
		return nil, fmt.Errorf("query outcomes of %s: %w", o.Pipeline, err)
	}
	for _, it := range out.Items {
		x, err := decodeOutcome(it)
		if err != nil {
			return nil, err
		}
		history = append(history, x)
	}
	return history, nil
}

// Recover records that the success by recovers the failure streak, in the pipeline's
// partition: a guard item per failed attempt that a success holds (sk
// RECOVERED#<ended at>#<execution>#<attempt>: its holder and lease), and a pointer item per
// success (sk RECOVERER#<execution>: the failure it holds). One Query reads the guards of the
// streak's seconds, a GetItem the pointer; it writes only what changes: the newest failure's
// guard when by takes it, the pointer when by moves to a later failure, after letting the
// earlier one go (so that a retry after a crash lets it go again). The first decision of a
// recovery costs two reads and two writes; deciding it again, two reads.
//
// A holder whose lease ran out may have died before dispatching: its failure is taken over
// only when the holder's own "recovered" claim does not exist (one more read, on contention
// only).
func (d *Dynamo) Recover(ctx context.Context, streak []pipeline.Outcome, by string, now time.Time) (bool, error) {
	if len(streak) == 0 {
		return false, errors.New("recover: no failure")
	}
	p, newest := streak[0].Pipeline, streak[len(streak)-1]
	pk := &types.AttributeValueMemberS{Value: "PIPELINE#" + p}
	type guard struct {
		SK         string `dynamodbav:"sk"`
		By         string `dynamodbav:"by"`
		LeaseUntil int64  `dynamodbav:"leaseUntil"`
	}
	in := map[string]bool{}
	for _, f := range streak {
		in[recoveryGuard(f)] = true
	}
	var held guard // the newest failure's guard
	var start map[string]types.AttributeValue
	for {
		out, err := d.db.Query(ctx, &dynamodb.QueryInput{
			TableName:              aws.String(d.table),
			KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": pk,
				":lo": &types.AttributeValueMemberS{Value: "RECOVERED#" + streak[0].At.UTC().Format(timeLayout)[:len("2006-01-02T15:04:05")]},
				":hi": &types.AttributeValueMemberS{Value: "RECOVERED#" + newest.At.UTC().Format(timeLayout)[:len("2006-01-02T15:04:05")] + "\uffff"},
			},
			ConsistentRead: aws.Bool(true), ExclusiveStartKey: start,
		})
		if err != nil {
			return false, fmt.Errorf("read the recoveries of %s: %w", p, err)
		}
		for _, it := range out.Items {
			var g guard
			if err := attributevalue.UnmarshalMap(it, &g); err != nil {
				return false, fmt.Errorf("decode a recovery of %s: %w", p, err)
			}
			if !in[g.SK] || g.By == "" {
				continue
			}
			if g.SK == recoveryGuard(newest) {
				held = g
			}
			if g.By == by {
				continue
			}
			if now.UnixMilli() <= g.LeaseUntil {
				return false, nil
			}
			theirs := pipeline.Notification{Type: pipeline.NotifyRecovered, Pipeline: p, ExecutionID: g.By}
			if _, err := d.Queued(ctx, theirs); err == nil {
				return false, nil
			} else if !errors.Is(err, pipeline.ErrNotFound) {
				return false, err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	names := map[string]string{"#by": "by"}
	if held.By != by {
		cond, values := "attribute_not_exists(#by)", map[string]types.AttributeValue{}
		if held.By != "" {
			cond = "#by = :holder AND leaseUntil = :lease"
			values[":holder"] = &types.AttributeValueMemberS{Value: held.By}
			values[":lease"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(held.LeaseUntil, 10)}
		}
		values[":by"] = &types.AttributeValueMemberS{Value: by}
		values[":until"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(pipeline.RecoveryLease).UnixMilli(), 10)}
		values[":exp"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.expiresAt(), 10)}
		_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(d.table),
			Key:                       map[string]types.AttributeValue{attrPK: pk, attrSK: &types.AttributeValueMemberS{Value: recoveryGuard(newest)}},
			UpdateExpression:          aws.String("SET #by = :by, leaseUntil = :until, expiresAt = :exp"),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("record the recovery of %s: %w", newest.ExecutionID, err)
		}
	}

	pointer := map[string]types.AttributeValue{attrPK: pk, attrSK: &types.AttributeValueMemberS{Value: "RECOVERER#" + by}}
	var was struct {
		Guard string `dynamodbav:"guard"`
	}
	if err := d.getItem(ctx, pointer, &was); err != nil {
		return false, fmt.Errorf("read what %s recovers: %w", by, err)
	}
	if was.Guard == recoveryGuard(newest) {
		return true, nil
	}
	if was.Guard != "" {
		_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(d.table),
			Key:                       map[string]types.AttributeValue{attrPK: pk, attrSK: &types.AttributeValueMemberS{Value: was.Guard}},
			UpdateExpression:          aws.String("REMOVE #by, leaseUntil"),
			ConditionExpression:       aws.String("#by = :by"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: map[string]types.AttributeValue{":by": &types.AttributeValueMemberS{Value: by}},
		})
		var ccf *types.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			return false, fmt.Errorf("let go of %s: %w", was.Guard, err)
		}
	}
	pointer["guard"] = &types.AttributeValueMemberS{Value: recoveryGuard(newest)}
	pointer["expiresAt"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(d.expiresAt(), 10)}
	if _, err := d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: pointer}); err != nil {
		return false, fmt.Errorf("record what %s recovers: %w", by, err)
	}
	return true, nil
}

// getItem reads one item consistently into v (left as it is when there is no such item).
func (d *Dynamo) getItem(ctx context.Context, key map[string]types.AttributeValue, v any) error {
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return err
	}
	return attributevalue.UnmarshalMap(out.Item, v)
}

// recoveryGuard is the sort key of the guard of a failed outcome: under its end time, so that
// one Query reads a streak's.
func recoveryGuard(o pipeline.Outcome) string {
	return fmt.Sprintf("RECOVERED#%s#%s#%04d", o.At.UTC().Format(timeLayout), o.ExecutionID, o.Attempt)
}

// HasOutcomes reports whether the pipeline has a decisive outcome (one Query, one item).
func (d *Dynamo) HasOutcomes(ctx context.Context, p string) (bool, error) {
	out, err := d.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(d.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :o)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: "PIPELINE#" + p},
			":o":  &types.AttributeValueMemberS{Value: "OUTCOME#"},
		},
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(1),
	})
	if err != nil {
		return false, fmt.Errorf("query outcomes of %s: %w", p, err)
	}
	return len(out.Items) > 0, nil
}

func outcomeStart(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func decodeOutcome(item map[string]types.AttributeValue) (pipeline.Outcome, error) {
	var r outcomeRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return pipeline.Outcome{}, fmt.Errorf("decode outcome: %w", err)
	}
	at, err := time.Parse(timeLayout, r.At)
	if err != nil {
		return pipeline.Outcome{}, fmt.Errorf("decode outcome time %q: %w", r.At, err)
	}
	o := pipeline.Outcome{Pipeline: r.Pipeline, ExecutionID: r.ExecutionID, Attempt: r.Attempt, Status: pipeline.Status(r.Status), At: at, Trigger: r.Trigger}
	if r.Started != "" {
		if o.Started, err = time.Parse(timeLayout, r.Started); err != nil {
			return pipeline.Outcome{}, fmt.Errorf("decode outcome start %q: %w", r.Started, err)
		}
	}
	return o, nil
}

func claimKey(n pipeline.Notification) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: "NOTIFY#" + n.Key()},
		attrSK: &types.AttributeValueMemberS{Value: "NOTIFY"},
	}
}

// Claim takes n with one conditional UpdateItem: it succeeds when n was never claimed, or is
// PENDING with a lease that ran out (its sender crashed, or its backoff after a failed attempt
// is over). It returns the attempt this claim starts, 0 when not claimed. The claim of an
// approval, which no outbox queued, also keeps the message's facts and is queued by its first
// Claim (approvalClaimSet).
func (d *Dynamo) Claim(ctx context.Context, n pipeline.Notification, now time.Time, lease time.Duration) (int, error) {
	set := "SET #st = :pending, leaseUntil = :until, #ty = :type, executionId = :ex, pipeline = :pl, expiresAt = :exp"
	names := map[string]string{"#st": "state", "#ty": "type"}
	values := map[string]types.AttributeValue{
		":pending": &types.AttributeValueMemberS{Value: pipeline.ClaimPending},
		":until":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(lease).UnixMilli(), 10)},
		":now":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		":type":    &types.AttributeValueMemberS{Value: string(n.Type)},
		":ex":      &types.AttributeValueMemberS{Value: n.ExecutionID},
		":pl":      &types.AttributeValueMemberS{Value: n.Pipeline},
		":exp":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.retention).Unix(), 10)},
		":one":     &types.AttributeValueMemberN{Value: "1"},
	}
	if queuedByClaim(n) {
		set += ", " + approvalClaimSet(n, now, names, values)
	}
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       claimKey(n),
		UpdateExpression:          aws.String(set + " ADD attempts :one"),
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR (#st = :pending AND leaseUntil < :now)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", n.Key(), err)
	}
	attempt := 1
	if v, ok := out.Attributes["attempts"].(*types.AttributeValueMemberN); ok {
		if a, err := strconv.Atoi(v.Value); err == nil && a > 0 {
			attempt = a
		}
	}
	return attempt, nil
}

// Sent marks n delivered.
func (d *Dynamo) Sent(ctx context.Context, n pipeline.Notification, now time.Time) error {
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table),
		Key:       claimKey(n),
		// Out of the pending index, so Requeue never finds it again.
		UpdateExpression:          aws.String("SET #st = :sent, sentAt = :at REMOVE leaseUntil, gsi1pk, gsi1sk"),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":sent": &types.AttributeValueMemberS{Value: pipeline.ClaimSent}, ":at": &types.AttributeValueMemberS{Value: now.UTC().Format(timeLayout)}},
	})
	if err != nil {
		return fmt.Errorf("mark %s sent: %w", n.Key(), err)
	}
	return nil
}

// failedPartition is the index partition of given-up notification claims (`lp notifications`).
const failedPartition = "NOTIFY#FAILED"

// Release ends a failed attempt on a PENDING claim with one conditional UpdateItem: the
// channels that delivered are marked, and the lease is set to r.RetryAt, a change the
// notifier's stream filter drops (only lease 0 passes): the claim waits for the reconciler's
// Requeue, instead of invoking the notifier again at once and holding up its shard. A claim
// whose attempts are spent becomes FAILED and moves to the FAILED index partition.
func (d *Dynamo) Release(ctx context.Context, n pipeline.Notification, r pipeline.Retry) error {
	names := map[string]string{"#st": "state"}
	values := map[string]types.AttributeValue{
		":pending": &types.AttributeValueMemberS{Value: pipeline.ClaimPending},
		":reason":  &types.AttributeValueMemberS{Value: clip(r.Reason)},
	}
	set := "lastError = :reason"
	for i, ch := range r.Delivered {
		k := fmt.Sprintf("#ch%d", i)
		names[k] = channelPrefix + ch
		values[":at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(r.RetryAt.Unix(), 10)}
		set += ", " + k + " = :at"
	}
	var expr string
	if r.GiveUp {
		names["#gp"], names["#gs"] = attrGSI1PK, attrGSI1SK
		values[":failed"] = &types.AttributeValueMemberS{Value: pipeline.ClaimFailed}
		values[":fp"] = &types.AttributeValueMemberS{Value: failedPartition}
		values[":fs"] = &types.AttributeValueMemberS{Value: r.RetryAt.UTC().Format(timeLayout) + "#" + n.Key()}
		expr = "SET " + set + ", #st = :failed, #gp = :fp, #gs = :fs REMOVE leaseUntil"
	} else {
		values[":until"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(r.RetryAt.UnixMilli(), 10)}
		expr = "SET " + set + ", leaseUntil = :until"
	}
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       claimKey(n),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String("#st = :pending"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release %s: %w", n.Key(), err)
	}
	return nil
}

// TableInput is the runs table's definition, as template.yaml declares it (TTL aside, which
// CloudFormation sets and dynalite lacks).
func TableInput(table string) *dynamodb.CreateTableInput {
	s := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{s(attrPK), s(attrSK), s(attrGSI1PK), s(attrGSI1SK)},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(IndexByPipeline),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrGSI1PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrGSI1SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}

// EnsureTable creates the table when it does not exist (local stand-ins; in AWS the template
// owns it) and waits until it is active.
func (d *Dynamo) EnsureTable(ctx context.Context) error {
	if _, err := d.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.table)}); err == nil {
		return nil
	}
	_, err := d.db.CreateTable(ctx, TableInput(d.table))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", d.table, err)
	}
	for i := 0; i < 100; i++ {
		out, err := d.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.table)})
		if err == nil && out.Table.TableStatus == types.TableStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("table %s did not become active", d.table)
}
