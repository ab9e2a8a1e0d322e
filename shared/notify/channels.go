package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
)

// Channel delivers one composed message to one destination, rendered as that destination
// wants it. It owns the destination's quirks (Slack's plain-text fallback, a webhook URL read
// from a secret); callers know only Send. Send returns nil once the destination took the
// message, or when the destination is switched off.
type Channel interface {
	Name() string
	Send(ctx context.Context, m Message) error
}

// Channel names, as recorded on a notification's claim.
const (
	ChannelSlack = "slack"
	ChannelSNS   = "sns"
)

var (
	_ Channel = (*SlackChannel)(nil)
	_ Channel = (*SNS)(nil)
)

// Name is "sns".
func (s *SNS) Name() string { return ChannelSNS }

// Send publishes m as SNS's plain-text e-mail.
func (s *SNS) Send(ctx context.Context, m Message) error { return s.Publish(ctx, RenderSNS(m)) }

// SlackChannel posts Block Kit messages to an incoming webhook.
type SlackChannel struct {
	// Poster holds the webhook settings (attempts, timeouts); its URL is filled from Resolve
	// on first use when empty.
	Poster Slack
	// Resolve reads the webhook URL (WebhookURLFrom) once per cold start, and again after a
	// failed read; it is never logged. "" switches the channel off. nil: Poster.URL is used.
	Resolve func(ctx context.Context) (string, error)
	Log     *slog.Logger

	mu       sync.Mutex
	resolved bool
}

// Name is "slack".
func (c *SlackChannel) Name() string { return ChannelSlack }

// Send posts m. When Slack refuses the rich message itself (invalid_blocks, say), a retry
// would be refused again: it says the headline in plain text instead, and logs why. When
// Slack refuses that too (the webhook is gone), nothing a retry can do: it logs and returns nil.
func (c *SlackChannel) Send(ctx context.Context, m Message) error {
	poster, err := c.poster(ctx)
	if err != nil || poster == nil {
		return err
	}
	payload, err := RenderSlack(m)
	if err == nil {
		err = poster.Post(ctx, payload)
	}
	if err == nil || !IsPermanent(err) {
		return err
	}
	c.Log.ErrorContext(ctx, "slack refused the message; sending it as plain text", "error", err.Error())
	plain, err := json.Marshal(map[string]string{"text": Headline(m) + "\n" + m.ConsoleURL})
	if err != nil {
		return err
	}
	if err := poster.Post(ctx, plain); err != nil {
		if IsPermanent(err) {
			c.Log.ErrorContext(ctx, "slack refused the plain-text message too; giving up on slack", "error", err.Error())
			return nil
		}
		return err
	}
	return nil
}

// poster returns the configured poster, or nil when no webhook is configured.
func (c *SlackChannel) poster(ctx context.Context) (*Slack, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.resolved && c.Resolve != nil {
		url, err := c.Resolve(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the webhook URL: %w", err)
		}
		c.Poster.URL, c.resolved = url, true
	}
	if c.Poster.URL == "" {
		return nil, nil
	}
	return &c.Poster, nil
}
