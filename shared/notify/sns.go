package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// SNSAPI is the one SNS operation SNS uses; *sns.Client implements it.
type SNSAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ SNSAPI = (*sns.Client)(nil)

// retryThrottled makes the SDK retry SNS's throttling error. SNS answers it as "Throttled"
// (HTTP 429), a code missing from the standard retryer's throttle list (which has
// "ThrottledException"), and 429 is not among its retryable statuses: without this a burst of
// failures would skip the SDK's retries and go straight back to Lambda.
func retryThrottled(o *sns.Options) {
	if o.Retryer != nil {
		o.Retryer = retry.AddWithErrorCodes(o.Retryer, "Throttled")
	}
}

// SNS publishes messages to a topic. The SDK client retries 5xx and throttling itself; what still
// fails is returned.
type SNS struct {
	API      SNSAPI
	TopicARN string
}

// Publish sends m (RenderSNS's) with its attributes as String message attributes, which
// subscription filter policies match on. An empty subject is left out (SNS rejects "").
func (s *SNS) Publish(ctx context.Context, m SNSMessage) error {
	if s.API == nil || s.TopicARN == "" {
		return errors.New("publish to SNS: no client or no topic ARN configured")
	}
	in := &sns.PublishInput{TopicArn: aws.String(s.TopicARN), Message: aws.String(m.Body)}
	if m.Subject != "" {
		in.Subject = aws.String(m.Subject)
	}
	if len(m.Attributes) > 0 {
		in.MessageAttributes = make(map[string]types.MessageAttributeValue, len(m.Attributes))
		for k, v := range m.Attributes {
			if v == "" {
				continue // SNS rejects an attribute without a value
			}
			in.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	if _, err := s.API.Publish(ctx, in, retryThrottled); err != nil {
		return fmt.Errorf("publish %q to SNS topic %s: %w", m.Subject, s.TopicARN, err)
	}
	return nil
}
