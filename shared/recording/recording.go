// Package recording is the on-pipeline-event function's use case at its boundary: decode a
// CodePipeline event, hand it to the recorder, and decide once what a failure means (drop or
// retry). `lp replay` runs the same code, so a replay is exactly what the function does.
package recording

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// PipelineEvents handles CodePipeline execution state changes (the on-pipeline-event function).
type PipelineEvents struct {
	Recorder *pipeline.Recorder
	Log      *slog.Logger
	// Clock is the receiver's clock, against which events dated more than
	// ebevent.MaxClockSkew ahead are refused; nil skips that check.
	Clock pipeline.Clock
}

// Handle decodes, folds, stores and notifies. It decides, once, what to do with a failure:
// malformed and unsupported events are logged and dropped (nil error: a retry cannot help);
// store and channel errors are returned so that Lambda retries the event (every step is
// idempotent) and, after its retries, keeps it in the dead-letter queue.
func (h *PipelineEvents) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	ev, err := ebevent.DecodePipelineEvent(raw)
	if err == nil && h.Clock != nil {
		err = ebevent.CheckTimes(ev, h.Clock.Now())
	}
	if err != nil {
		h.Log.WarnContext(ctx, "event rejected", "error", err.Error(), "bytes", len(raw))
		return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: err.Error()}, nil
	}
	attrs := []any{"eventId", ev.ID, "eventLevel", ev.Level.String(), "pipeline", ev.Pipeline, "executionId", ev.ExecutionID,
		"stage", ev.Stage, "action", ev.Action, "state", string(ev.State), "attempt", ev.Attempt, "eventTime", ev.Time}
	res, err := h.Recorder.Handle(ctx, ev)
	resp := lambdaio.Response{Outcome: lambdaio.OutcomeRecorded, Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID, Status: string(res.Status)}
	for _, n := range res.Sent {
		resp.Notifications = append(resp.Notifications, n.Key())
	}
	if err != nil {
		var sent []any
		if len(resp.Notifications) > 0 {
			sent = []any{"sent", resp.Notifications}
		}
		h.Log.ErrorContext(ctx, "event not fully handled; returning the error so that Lambda retries it",
			append(append(attrs, sent...), "error", err.Error())...)
		return resp, err
	}
	if res.Ignored != "" {
		resp.Outcome, resp.Reason = lambdaio.OutcomeIgnored, res.Ignored
		h.Log.InfoContext(ctx, "event ignored", append(attrs, "reason", res.Ignored, "runStatus", string(res.Status))...)
		return resp, nil
	}
	h.Log.InfoContext(ctx, "event recorded", append(attrs, "runStatus", string(res.Status), "notifications", resp.Notifications)...)
	return resp, nil
}
