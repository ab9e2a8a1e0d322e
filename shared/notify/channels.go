package notify

import (
	"context"
	"errors"
	"fmt"
)

// Channels sends a message to every configured channel. A nil channel is skipped.
type Channels struct {
	Slack *Slack
	SNS   *SNS
}

// Send renders m for each configured channel and delivers it. It tries every channel even when
// one fails, and returns the failures joined (nil when all delivered), each naming its channel.
// A retry of the whole Send re-sends to the channels that had succeeded: callers that need
// exactly one message per channel claim per channel and send with the channel's own method.
func (c Channels) Send(ctx context.Context, m Message) error {
	var errs []error
	if c.Slack != nil && c.Slack.URL != "" {
		payload, err := RenderSlack(m)
		if err == nil {
			err = c.Slack.Post(ctx, payload)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("slack: %w", err))
		}
	}
	if c.SNS != nil && c.SNS.TopicARN != "" {
		if err := c.SNS.Publish(ctx, RenderSNS(m)); err != nil {
			errs = append(errs, fmt.Errorf("sns: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("send %s notification for %s %s: %w", m.Type, m.Pipeline, m.ExecutionID, err)
	}
	return nil
}
