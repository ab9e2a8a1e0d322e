//go:build unix

package dynalitetest

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// dynalite has no streams. StreamRecord stands in for the record a table's stream (view type
// NEW_IMAGE) delivers to Lambda after a write: it reads the item at key from the table, as it
// is now, and shows it as the record's new image, with the key attributes as its keys.
// eventName is INSERT or MODIFY; seq is the record's sequence number (and event id).
func StreamRecord(tb testing.TB, client *dynamodb.Client, table string, key map[string]types.AttributeValue, eventName, seq string) events.DynamoDBEventRecord {
	tb.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		tb.Fatalf("dynalitetest: read the item of a stream record: %v", err)
	}
	if len(out.Item) == 0 {
		tb.Fatalf("dynalitetest: no item at %v for a stream record", key)
	}
	return events.DynamoDBEventRecord{
		EventID: "ev-" + seq, EventName: eventName, EventSource: "aws:dynamodb", EventVersion: "1.1",
		Change: events.DynamoDBStreamRecord{
			Keys: StreamImage(key), NewImage: StreamImage(out.Item),
			SequenceNumber: seq, StreamViewType: "NEW_IMAGE",
		},
	}
}

// StreamImage shows an item as a stream record's image does.
func StreamImage(item map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	out := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, v := range item {
		out[k] = streamValue(v)
	}
	return out
}

func streamValue(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = streamValue(e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(StreamImage(v.Value))
	}
	return events.NewNullAttribute()
}
