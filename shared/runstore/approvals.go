package runstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Approvals of deploys that widen IAM (docs/security.md, "Approval"): one item per deploy
// action that asks,
//
//	approval     pk APPROVAL#<pipeline>#<execution>   sk STACK#<stack>#<deploy token>
//
// (the deploy token is the id of the deploy's first job: a retried stage asks again, and the
// earlier decisions stay on record)
// written by the deployer (RequestApproval; its role may touch APPROVAL# keys only, through a
// dynamodb:LeadingKeys condition) and decided once by lp approve / lp reject with the caller's
// credentials (DecideApproval, a conditional update). The items carry expiresAt like every
// other, for the table's TTL; the approval's own deadline is a separate attribute.
//
// While PENDING, the item sits in the byPipeline index under approvalPendingPartition (gsi1sk
// <requestedAt>#<notification key>), and the decision takes it out: the reconciler's
// SweepApprovals finds there the requests whose notification nothing queued (the notifier
// failed for the stream record until its retries were spent) and queues it as the outbox
// would.

// ApprovalPrefix starts the partition key of every approval item (the deployer's grant is
// limited to it).
const ApprovalPrefix = "APPROVAL#"

func approvalPK(pipelineName, executionID string) string {
	return ApprovalPrefix + pipelineName + "#" + executionID
}

func approvalSK(stack, deploy string) string { return "STACK#" + stack + "#" + deploy }

// approvalItem is an approval as stored.
type approvalItem struct {
	PK             string   `dynamodbav:"pk"`
	SK             string   `dynamodbav:"sk"`
	Pipeline       string   `dynamodbav:"pipeline"`
	ExecutionID    string   `dynamodbav:"executionId"`
	Stack          string   `dynamodbav:"stack"`
	Deploy         string   `dynamodbav:"deploy"`
	Status         string   `dynamodbav:"status"`
	TemplatePath   string   `dynamodbav:"templatePath,omitempty"`
	TemplateSHA256 string   `dynamodbav:"templateSha256"`
	BaseSHA256     string   `dynamodbav:"baseSha256,omitempty"`
	Widening       []string `dynamodbav:"widening"`
	RequestedAt    string   `dynamodbav:"requestedAt"`
	Deadline       string   `dynamodbav:"deadline"`
	// DeadlineEpoch is Deadline in Unix seconds, for the decision's condition.
	DeadlineEpoch int64  `dynamodbav:"deadlineEpoch"`
	DecidedBy     string `dynamodbav:"decidedBy,omitempty"`
	DecidedAt     string `dynamodbav:"decidedAt,omitempty"`
	Reason        string `dynamodbav:"reason,omitempty"`
	ExpiresAt     int64  `dynamodbav:"expiresAt"`
	// While PENDING: the index entry SweepApprovals reads (DecideApproval removes it).
	GSI1PK string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK string `dynamodbav:"gsi1sk,omitempty"`
}

// approvalPendingPartition is the index partition of approvals no one decided yet.
const approvalPendingPartition = ApprovalPrefix + "PENDING"

func (it approvalItem) approval() pipeline.Approval {
	parse := func(s string) time.Time {
		t, _ := time.Parse(timeLayout, s)
		return t
	}
	return pipeline.Approval{
		Key:    pipeline.ApprovalKey{Pipeline: it.Pipeline, ExecutionID: it.ExecutionID, Stack: it.Stack, Deploy: it.Deploy},
		Status: pipeline.ApprovalStatus(it.Status), TemplatePath: it.TemplatePath, TemplateSHA256: it.TemplateSHA256,
		BaseSHA256: it.BaseSHA256, Widening: it.Widening, RequestedAt: parse(it.RequestedAt),
		Deadline: parse(it.Deadline), DecidedBy: it.DecidedBy, DecidedAt: parse(it.DecidedAt), Reason: it.Reason,
	}
}

func approvalKeyAttrs(k pipeline.ApprovalKey) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: approvalPK(k.Pipeline, k.ExecutionID)},
		attrSK: &types.AttributeValueMemberS{Value: approvalSK(k.Stack, k.Deploy)},
	}
}

func validKey(k pipeline.ApprovalKey) error {
	if k.Pipeline == "" || k.ExecutionID == "" || k.Stack == "" || k.Deploy == "" {
		return fmt.Errorf("approval key %+v: pipeline, execution, stack and deploy are required", k)
	}
	return nil
}

// RequestApproval stores a as PENDING unless an approval with its key exists, and returns the
// stored approval: a, or the one an earlier job of the same deploy asked for (one GetItem; a
// PutItem with attribute_not_exists(pk) the first time).
func (d *Dynamo) RequestApproval(ctx context.Context, a pipeline.Approval) (pipeline.Approval, error) {
	if err := validKey(a.Key); err != nil {
		return pipeline.Approval{}, err
	}
	stored, err := d.Approval(ctx, a.Key)
	if err == nil || !errors.Is(err, pipeline.ErrApprovalNotFound) {
		return stored, err
	}
	item, err := attributevalue.MarshalMap(approvalItem{
		PK: approvalPK(a.Key.Pipeline, a.Key.ExecutionID), SK: approvalSK(a.Key.Stack, a.Key.Deploy),
		Pipeline: a.Key.Pipeline, ExecutionID: a.Key.ExecutionID, Stack: a.Key.Stack, Deploy: a.Key.Deploy, Status: string(pipeline.ApprovalPending),
		TemplatePath: a.TemplatePath, TemplateSHA256: a.TemplateSHA256, BaseSHA256: a.BaseSHA256, Widening: a.Widening,
		RequestedAt: a.RequestedAt.UTC().Format(timeLayout), Deadline: a.Deadline.UTC().Format(timeLayout),
		DeadlineEpoch: a.Deadline.Unix(), ExpiresAt: d.expiresAt(),
		GSI1PK: approvalPendingPartition, GSI1SK: a.RequestedAt.UTC().Format(timeLayout) + "#" + pipeline.ApprovalNotification(a).Key(),
	})
	if err != nil {
		return pipeline.Approval{}, fmt.Errorf("marshal approval: %w", err)
	}
	_, err = d.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(d.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		// Another job of the same deploy asked first.
		return d.Approval(ctx, a.Key)
	case err != nil:
		return pipeline.Approval{}, fmt.Errorf("request approval %s: %w", a.Key, err)
	}
	a.Status = pipeline.ApprovalPending
	return a, nil
}

// Approval reads one approval (consistent read); pipeline.ErrApprovalNotFound when there is
// none.
func (d *Dynamo) Approval(ctx context.Context, k pipeline.ApprovalKey) (pipeline.Approval, error) {
	if err := validKey(k); err != nil {
		return pipeline.Approval{}, err
	}
	out, err := d.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: approvalKeyAttrs(k), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return pipeline.Approval{}, fmt.Errorf("read approval %s: %w", k, err)
	}
	if len(out.Item) == 0 {
		return pipeline.Approval{}, fmt.Errorf("approval %s: %w", k, pipeline.ErrApprovalNotFound)
	}
	var it approvalItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return pipeline.Approval{}, fmt.Errorf("decode approval %s: %w", k, err)
	}
	return it.approval(), nil
}

// Approvals lists the approvals of one execution (one per deploy that asked), by stack, then
// oldest first.
func (d *Dynamo) Approvals(ctx context.Context, pipelineName, executionID string) ([]pipeline.Approval, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName: aws.String(d.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: approvalPK(pipelineName, executionID)}},
	})
	var out []pipeline.Approval
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list approvals of %s/%s: %w", pipelineName, executionID, err)
		}
		for _, item := range page.Items {
			var it approvalItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, fmt.Errorf("decode approval of %s/%s: %w", pipelineName, executionID, err)
			}
			out = append(out, it.approval())
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Key.Stack != out[j].Key.Stack {
			return out[i].Key.Stack < out[j].Key.Stack
		}
		return out[i].RequestedAt.Before(out[j].RequestedAt)
	})
	return out, nil
}

// DecideApproval records a person's decision, once: one UpdateItem whose condition holds only
// while the approval is PENDING and before its deadline, and which takes the approval out of
// the pending index (SweepApprovals no longer sees it). A lost condition is explained from
// the item: pipeline.ErrApprovalNotFound, pipeline.ErrAlreadyDecided (with the stored
// decision), or pipeline.ErrApprovalExpired.
func (d *Dynamo) DecideApproval(ctx context.Context, k pipeline.ApprovalKey, dec pipeline.Decision) (pipeline.Approval, error) {
	if err := validKey(k); err != nil {
		return pipeline.Approval{}, err
	}
	if err := dec.Validate(); err != nil {
		return pipeline.Approval{}, err
	}
	status := pipeline.ApprovalRejected
	if dec.Approve {
		status = pipeline.ApprovalApproved
	}
	update := "SET #status = :status, decidedBy = :by, decidedAt = :at"
	values := map[string]types.AttributeValue{
		":status":  &types.AttributeValueMemberS{Value: string(status)},
		":pending": &types.AttributeValueMemberS{Value: string(pipeline.ApprovalPending)},
		":by":      &types.AttributeValueMemberS{Value: dec.By},
		":at":      &types.AttributeValueMemberS{Value: dec.At.UTC().Format(timeLayout)},
		":now":     &types.AttributeValueMemberN{Value: strconv.FormatInt(dec.At.Unix(), 10)},
	}
	if dec.Reason != "" {
		update += ", reason = :reason"
		values[":reason"] = &types.AttributeValueMemberS{Value: dec.Reason}
	}
	update += " REMOVE gsi1pk, gsi1sk"
	out, err := d.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(d.table), Key: approvalKeyAttrs(k),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#status = :pending AND deadlineEpoch > :now"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		stored, rerr := d.Approval(ctx, k)
		switch {
		case rerr != nil:
			return pipeline.Approval{}, rerr
		case stored.Status != pipeline.ApprovalPending:
			return stored, fmt.Errorf("approval %s: %w: %s by %s at %s", k, pipeline.ErrAlreadyDecided,
				stored.Status, stored.DecidedBy, stored.DecidedAt.UTC().Format(time.RFC3339))
		default:
			return stored, fmt.Errorf("approval %s: %w at %s", k, pipeline.ErrApprovalExpired, stored.Deadline.UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		return pipeline.Approval{}, fmt.Errorf("decide approval %s: %w", k, err)
	}
	var it approvalItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return pipeline.Approval{}, fmt.Errorf("decode approval %s: %w", k, err)
	}
	return it.approval(), nil
}

// ApprovalSweepHorizon bounds how far back SweepApprovals looks: longer than any approval's
// deadline (the deployer's gate allows at most 23 hours, within CodePipeline's 24 for a job),
// so that the undecided requests past their deadline are not read again and again until TTL
// removes them.
const ApprovalSweepHorizon = 24 * time.Hour

// SweepApprovals queues the notification of each approval requested before cutoff (and within
// ApprovalSweepHorizon of now), still PENDING and before its deadline, that has no claim: the
// notifier never got as far as its first Claim for the stream record of the request (its
// retries were spent, with only the record's position left in the dead-letter queue). It queues
// it as the outbox does (Outbox.Dispatch, a conditional PutItem of the claim item, carrying
// the request's stack, deploy, deadline and widening), whose INSERT the stream hands to the
// notifier; a request that has a claim, told or being told, is left alone. It returns how many
// it queued. One Query of the index's approvalPendingPartition, one PutItem per request found.
func (d *Dynamo) SweepApprovals(ctx context.Context, cutoff, now time.Time) (int, error) {
	p := dynamodb.NewQueryPaginator(d.db, &dynamodb.QueryInput{
		TableName: aws.String(d.table), IndexName: aws.String(IndexByPipeline),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk BETWEEN :from AND :cut"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":    &types.AttributeValueMemberS{Value: approvalPendingPartition},
			":from": &types.AttributeValueMemberS{Value: now.Add(-ApprovalSweepHorizon).UTC().Format(timeLayout)},
			":cut":  &types.AttributeValueMemberS{Value: cutoff.UTC().Format(timeLayout)},
		},
	})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("query pending approvals: %w", err)
		}
		for _, item := range page.Items {
			var it approvalItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return n, fmt.Errorf("decode approval %s: %w", str(item, attrPK), err)
			}
			a := it.approval()
			// The index is read eventually: a decision may not have reached it yet.
			// (RequestApproval checked the key when it wrote the item.)
			if a.Status != pipeline.ApprovalPending || a.Key.Stack == "" || a.Key.Deploy == "" || !now.Before(a.Deadline) {
				continue
			}
			queued, err := Outbox{Store: d}.Dispatch(ctx, pipeline.ApprovalNotification(a), pipeline.Run{})
			if err != nil {
				return n, fmt.Errorf("sweep approval of %s, stack %s: %w", a.Key.ExecutionID, a.Key.Stack, err)
			}
			if queued {
				n++
			}
		}
	}
	return n, nil
}
