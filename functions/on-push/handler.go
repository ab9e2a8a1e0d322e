package main

import (
	"context"
	"encoding/json"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
)

// handler is on-push's entry point: CodeCommit's push events start runs (pushstart.Pushes);
// the RedriveSchedule rule's scheduled events run the push re-drive (pushstart.Redrive), which
// starts the head of a tracked branch that no push started.
type handler struct {
	*pushstart.Pushes
	redrive *pushstart.Redrive
}

// isSchedule reports whether the payload is an EventBridge scheduled event.
func isSchedule(raw json.RawMessage) bool {
	var probe struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Source == "aws.events" && probe.DetailType == "Scheduled Event"
}

// Handle routes one payload.
func (h *handler) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	if isSchedule(raw) {
		return h.redrive.Handle(ctx)
	}
	return h.Pushes.Handle(ctx, raw)
}
