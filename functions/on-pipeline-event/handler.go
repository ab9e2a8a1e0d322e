package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

type handler struct {
	log *slog.Logger
}

// Handle decodes one EventBridge event. Malformed and unsupported events are logged once and
// dropped (nil error): retrying them cannot help.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	ev, err := ebevent.DecodePipelineEvent(raw)
	if err != nil {
		h.log.WarnContext(ctx, "event rejected", "error", err.Error())
		return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: err.Error()}, nil
	}
	h.log.InfoContext(ctx, "pipeline event",
		"eventId", ev.ID, "level", ev.Level.String(), "pipeline", ev.Pipeline, "executionId", ev.ExecutionID,
		"stage", ev.Stage, "action", ev.Action, "state", string(ev.State), "attempt", ev.Attempt, "time", ev.Time)
	return lambdaio.Response{Outcome: lambdaio.OutcomeRecorded, Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID, Status: string(ev.State.Status())}, nil
}
