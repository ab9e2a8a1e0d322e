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

// Handle decodes one CodeCommit Repository State Change.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	p, err := ebevent.DecodePush(raw)
	if err != nil {
		h.log.WarnContext(ctx, "event rejected", "error", err.Error())
		return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: err.Error()}, nil
	}
	h.log.InfoContext(ctx, "push", "eventId", p.ID, "repository", p.Repository, "event", p.Kind,
		"referenceType", p.RefType, "reference", p.RefName, "commitId", p.CommitID)
	return lambdaio.Response{Outcome: lambdaio.OutcomeRecorded}, nil
}
