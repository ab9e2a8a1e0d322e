package runstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Approval requests reach the notifier through the table's stream, as the outbox's claims do:
// template.yaml's NotifierStream passes the INSERT of an APPROVAL# item (the deployer's
// RequestApproval), and FromStream turns its new image into a pipeline.NotifyApproval
// notification. Nothing queued it, so its claim item is written by its first Claim, which
// keeps what the message says (stack, deploy, deadline, widening) and places it in the
// pending index, as the outbox would have: a failed attempt is handed back by Requeue and
// composed again from the claim (claimFromItem), like any other notification. The deployer
// writes nothing but its APPROVAL# item (its role may not touch another key).

// queuedByClaim reports whether n's first Claim queues it: a notification the notifier learns
// from the stream instead of from the outbox.
func queuedByClaim(n pipeline.Notification) bool { return n.Type == pipeline.NotifyApproval }

// isApprovalKey reports whether a table partition key names an approval request.
func isApprovalKey(pk string) bool { return strings.HasPrefix(pk, ApprovalPrefix) }

// approvalFromStream returns the notification a stream record of an approval item announces:
// its INSERT, still PENDING (as RequestApproval writes it). The decision (a MODIFY) and the
// removal (TTL) announce none. An image that does not read as an approval wraps
// pipeline.ErrMalformed.
func approvalFromStream(rec events.DynamoDBEventRecord) (pipeline.Notification, bool, error) {
	if rec.EventName != "INSERT" {
		return pipeline.Notification{}, false, nil
	}
	pk := streamString(rec.Change.Keys, attrPK)
	item, err := streamItem(rec.Change.NewImage)
	if err != nil {
		return pipeline.Notification{}, false, fmt.Errorf("approval request %s: %v: %w", pk, err, pipeline.ErrMalformed)
	}
	var it approvalItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return pipeline.Notification{}, false, fmt.Errorf("approval request %s: %v: %w", pk, err, pipeline.ErrMalformed)
	}
	a := it.approval()
	if err := validKey(a.Key); err != nil {
		return pipeline.Notification{}, false, fmt.Errorf("approval request %s: %v: %w", pk, err, pipeline.ErrMalformed)
	}
	if a.Deadline.IsZero() {
		return pipeline.Notification{}, false, fmt.Errorf("approval request %s: no deadline %q: %w", pk, it.Deadline, pipeline.ErrMalformed)
	}
	if a.Status != pipeline.ApprovalPending {
		return pipeline.Notification{}, false, nil
	}
	return pipeline.ApprovalNotification(a), true, nil
}

// approvalQueued is what FromStream returns for the approval notification n, given its claim
// as read (q, err): the claim's state and channels, or a pending notification that nothing
// delivered yet when it has no claim. The notification is the record's, which says as much as
// the claim does.
func approvalQueued(n pipeline.Notification, q pipeline.Queued, err error) (pipeline.Queued, bool, error) {
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		return pipeline.Queued{Notification: n, State: pipeline.ClaimPending, Channels: map[string]bool{}}, true, nil
	case err != nil:
		return pipeline.Queued{}, false, err
	}
	q.Notification = n
	return q, true, nil
}

// approvalClaimSet extends a Claim of an approval notification: the message's facts, which a
// retry composes again from the claim, and, the first time, the queue time and the pending
// index entry that Requeue looks for. It returns the SET clauses, adding their names and values.
func approvalClaimSet(n pipeline.Notification, now time.Time, names map[string]string, values map[string]types.AttributeValue) string {
	set := []string{"#at = :at", "#stack = :stack", "#deploy = :deploy", "#deadline = :deadline",
		"#queued = if_not_exists(#queued, :queued)", "#gp = if_not_exists(#gp, :gp)", "#gs = if_not_exists(#gs, :gs)"}
	for k, v := range map[string]string{"#at": "at", "#stack": "stack", "#deploy": "deploy", "#deadline": "deadline",
		"#queued": "queuedAt", "#gp": attrGSI1PK, "#gs": attrGSI1SK} {
		names[k] = v
	}
	queued := now.UTC().Format(timeLayout)
	for k, v := range map[string]string{":at": n.At.UTC().Format(timeLayout), ":stack": n.Stack, ":deploy": n.Deploy,
		":deadline": n.Deadline.UTC().Format(timeLayout), ":queued": queued, ":gp": pendingPartition, ":gs": queued + "#" + n.Key()} {
		values[k] = &types.AttributeValueMemberS{Value: v}
	}
	if len(n.Widening) > 0 {
		l := make([]types.AttributeValue, len(n.Widening))
		for i, c := range n.Widening {
			l[i] = &types.AttributeValueMemberS{Value: c}
		}
		set = append(set, "#widening = :widening")
		names["#widening"], values[":widening"] = "widening", &types.AttributeValueMemberL{Value: l}
	}
	if n.WideningLeft > 0 {
		set = append(set, "#left = :left")
		names["#left"], values[":left"] = "wideningLeft", &types.AttributeValueMemberN{Value: strconv.Itoa(n.WideningLeft)}
	}
	return strings.Join(set, ", ")
}

// streamItem converts a stream record's image to the item it shows, as GetItem returns it.
func streamItem(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if len(image) == 0 {
		return nil, errors.New("no new image (the stream must show NEW_IMAGE)")
	}
	return streamItemOf(image)
}

func streamValue(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		l := make([]types.AttributeValue, len(v.List()))
		for i, e := range v.List() {
			av, err := streamValue(e)
			if err != nil {
				return nil, err
			}
			l[i] = av
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case events.DataTypeMap:
		m, err := streamItemOf(v.Map())
		return &types.AttributeValueMemberM{Value: m}, err
	}
	return nil, fmt.Errorf("unsupported type %d", v.DataType())
}

func streamItemOf(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(image))
	for k, v := range image {
		av, err := streamValue(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}
