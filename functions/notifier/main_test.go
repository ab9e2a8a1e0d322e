package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	assert.Empty(t, h.Sender.Channels, "no webhook reference and no topic: no channel")
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
