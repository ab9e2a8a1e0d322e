package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

// jobRunner and customRunner are the two entry points (deploy.JobHandler, deploy.CustomResource).
type jobRunner interface {
	Handle(ctx context.Context, job events.CodePipelineJob) (deploy.JobReport, error)
	Reject(ctx context.Context, jobID string, reason error) (deploy.JobReport, error)
}

type customRunner interface {
	Handle(ctx context.Context, ev cfn.Event) (deploy.CustomReply, error)
}

type handler struct {
	log    *slog.Logger
	jobs   jobRunner
	custom customRunner
}

// Handle routes a CodePipeline job or a custom resource request. The job carries temporary
// artifact credentials, and the request a presigned response URL: neither is logged.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	if ebevent.IsJob(raw) {
		job, err := ebevent.DecodeJob(raw)
		if err != nil {
			h.log.ErrorContext(ctx, "job rejected", "error", err.Error())
			// A job with an id is answered, so that the action fails now rather than at
			// CodePipeline's timeout; without one there is nothing to answer.
			if id := jobID(raw); id != "" {
				if _, rerr := h.jobs.Reject(ctx, id, err); rerr != nil {
					return lambdaio.Response{}, rerr
				}
			}
			return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: err.Error()}, nil
		}
		rep, err := h.jobs.Handle(ctx, job)
		if err != nil {
			return lambdaio.Response{}, err
		}
		return lambdaio.Response{Outcome: lambdaio.OutcomeDone, Status: rep.Result, Reason: rep.Summary}, nil
	}
	ev, err := ebevent.DecodeCustomResource(raw)
	if err != nil {
		h.log.ErrorContext(ctx, "request rejected", "error", err.Error())
		return lambdaio.Response{}, errors.Join(errors.New("neither a CodePipeline job nor a custom resource request"), err)
	}
	reply, err := h.custom.Handle(ctx, ev)
	if err != nil {
		return lambdaio.Response{}, err
	}
	return lambdaio.Response{Outcome: lambdaio.OutcomeDone, Status: string(reply.Status), Reason: reply.Reason}, nil
}

// jobID reads the id of a job that does not decode as a whole.
func jobID(raw []byte) string {
	var probe struct {
		Job struct {
			ID string `json:"id"`
		} `json:"CodePipeline.job"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	return probe.Job.ID
}
