package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
	"github.com/lambda-pipeline/lambda-pipeline/shared/digest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

func TestInvokeRoutesThePayload(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	h := &notifier{
		Notifications: &delivery.Notifications{Log: log},
		Digest:        &digest.Sender{Clock: pipeline.ClockFunc(func() time.Time { return now }), Log: log},
		Log:           log,
	}
	out, err := h.Invoke(context.Background(), json.RawMessage(digest.Payload))
	require.NoError(t, err)
	assert.Equal(t, "2026-W49", out.(digest.Report).Week, "the schedule's payload runs the digest")

	out, err = h.Invoke(context.Background(), json.RawMessage(`{"Records":[]}`))
	require.NoError(t, err)
	assert.IsType(t, events.DynamoDBEventResponse{}, out, "a stream batch goes to the notifications")

	out, err = h.Invoke(context.Background(), json.RawMessage(`[1,2]`))
	assert.NoError(t, err, "an unknown payload is dropped, not retried")
	assert.Nil(t, out)
}

func TestUnreadableProjectsStopTheDigestOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := build(env(map[string]string{
		"RUNS_TABLE": "runs", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
		"PROJECTS": "Not A Name",
	}), log)
	require.NoError(t, err, "the notifications still go out")
	assert.ErrorContains(t, h.DigestErr, "projects parameter")
	out, err := h.Invoke(context.Background(), json.RawMessage(digest.Payload))
	assert.NoError(t, err, "dropped: a retry cannot read it either")
	assert.Nil(t, out)
}
