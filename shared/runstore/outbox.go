package runstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Outbox is on-pipeline-event's dispatcher: it queues a decided notification as a PENDING claim
// item, once (a conditional PutItem), and leaves the sending to the notifier function, which
// the table's stream invokes for that item. The hot-path function so needs no Slack, SNS or
// enrichment clients (and stays under its size and time budgets), and a Slack outage never
// holds up the recording of events.
type Outbox struct{ Store *Dynamo }

var _ pipeline.Dispatcher = Outbox{}

// claimRecord is a notification claim item.
type claimRecord struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	State       string `dynamodbav:"state"`
	Type        string `dynamodbav:"type"`
	Pipeline    string `dynamodbav:"pipeline"`
	ExecutionID string `dynamodbav:"executionId"`
	Attempt     int    `dynamodbav:"attempt"`
	At          string `dynamodbav:"at"`
	BrokenSince string `dynamodbav:"brokenSince,omitempty"`
	FirstFailed string `dynamodbav:"firstFailedExecutionId,omitempty"`
	QueuedAt    string `dynamodbav:"queuedAt"`
	LeaseUntil  int64  `dynamodbav:"leaseUntil"`
	ExpiresAt   int64  `dynamodbav:"expiresAt"`
	// While PENDING, the claim sits in the byPipeline index under pendingPartition, so the
	// reconciler finds claims whose sending stalled with one Query.
	GSI1PK string `dynamodbav:"gsi1pk"`
	GSI1SK string `dynamodbav:"gsi1sk"`
	// An approval's request (its first Claim writes them: approvalClaimSet).
	Stack        string   `dynamodbav:"stack,omitempty"`
	Deploy       string   `dynamodbav:"deploy,omitempty"`
	Deadline     string   `dynamodbav:"deadline,omitempty"`
	Widening     []string `dynamodbav:"widening,omitempty"`
	WideningLeft int      `dynamodbav:"wideningLeft,omitempty"`
}

// pendingPartition is the index partition of PENDING notification claims.
const pendingPartition = "NOTIFY#PENDING"

// Dispatch queues n. It returns false when n was queued (or sent) before.
func (o Outbox) Dispatch(ctx context.Context, n pipeline.Notification, _ pipeline.Run) (bool, error) {
	d := o.Store
	now := d.clock.Now()
	rec := claimRecord{
		PK: "NOTIFY#" + n.Key(), SK: "NOTIFY", State: pipeline.ClaimPending, Type: string(n.Type),
		Pipeline: n.Pipeline, ExecutionID: n.ExecutionID, Attempt: n.Attempt, At: n.At.UTC().Format(timeLayout),
		FirstFailed: n.FirstFailedExecID, QueuedAt: now.UTC().Format(timeLayout), ExpiresAt: now.Add(d.retention).Unix(),
		GSI1PK: pendingPartition, GSI1SK: now.UTC().Format(timeLayout) + "#" + n.Key(),
	}
	if !n.BrokenSince.IsZero() {
		rec.BrokenSince = n.BrokenSince.UTC().Format(timeLayout)
	}
	rec.Stack, rec.Deploy, rec.Widening, rec.WideningLeft = n.Stack, n.Deploy, n.Widening, n.WideningLeft
	if !n.Deadline.IsZero() {
		rec.Deadline = n.Deadline.UTC().Format(timeLayout)
	}
	item, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return false, fmt.Errorf("marshal claim: %w", err)
	}
	_, err = d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue %s: %w", n.Key(), err)
	}
	return true, nil
}

// ErrNotNotification is returned for a key that is not a notification claim.
var ErrNotNotification = errors.New("not a notification claim")

// isClaimKey reports whether a table partition key names a notification claim.
func isClaimKey(pk string) bool { return strings.HasPrefix(pk, "NOTIFY#") }

// FromStream returns the notification a stream record of the table announces: a claim item
// written PENDING, or an approval request inserted (approvalFromStream), with its claim's
// state and channels when it has one. Other records (run items, removals, claims marked sent,
// decisions) announce none.
func (d *Dynamo) FromStream(ctx context.Context, rec events.DynamoDBEventRecord) (pipeline.Queued, bool, error) {
	pk := streamString(rec.Change.Keys, attrPK)
	if isApprovalKey(pk) {
		n, ok, err := approvalFromStream(rec)
		if !ok || err != nil {
			return pipeline.Queued{}, false, err
		}
		q, err := d.Queued(ctx, n)
		return approvalQueued(n, q, err)
	}
	if rec.EventName == "REMOVE" || !isClaimKey(pk) {
		return pipeline.Queued{}, false, nil
	}
	if state := streamString(rec.Change.NewImage, "state"); state != "" && state != pipeline.ClaimPending {
		return pipeline.Queued{}, false, nil
	}
	q, err := d.queued(ctx, pk)
	return q, err == nil, err
}

// streamString reads a string attribute of a stream image, "" when absent or of another type.
func streamString(m map[string]events.DynamoDBAttributeValue, name string) string {
	v, ok := m[name]
	if !ok || v.DataType() != events.DataTypeString {
		return ""
	}
	return v.String()
}

// Queued reads a notification's claim item (one consistent GetItem).
func (d *Dynamo) Queued(ctx context.Context, n pipeline.Notification) (pipeline.Queued, error) {
	return d.queued(ctx, "NOTIFY#"+n.Key())
}

func (d *Dynamo) queued(ctx context.Context, pk string) (pipeline.Queued, error) {
	if !isClaimKey(pk) {
		return pipeline.Queued{}, fmt.Errorf("%q: %w", pk, ErrNotNotification)
	}
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(d.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}, attrSK: &types.AttributeValueMemberS{Value: "NOTIFY"}},
	})
	if err != nil {
		return pipeline.Queued{}, fmt.Errorf("read claim %s: %w", pk, err)
	}
	if len(out.Item) == 0 {
		return pipeline.Queued{}, pipeline.ErrNotFound
	}
	return claimFromItem(pk, out.Item)
}

func claimFromItem(pk string, item map[string]types.AttributeValue) (pipeline.Queued, error) {
	var rec claimRecord
	if err := attributevalue.UnmarshalMap(item, &rec); err != nil {
		return pipeline.Queued{}, fmt.Errorf("decode claim %s: %w", pk, err)
	}
	q := pipeline.Queued{State: rec.State, Channels: map[string]bool{}, Notification: pipeline.Notification{
		Type: pipeline.NotificationType(rec.Type), Pipeline: rec.Pipeline, ExecutionID: rec.ExecutionID,
		Attempt: rec.Attempt, FirstFailedExecID: rec.FirstFailed,
	}}
	q.Notification.At, _ = time.Parse(timeLayout, rec.At)
	if rec.BrokenSince != "" {
		q.Notification.BrokenSince, _ = time.Parse(timeLayout, rec.BrokenSince)
	}
	q.Notification.Stack, q.Notification.Deploy = rec.Stack, rec.Deploy
	q.Notification.Widening, q.Notification.WideningLeft = rec.Widening, rec.WideningLeft
	if rec.Deadline != "" {
		q.Notification.Deadline, _ = time.Parse(timeLayout, rec.Deadline)
	}
	for name := range item {
		if ch, ok := strings.CutPrefix(name, channelPrefix); ok {
			q.Channels[ch] = true
		}
	}
	return q, nil
}

const channelPrefix = "sent_"

// ChannelSent records that one channel (slack, sns) delivered n, so that a retry after another
// channel failed does not send it there twice.
func (d *Dynamo) ChannelSent(ctx context.Context, n pipeline.Notification, channel string, now time.Time) error {
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       claimKey(n),
		UpdateExpression:          aws.String("SET #ch = :at"),
		ExpressionAttributeNames:  map[string]string{"#ch": channelPrefix + channel},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Unix(), 10)}},
	})
	if err != nil {
		return fmt.Errorf("mark %s sent to %s: %w", n.Key(), channel, err)
	}
	return nil
}

// Requeue hands claims that are still PENDING, queued before cutoff and not leased, back to the
// notifier: it resets their lease to 0 and stamps requeuedAt, a change the stream's filter
// passes (NewImage state PENDING with leaseUntil 0). It is the way back for a notification
// whose stream retries were spent (a long Slack outage, a crashed notifier). It returns how
// many it requeued.
func (d *Dynamo) Requeue(ctx context.Context, cutoff, now time.Time) (int, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk < :cut"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":   &types.AttributeValueMemberS{Value: pendingPartition},
			":cut": &types.AttributeValueMemberS{Value: cutoff.UTC().Format(timeLayout)},
		},
	})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("query pending notifications: %w", err)
		}
		for _, it := range out.Items {
			_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                aws.String(d.table),
				Key:                      map[string]types.AttributeValue{attrPK: it[attrPK], attrSK: it[attrSK]},
				UpdateExpression:         aws.String("SET leaseUntil = :zero, requeuedAt = :now"),
				ConditionExpression:      aws.String("#st = :pending AND leaseUntil < :nowms"),
				ExpressionAttributeNames: map[string]string{"#st": "state"},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":zero":    &types.AttributeValueMemberN{Value: "0"},
					":now":     &types.AttributeValueMemberS{Value: now.UTC().Format(timeLayout)},
					":pending": &types.AttributeValueMemberS{Value: pipeline.ClaimPending},
					":nowms":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
				},
			})
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				continue // sent or being sent meanwhile
			}
			if err != nil {
				return n, fmt.Errorf("requeue %s: %w", str(it, attrPK), err)
			}
			n++
		}
	}
	return n, nil
}

// GaveUp lists the notifications whose attempts were spent (state FAILED), oldest first: one
// Query of the index's FAILED partition.
func (d *Dynamo) GaveUp(ctx context.Context) ([]pipeline.Queued, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: failedPartition}},
	})
	var out []pipeline.Queued
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query given-up notifications: %w", err)
		}
		for _, it := range page.Items {
			q, err := claimFromItem(str(it, attrPK), it)
			if err != nil {
				return nil, err
			}
			out = append(out, q)
		}
	}
	return out, nil
}
