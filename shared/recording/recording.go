// Package recording is the on-pipeline-event function's use case at its boundary: decode a
// CodePipeline event, hand it to the recorder, and decide once what a failure means (drop or
// retry). `lp replay` runs the same code, so a replay is exactly what the function does.
package recording

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// PipelineEvents handles CodePipeline execution state changes (the on-pipeline-event function).
type PipelineEvents struct {
	Recorder *pipeline.Recorder
	// Projects finds the declared project of a pipeline (shared/projects.Lookup); nil (a
	// per-project deployment, a local run) skips the look-up.
	Projects ProjectLookup
	Log      *slog.Logger
	// Clock is the receiver's clock, against which events dated more than
	// ebevent.MaxClockSkew ahead are refused; nil skips that check.
	Clock pipeline.Clock
	// Home is the control plane's own account and region. An event of a pipeline elsewhere
	// (forwarded from another account's or region's bus) is recorded, decided and notified
	// under the pipeline's ARN, apart from a same-named pipeline of the home (issue 9,
	// defect 6). The zero Home takes every event for the home's.
	Home pipeline.Home
	// Foreign remembers each such pipeline when one of its attempts ends, so that the
	// reconciler, which knows the home's pipelines from the declared projects, finds it
	// (runstore.Dynamo); nil remembers nothing (lp replay, local runs).
	Foreign ForeignPipelines
}

// ForeignPipelines remembers the pipelines of other accounts and regions (an idempotent write).
type ForeignPipelines interface {
	RememberForeign(ctx context.Context, pipelineID string) error
}

// ProjectLookup finds the declared project a pipeline belongs to; the error wraps
// pipeline.ErrUndeclaredProject when it belongs to none.
type ProjectLookup interface {
	ByPipeline(ctx context.Context, pipelineName string) (pipeline.Project, error)
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
	// From here on the pipeline is its identity: every key, outcome, claim and decision is
	// per account, region and pipeline.
	ev = h.Home.Identify(ev)
	attrs := []any{"eventId", ev.ID, "eventLevel", ev.Level.String(), "pipeline", ev.Pipeline, "executionId", ev.ExecutionID,
		"stage", ev.Stage, "action", ev.Action, "state", string(ev.State), "attempt", ev.Attempt, "eventTime", ev.Time,
		"account", ev.Account, "region", ev.Region}
	if h.Foreign != nil && ev.EndsAttempt() && pipeline.ParsePipelineID(ev.Pipeline).Foreign() {
		// Before the record: a recorded end is always findable by the reconciler.
		if err := h.Foreign.RememberForeign(ctx, ev.Pipeline); err != nil {
			h.Log.ErrorContext(ctx, "event not handled; returning the error so that Lambda retries it", append(attrs, "error", err.Error())...)
			return lambdaio.Response{Outcome: lambdaio.OutcomeRecorded, Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID}, err
		}
	}
	res, err := h.Recorder.Handle(ctx, ev)
	resp := lambdaio.Response{Outcome: lambdaio.OutcomeRecorded, Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID, Status: string(res.Status)}
	if err == nil {
		resp.Project, resp.Undeclared = h.project(ctx, ev.Pipeline)
		if resp.Undeclared {
			attrs = append(attrs, "project", "undeclared")
		} else if resp.Project != "" {
			attrs = append(attrs, "project", resp.Project)
		}
	}
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
	msg := "event recorded"
	if resp.Undeclared {
		msg = "event recorded for a pipeline of no declared project (undeclared)"
	}
	h.Log.InfoContext(ctx, msg, append(attrs, "runStatus", string(res.Status), "notifications", resp.Notifications)...)
	return resp, nil
}

// project names the declared project of the pipeline of identity id, or says it is
// undeclared. It runs after the event is recorded and only labels the outcome: a failed
// look-up is logged, never a reason to retry an event that is already stored. A pipeline of
// another account or region belongs to no project: projects are the home's.
func (h *PipelineEvents) project(ctx context.Context, id string) (name string, undeclared bool) {
	if h.Projects == nil {
		return "", false
	}
	ref := pipeline.ParsePipelineID(id)
	if ref.Foreign() {
		return "", true
	}
	p, err := h.Projects.ByPipeline(ctx, ref.Name)
	switch {
	case errors.Is(err, pipeline.ErrUndeclaredProject):
		return "", true
	case err != nil:
		h.Log.WarnContext(ctx, "project look-up failed; the event is recorded", "pipeline", id, "error", err.Error())
		return "", false
	}
	return p.Name, false
}
