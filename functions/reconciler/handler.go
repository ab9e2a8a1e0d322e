package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

type handler struct {
	log *slog.Logger
}

// Handle takes the EventBridge Scheduler / scheduled-rule event; its content does not matter
// beyond being a JSON object.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		h.log.WarnContext(ctx, "event rejected", "error", err.Error())
		return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: "malformed scheduled event: " + err.Error()}, nil
	}
	h.log.InfoContext(ctx, "reconcile", "eventId", ev.ID, "time", ev.Time)
	return lambdaio.Response{Outcome: lambdaio.OutcomeDone}, nil
}
