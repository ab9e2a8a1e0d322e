package runstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Push claims make on-push start one pipeline run per commit, however often and however
// concurrently EventBridge delivers its push events.
//
// One item per pushed commit (an event id names exactly one commit, so the commit key covers
// idempotency per event id as well, and also makes a second event for the same commit, such as
// the branch deleted and created again, start nothing):
//
//	push claim   pk PUSH#<repository>#<commit>   sk PUSH
//	push skipped pk PUSH#<repository>#<commit>   sk SKIP#<event id>   (pushes that started nothing)
//
// A claim moves PENDING (with a lease) → STARTED (with the execution id), or PENDING →
// SKIPPED ([skip ci]). A PENDING claim whose lease ran out (its holder crashed between
// claiming and starting) is taken again by the next delivery; the clientRequestToken is fixed
// by the first claim, so that a holder that did start before crashing and its successor start
// the same execution. Items carry expiresAt for the table's TTL.

// pushSkipRecord is a stored skipped push.
type pushSkipRecord struct {
	EventID    string    `dynamodbav:"eventId"`
	Repository string    `dynamodbav:"repositoryName"`
	Kind       string    `dynamodbav:"kind"`
	RefType    string    `dynamodbav:"refType"`
	RefName    string    `dynamodbav:"refName"`
	CommitID   string    `dynamodbav:"commitId"`
	Reason     string    `dynamodbav:"skipReason"`
	At         time.Time `dynamodbav:"at"`
}

func pushPK(repository, commitID string) string {
	if commitID == "" {
		commitID = "-" // a deleted reference or a comment event: no commit
	}
	return "PUSH#" + repository + "#" + commitID
}

func pushClaimKey(repository, commitID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pushPK(repository, commitID)},
		attrSK: &types.AttributeValueMemberS{Value: "PUSH"},
	}
}

// pushClaimRecord is the stored claim.
type pushClaimRecord struct {
	State       string `dynamodbav:"state"`
	LeaseUntil  int64  `dynamodbav:"leaseUntil"` // epoch milliseconds
	EventID     string `dynamodbav:"eventId"`
	Token       string `dynamodbav:"requestToken"`
	ExecutionID string `dynamodbav:"executionId"`
	Reason      string `dynamodbav:"skipReason"`
	Attempts    int    `dynamodbav:"attempts"`
	StartedAt   string `dynamodbav:"startedAt"`
	SkippedAt   string `dynamodbav:"skippedAt"`
}

func decodePushClaim(item map[string]types.AttributeValue) (pipeline.PushClaim, error) {
	if len(item) == 0 {
		return pipeline.PushClaim{}, nil
	}
	var r pushClaimRecord
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return pipeline.PushClaim{}, fmt.Errorf("decode push claim: %w", err)
	}
	c := pipeline.PushClaim{State: r.State, EventID: r.EventID, Token: r.Token, ExecutionID: r.ExecutionID, Reason: r.Reason, Attempts: r.Attempts}
	c.SettledAt, _ = time.Parse(timeLayout, cmp.Or(r.StartedAt, r.SkippedAt))
	if r.LeaseUntil > 0 {
		c.LeaseUntil = time.UnixMilli(r.LeaseUntil).UTC()
	}
	return c, nil
}

// ClaimPush takes the start of p's commit for lease, with one conditional UpdateItem: it
// succeeds when the commit was never claimed, or is PENDING with a lease that ran out. token
// is the clientRequestToken this caller would use; the returned claim carries the one to use
// (the first claimant's). When the claim is not taken, the returned claim says why: STARTED
// (with the execution id), SKIPPED (with the reason), or PENDING under another caller's lease.
func (d *Dynamo) ClaimPush(ctx context.Context, p pipeline.Push, token string, now time.Time, lease time.Duration) (pipeline.PushClaim, error) {
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table),
		Key:       pushClaimKey(p.Repository, p.CommitID),
		UpdateExpression: aws.String("SET #st = :pending, leaseUntil = :until, eventId = if_not_exists(eventId, :ev), " +
			"requestToken = if_not_exists(requestToken, :tok), repositoryName = :repo, commitId = :c, refName = :ref, " +
			"claimedAt = :at, expiresAt = :exp ADD attempts :one"),
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR (#st = :pending AND leaseUntil < :now)"),
		ExpressionAttributeNames: map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending": &types.AttributeValueMemberS{Value: pipeline.PushPending},
			":until":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(lease).UnixMilli(), 10)},
			":now":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":ev":      &types.AttributeValueMemberS{Value: p.ID},
			":tok":     &types.AttributeValueMemberS{Value: token},
			":repo":    &types.AttributeValueMemberS{Value: p.Repository},
			":c":       &types.AttributeValueMemberS{Value: p.CommitID},
			":ref":     &types.AttributeValueMemberS{Value: p.RefName},
			":at":      &types.AttributeValueMemberS{Value: now.UTC().Format(timeLayout)},
			":exp":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.retention).Unix(), 10)},
			":one":     &types.AttributeValueMemberN{Value: "1"},
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		held := ccf.Item
		if len(held) == 0 {
			// dynalite ignores ReturnValuesOnConditionCheckFailure; DynamoDB returns the
			// item and never gets here.
			got, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: pushClaimKey(p.Repository, p.CommitID), ConsistentRead: aws.Bool(true)})
			if err != nil {
				return pipeline.PushClaim{}, fmt.Errorf("read push claim of %s: %w", p.CommitID, err)
			}
			held = got.Item
		}
		c, err := decodePushClaim(held)
		if err != nil || !c.Rerunnable(p, now) {
			return c, err
		}
		return d.rerunPush(ctx, p, c, token, now, lease)
	}
	if err != nil {
		return pipeline.PushClaim{}, fmt.Errorf("claim push of %s: %w", p.CommitID, err)
	}
	c, err := decodePushClaim(out.Attributes)
	c.Held = err == nil
	return c, err
}

// rerunPush takes a settled claim for a new push of its commit (see RerunAfter): the
// condition names the settled claim, so of two such pushes at once one takes it.
func (d *Dynamo) rerunPush(ctx context.Context, p pipeline.Push, old pipeline.PushClaim, token string, now time.Time, lease time.Duration) (pipeline.PushClaim, error) {
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table),
		Key:       pushClaimKey(p.Repository, p.CommitID),
		UpdateExpression: aws.String("SET #st = :pending, leaseUntil = :until, eventId = :ev, requestToken = :tok, refName = :ref, " +
			"claimedAt = :at, expiresAt = :exp REMOVE executionId, skipReason, startedAt, skippedAt ADD attempts :one"),
		ConditionExpression:      aws.String("eventId = :oldev AND #st = :oldst"),
		ExpressionAttributeNames: map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending": &types.AttributeValueMemberS{Value: pipeline.PushPending},
			":until":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(lease).UnixMilli(), 10)},
			":ev":      &types.AttributeValueMemberS{Value: p.ID},
			":tok":     &types.AttributeValueMemberS{Value: token},
			":ref":     &types.AttributeValueMemberS{Value: p.RefName},
			":at":      &types.AttributeValueMemberS{Value: now.UTC().Format(timeLayout)},
			":exp":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.retention).Unix(), 10)},
			":one":     &types.AttributeValueMemberN{Value: "1"},
			":oldev":   &types.AttributeValueMemberS{Value: old.EventID},
			":oldst":   &types.AttributeValueMemberS{Value: old.State},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		old.Held = false // another push of the commit took it first
		return old, nil
	}
	if err != nil {
		return pipeline.PushClaim{}, fmt.Errorf("claim push of %s again: %w", p.CommitID, err)
	}
	c, err := decodePushClaim(out.Attributes)
	c.Held = err == nil
	return c, err
}

// MarkPushStarted records that the commit's run started as executionID.
func (d *Dynamo) MarkPushStarted(ctx context.Context, p pipeline.Push, executionID string, now time.Time) error {
	return d.settlePush(ctx, p, "SET #st = :st, executionId = :ex, startedAt = :at REMOVE leaseUntil",
		map[string]types.AttributeValue{
			":st": &types.AttributeValueMemberS{Value: pipeline.PushStarted},
			":ex": &types.AttributeValueMemberS{Value: executionID},
			":at": &types.AttributeValueMemberS{Value: now.UTC().Format(timeLayout)},
		})
}

// MarkPushSkipped records that the commit runs nothing, and why.
func (d *Dynamo) MarkPushSkipped(ctx context.Context, p pipeline.Push, reason string, now time.Time) error {
	return d.settlePush(ctx, p, "SET #st = :st, skipReason = :r, skippedAt = :at REMOVE leaseUntil",
		map[string]types.AttributeValue{
			":st": &types.AttributeValueMemberS{Value: pipeline.PushSkipped},
			":r":  &types.AttributeValueMemberS{Value: reason},
			":at": &types.AttributeValueMemberS{Value: now.UTC().Format(timeLayout)},
		})
}

func (d *Dynamo) settlePush(ctx context.Context, p pipeline.Push, update string, values map[string]types.AttributeValue) error {
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       pushClaimKey(p.Repository, p.CommitID),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return fmt.Errorf("settle push claim of %s: %w", p.CommitID, err)
	}
	return nil
}

// ReleasePush ends the lease of a PENDING claim, so that the retry of a failed start takes it
// at once. A claim that is no longer PENDING is left alone.
func (d *Dynamo) ReleasePush(ctx context.Context, p pipeline.Push) error {
	_, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.table),
		Key:                       pushClaimKey(p.Repository, p.CommitID),
		UpdateExpression:          aws.String("SET leaseUntil = :zero"),
		ConditionExpression:       aws.String("#st = :pending"),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": &types.AttributeValueMemberN{Value: "0"}, ":pending": &types.AttributeValueMemberS{Value: pipeline.PushPending}},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release push claim of %s: %w", p.CommitID, err)
	}
	return nil
}

// RecordSkip records a push that starts nothing (one PutItem; recording it again is harmless).
func (d *Dynamo) RecordSkip(ctx context.Context, p pipeline.Push, reason string, now time.Time) error {
	item, err := attributevalue.MarshalMap(pushSkipRecord(pipeline.SkipOf(p, reason, now)))
	if err != nil {
		return fmt.Errorf("marshal skipped push: %w", err)
	}
	item[attrPK] = &types.AttributeValueMemberS{Value: pushPK(p.Repository, p.Commit())}
	item[attrSK] = &types.AttributeValueMemberS{Value: "SKIP#" + p.ID}
	item[attrExpires] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.retention).Unix(), 10)}
	_, err = d.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item})
	if err != nil {
		return fmt.Errorf("record skipped push %s: %w", p.ID, err)
	}
	return nil
}

// GetPush returns what is known of a pushed commit: its claim (State "" when it was never
// claimed) and the pushes of it that started nothing, oldest first. One Query.
func (d *Dynamo) GetPush(ctx context.Context, repository, commitID string) (pipeline.PushClaim, []pipeline.PushSkip, error) {
	var claim pipeline.PushClaim
	var skips []pipeline.PushSkip
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName:                 aws.String(d.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pushPK(repository, commitID)}},
		ConsistentRead:            aws.Bool(true),
	})
	now := d.clock.Now()
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return pipeline.PushClaim{}, nil, fmt.Errorf("query push of %s: %w", commitID, err)
		}
		for _, it := range out.Items {
			if ttlExpired(it, now) {
				continue
			}
			if str(it, attrSK) == "PUSH" {
				if claim, err = decodePushClaim(it); err != nil {
					return pipeline.PushClaim{}, nil, err
				}
				continue
			}
			var s pushSkipRecord
			if err := attributevalue.UnmarshalMap(it, &s); err != nil {
				return pipeline.PushClaim{}, nil, fmt.Errorf("decode skipped push: %w", err)
			}
			skips = append(skips, pipeline.PushSkip(s))
		}
	}
	slices.SortStableFunc(skips, func(a, b pipeline.PushSkip) int { return a.At.Compare(b.At) })
	return claim, skips, nil
}

// ---- Memory ----

// memPushes is Memory's push state. Every access holds the store's own mutex.
type memPushes struct {
	claims   map[string]pipeline.PushClaim // by pushPK
	claimExp map[string]time.Time          // the claims' expiresAt (memttl.go)
	skips    map[string][]pipeline.PushSkip
}

func (m *Memory) pushes() *memPushes {
	if m.push.claims == nil {
		m.push = memPushes{claims: map[string]pipeline.PushClaim{}, claimExp: map[string]time.Time{}, skips: map[string][]pipeline.PushSkip{}}
	}
	return &m.push
}

// ClaimPush takes the start of p's commit (see Dynamo.ClaimPush).
func (m *Memory) ClaimPush(_ context.Context, p pipeline.Push, token string, now time.Time, lease time.Duration) (pipeline.PushClaim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.pushes()
	k := pushPK(p.Repository, p.CommitID)
	c, ok := t.claims[k]
	switch {
	case ok && c.Rerunnable(p, now):
		c = pipeline.PushClaim{EventID: p.ID, Token: token, Attempts: c.Attempts}
	case ok && (c.State != pipeline.PushPending || !c.LeaseUntil.Before(now)):
		c.Held = false
		return c, nil
	case !ok:
		c = pipeline.PushClaim{EventID: p.ID, Token: token}
	}
	c.State, c.LeaseUntil = pipeline.PushPending, now.Add(lease).UTC().Truncate(time.Millisecond)
	c.Attempts++
	t.claims[k] = c
	t.claimExp[k] = m.expiry(now)
	c.Held = true
	return c, nil
}

// MarkPushStarted records the commit's execution.
func (m *Memory) MarkPushStarted(_ context.Context, p pipeline.Push, executionID string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.pushes()
	k := pushPK(p.Repository, p.CommitID)
	c := t.claims[k]
	c.State, c.ExecutionID, c.LeaseUntil, c.SettledAt = pipeline.PushStarted, executionID, time.Time{}, now.UTC().Truncate(time.Millisecond)
	t.claims[k] = c
	return nil
}

// MarkPushSkipped records that the commit runs nothing.
func (m *Memory) MarkPushSkipped(_ context.Context, p pipeline.Push, reason string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.pushes()
	k := pushPK(p.Repository, p.CommitID)
	c := t.claims[k]
	c.State, c.Reason, c.LeaseUntil, c.SettledAt = pipeline.PushSkipped, reason, time.Time{}, now.UTC().Truncate(time.Millisecond)
	t.claims[k] = c
	return nil
}

// ReleasePush ends a PENDING claim's lease.
func (m *Memory) ReleasePush(_ context.Context, p pipeline.Push) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.pushes()
	k := pushPK(p.Repository, p.CommitID)
	if c, ok := t.claims[k]; ok && c.State == pipeline.PushPending {
		c.LeaseUntil = time.UnixMilli(0).UTC()
		t.claims[k] = c
	}
	return nil
}

// RecordSkip records a push that starts nothing.
func (m *Memory) RecordSkip(_ context.Context, p pipeline.Push, reason string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.pushes()
	k := pushPK(p.Repository, p.Commit())
	s := pipeline.SkipOf(p, reason, now)
	list := slices.DeleteFunc(t.skips[k], func(x pipeline.PushSkip) bool { return x.EventID == p.ID })
	t.skips[k] = append(list, s)
	return nil
}

// GetPush returns a pushed commit's claim and skipped pushes.
func (m *Memory) GetPush(_ context.Context, repository, commitID string) (pipeline.PushClaim, []pipeline.PushSkip, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.pushes()
	k := pushPK(repository, commitID)
	skips := slices.Clone(t.skips[k])
	slices.SortStableFunc(skips, func(a, b pipeline.PushSkip) int { return a.At.Compare(b.At) })
	c := t.claims[k]
	c.Held = false
	return c, skips, nil
}
