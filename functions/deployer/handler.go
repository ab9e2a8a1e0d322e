package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

type handler struct {
	log *slog.Logger
}

// Handle decodes a CodePipeline job or a custom resource request. The job carries temporary
// artifact credentials: it is never logged whole.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	if ebevent.IsJob(raw) {
		job, err := ebevent.DecodeJob(raw)
		if err != nil {
			h.log.ErrorContext(ctx, "job rejected", "error", err.Error())
			// A synchronous caller: the error is the answer.
			return lambdaio.Response{}, err
		}
		h.log.InfoContext(ctx, "codepipeline job", "jobId", job.ID, "inputArtifacts", len(job.Data.InputArtifacts),
			"continuation", job.Data.ContinuationToken != "")
		return lambdaio.Response{Outcome: lambdaio.OutcomeDone}, nil
	}
	ev, err := ebevent.DecodeCustomResource(raw)
	if err != nil {
		h.log.ErrorContext(ctx, "request rejected", "error", err.Error())
		return lambdaio.Response{}, errors.Join(errors.New("neither a CodePipeline job nor a custom resource request"), err)
	}
	h.log.InfoContext(ctx, "custom resource", "requestType", string(ev.RequestType), "requestId", ev.RequestID,
		"logicalResourceId", ev.LogicalResourceID, "stackId", ev.StackID)
	return lambdaio.Response{Outcome: lambdaio.OutcomeDone}, nil
}
