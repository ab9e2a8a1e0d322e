package notify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

type webhookRefs map[string]string

func (w webhookRefs) SlackWebhookParameter(_ context.Context, project string) (string, error) {
	if project == "broken" {
		return "", errors.New("table unavailable")
	}
	return w[project], nil
}

func failure(project string) Message {
	n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: pipeline.PipelineOf(project), ExecutionID: "exec-" + project, Attempt: 1, At: time.Date(2026, 11, 6, 14, 2, 0, 0, time.UTC)}
	return Compose(n, pipeline.Run{}, pipeline.Details{})
}

// TestProjectSlackRoutesEachProjectToItsWebhook: a failure of a project that names its own
// webhook goes there, another project's to the account's default; each webhook URL is read
// once however many messages take it.
func TestProjectSlackRoutesEachProjectToItsWebhook(t *testing.T) {
	alphaHook, defaultHook := notifytest.NewSlack(t), notifytest.NewSlack(t)
	resolves := map[string]int{}
	open := func(ref string) *SlackChannel {
		return &SlackChannel{
			Poster: Slack{Client: alphaHook.Client(), AttemptTimeout: 2 * time.Second},
			Resolve: func(context.Context) (string, error) {
				resolves[ref]++
				if ref == "/alpha/slack" {
					return alphaHook.URL(), nil
				}
				return "", nil
			},
			Log: discard(),
		}
	}
	ch := &ProjectSlack{
		Default:  &SlackChannel{Poster: Slack{URL: defaultHook.URL(), Client: defaultHook.Client(), AttemptTimeout: 2 * time.Second}, Log: discard()},
		Projects: webhookRefs{"alpha": "/alpha/slack"},
		Open:     open,
	}
	ctx := context.Background()
	for _, m := range []Message{failure("alpha"), failure("beta"), failure("alpha")} {
		if err := ch.Send(ctx, m); err != nil {
			t.Fatalf("send %s: %v", m.Project, err)
		}
	}
	if got := alphaHook.Delivered(); len(got) != 2 || !strings.Contains(string(got[0]), "alpha-pipeline") || !strings.Contains(string(got[1]), "alpha-pipeline") {
		t.Errorf("alpha's webhook got %d messages, want alpha's two:\n%s", len(got), got)
	}
	if got := defaultHook.Delivered(); len(got) != 1 || !strings.Contains(string(got[0]), "beta-pipeline") || strings.Contains(string(got[0]), "alpha") {
		t.Errorf("the default webhook got %d messages, want beta's one:\n%s", len(got), got)
	}
	if resolves["/alpha/slack"] != 1 || len(resolves) != 1 {
		t.Errorf("webhook reads %v, want alpha's once", resolves)
	}
	if ch.Name() != ChannelSlack {
		t.Errorf("name %q, want %q (delivery marks are per channel name)", ch.Name(), ChannelSlack)
	}
}

func TestProjectSlackReportsAFailedLookUp(t *testing.T) {
	def := notifytest.NewSlack(t)
	ch := &ProjectSlack{
		Default:  &SlackChannel{Poster: Slack{URL: def.URL(), Client: def.Client(), AttemptTimeout: 2 * time.Second}, Log: discard()},
		Projects: webhookRefs{},
		Open:     func(string) *SlackChannel { t.Fatal("opened a webhook for a failed look-up"); return nil },
	}
	if err := ch.Send(context.Background(), failure("broken")); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("error %v, want the failed look-up (a retry may route it right)", err)
	}
	if n := len(def.Posts()); n != 0 {
		t.Errorf("%d posts to the default webhook, want none: the project may have its own", n)
	}
}

func TestProjectSlackWithoutDefaultDropsUnroutedMessages(t *testing.T) {
	ch := &ProjectSlack{Projects: webhookRefs{}, Open: func(string) *SlackChannel { return nil }}
	if err := ch.Send(context.Background(), failure("beta")); err != nil {
		t.Errorf("error %v, want nil: no webhook is configured for beta", err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
