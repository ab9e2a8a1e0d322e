package notify

import (
	"context"
	"fmt"
	"sync"
)

// ProjectWebhooks says which Slack webhook a project's declaration names (the notifier wires
// it over the declared projects: the Projects parameter and the table's PROJECT items).
type ProjectWebhooks interface {
	// SlackWebhookParameter returns the SSM parameter or secret of project's own webhook, or
	// "" when the project names none or is not declared (its messages go to the default
	// webhook). An error is a failed look-up, worth a retry.
	SlackWebhookParameter(ctx context.Context, project string) (string, error)
}

// ProjectSlack is the Slack channel of a control plane with many projects: a message goes to
// its project's own webhook when the project's declaration names one, else to Default. Each
// webhook is one SlackChannel, opened once per reference and kept for the cold start, so that
// each webhook URL is read once (Open is SlackFromSecret in the notifier). It is one channel
// ("slack") whichever webhook a message takes, so per-channel delivery marks keep working.
type ProjectSlack struct {
	// Default takes the messages of projects without a webhook of their own; nil drops them
	// (no webhook configured for the account).
	Default  *SlackChannel
	Projects ProjectWebhooks
	Open     func(ref string) *SlackChannel

	mu    sync.Mutex
	byRef map[string]*SlackChannel
}

var _ Channel = (*ProjectSlack)(nil)

// Name is "slack".
func (p *ProjectSlack) Name() string { return ChannelSlack }

// Send posts m to its project's webhook, or to the default one.
func (p *ProjectSlack) Send(ctx context.Context, m Message) error {
	ch, err := p.route(ctx, m.Project)
	if err != nil || ch == nil {
		return err
	}
	return ch.Send(ctx, m)
}

func (p *ProjectSlack) route(ctx context.Context, project string) (*SlackChannel, error) {
	if project == "" || p.Projects == nil || p.Open == nil {
		return p.Default, nil
	}
	ref, err := p.Projects.SlackWebhookParameter(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("find project %s's slack webhook: %w", project, err)
	}
	if ref == "" {
		return p.Default, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.byRef[ref]
	if !ok {
		if p.byRef == nil {
			p.byRef = map[string]*SlackChannel{}
		}
		ch = p.Open(ref)
		p.byRef[ref] = ch
	}
	return ch, nil
}
