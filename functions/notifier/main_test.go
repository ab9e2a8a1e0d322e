package main

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBuildNamesWhatIsMissing(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := build(context.Background(), env(map[string]string{"LINK_EXPIRY_HOURS": "900"}), log)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RUNS_TABLE")
	assert.Contains(t, err.Error(), "LINK_EXPIRY_HOURS")
}

func TestBuildWithoutSlackOrTopic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := build(context.Background(), env(map[string]string{
		"RUNS_TABLE": "runs", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
		"APP_STACK_NAME": "my-lambda-app",
	}), log)
	require.NoError(t, err)
	assert.Nil(t, h.Sender.Slack, "no webhook reference: Slack off, nothing read")
	assert.Nil(t, h.Sender.SlackURL)
	assert.Nil(t, h.Sender.SNS, "no topic: SNS off")
}
