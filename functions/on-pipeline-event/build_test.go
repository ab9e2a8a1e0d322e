package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBuildNamesMissingConfiguration(t *testing.T) {
	_, err := build(env(nil), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "RUNS_TABLE")
	_, err = build(env(map[string]string{"RUNS_TABLE": "t"}), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "AWS_REGION")
	h, err := build(env(map[string]string{"RUNS_TABLE": "t", "AWS_REGION": "eu-west-1"}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.NotNil(t, h.Recorder)
}

// Under LP_STORE=memory the handler records a sample event and decides its notification.
func TestBuildLocalRecordsASampleFailure(t *testing.T) {
	h, err := build(env(map[string]string{"LP_STORE": "memory"}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	raw, err := os.ReadFile("../../events/pipeline-failed.json")
	require.NoError(t, err)
	resp, err := h.Handle(context.Background(), json.RawMessage(raw))
	require.NoError(t, err)
	assert.Equal(t, lambdaio.OutcomeRecorded, resp.Outcome)
	assert.Equal(t, "FAILED", resp.Status)
	assert.Len(t, resp.Notifications, 1, "a failure without history is reported")
}
