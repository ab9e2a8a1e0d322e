package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBuildNamesWhatIsMissing(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := build(env(map[string]string{"LINK_EXPIRY_HOURS": "900"}), log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RUNS_TABLE")
	assert.Contains(t, err.Error(), "LINK_EXPIRY_HOURS")
}

func TestBuildWithoutSlackOrTopic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := build(env(map[string]string{
		"RUNS_TABLE": "runs", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
		"APP_STACK_NAME": "my-lambda-app",
	}), log)
	require.NoError(t, err)
	// No account webhook and no topic: only the Slack channel of the projects that name their
	// own webhook.
	require.Len(t, h.Sender.Channels, 1)
	routed, ok := h.Sender.Channels[0].(*notify.ProjectSlack)
	require.True(t, ok, "%T", h.Sender.Channels[0])
	assert.Nil(t, routed.Default, "no account webhook")
}

func TestBuildWithSlackAndTopic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := build(env(map[string]string{
		"RUNS_TABLE": "runs", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
		"SLACK_WEBHOOK_PARAMETER": "/lp/slack", "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:lp",
	}), log)
	require.NoError(t, err)
	var names []string
	for _, c := range h.Sender.Channels {
		names = append(names, c.Name())
	}
	assert.Equal(t, []string{"slack", "sns"}, names)
}

func TestBuildWithLocalSlackReceiver(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := map[string]string{"RUNS_TABLE": "runs", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	h, err := build(env(with(localSlackVar, "http://127.0.0.1:4000/slack")), log)
	require.NoError(t, err)
	require.Len(t, h.Sender.Channels, 1)
	assert.Equal(t, "slack", h.Sender.Channels[0].Name())

	_, err = build(env(with(localSlackVar, "https://hooks.slack.com/services/T/B/x")), log)
	assert.ErrorContains(t, err, "127.0.0.1", "a real webhook never goes in a plain variable")
}

// TestFailuresGoToTheirProjectsWebhook wires the notifier's routing over the declarations
// (one in the Projects parameter, one written by lp project add): alpha's failure goes to
// alpha's webhook, beta's (no webhook of its own) and an undeclared project's to the default.
func TestFailuresGoToTheirProjectsWebhook(t *testing.T) {
	ctx := context.Background()
	alphaHook, gammaHook, defaultHook := notifytest.NewSlack(t), notifytest.NewSlack(t), notifytest.NewSlack(t)
	urls := map[string]*notifytest.SlackReceiver{"/alpha/slack": alphaHook, "/gamma/slack": gammaHook, "/account/slack": defaultHook}
	reads := map[string]int{}
	open := func(ref string) *notify.SlackChannel {
		r := urls[ref]
		return &notify.SlackChannel{
			Poster:  notify.Slack{Client: r.Client(), AttemptTimeout: 2 * time.Second},
			Resolve: func(context.Context) (string, error) { reads[ref]++; return r.URL(), nil },
			Log:     slog.New(slog.DiscardHandler),
		}
	}
	param, err := pipeline.ParseProjects(`[{"name":"alpha","branch":"main","slackWebhookParameter":"/alpha/slack"},{"name":"beta","branch":"main"}]`)
	require.NoError(t, err)
	table := runstore.NewProjectsMemory()
	require.NoError(t, table.Declare(ctx, pipeline.Project{Name: "gamma", SlackWebhookParameter: "/gamma/slack"}, false, time.Time{}))
	ch := &notify.ProjectSlack{
		Default:  open("/account/slack"),
		Projects: projectWebhooks{&projects.Lookup{Parameter: param, Store: table}},
		Open:     open,
	}
	for _, p := range []string{"alpha", "beta", "gamma", "stranger", "alpha"} {
		n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: pipeline.PipelineOf(p), ExecutionID: "exec-" + p, Attempt: 1}
		require.NoError(t, ch.Send(ctx, notify.Compose(n, pipeline.Run{}, pipeline.Details{})), p)
	}
	got := func(r *notifytest.SlackReceiver) []string {
		var out []string
		for _, b := range r.Delivered() {
			for _, p := range []string{"alpha", "beta", "gamma", "stranger"} {
				if strings.Contains(string(b), p+"-pipeline") {
					out = append(out, p)
				}
			}
		}
		return out
	}
	assert.Equal(t, []string{"alpha", "alpha"}, got(alphaHook))
	assert.Equal(t, []string{"gamma"}, got(gammaHook))
	assert.Equal(t, []string{"beta", "stranger"}, got(defaultHook))
	assert.Equal(t, map[string]int{"/alpha/slack": 1, "/gamma/slack": 1, "/account/slack": 1}, reads, "each webhook read once")
}
