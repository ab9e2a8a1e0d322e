package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
	"github.com/lambda-pipeline/lambda-pipeline/shared/digest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// notifier is the function's handler: the table's stream batches go to the notifications use
// case, the weekly schedule's payload ({"lp":"weekly-digest"}) to the digest.
type notifier struct {
	*delivery.Notifications
	Digest *digest.Sender
	// DigestErr is why the digest cannot run (an unreadable PROJECTS): the notifications
	// still go out, the digest's invocations are refused.
	DigestErr error
	Log       *slog.Logger
}

// Invoke routes one invocation by its payload. A payload that is neither is logged and
// dropped: retrying it cannot help.
func (h *notifier) Invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	if digest.IsRequest(raw) {
		if h.DigestErr != nil {
			h.Log.ErrorContext(ctx, "weekly digest not configured; dropped", "error", h.DigestErr.Error())
			return nil, nil
		}
		rep, err := h.Digest.Send(ctx)
		if err != nil {
			// Lambda retries the invocation (twice); the projects sent are not sent again.
			h.Log.ErrorContext(ctx, "weekly digest not sent to every project; Lambda will retry", "week", rep.Week, "error", err.Error())
			return nil, err
		}
		h.Log.InfoContext(ctx, "weekly digest", "week", rep.Week, "sent", rep.Sent, "quiet", rep.Quiet, "done", rep.Done)
		return rep, nil
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		h.Log.ErrorContext(ctx, "payload is neither a stream batch nor the digest schedule's; dropped", "error", err.Error())
		return nil, nil
	}
	return h.Handle(ctx, ev)
}

// newDigest wires the weekly digest over the notifier's table and channels. Projects are the
// Projects parameter's (PROJECTS) and the table's (lp project add), as the deployer reads them.
func newDigest(getenv func(string) string, cfg aws.Config, table string, store *runstore.Dynamo, channels []notify.Channel, clock pipeline.Clock, log *slog.Logger) (*digest.Sender, error) {
	declared, err := pipeline.ParseProjects(getenv("PROJECTS"))
	if err != nil {
		return nil, err
	}
	s := &digest.Sender{Declared: declared, Projects: runstore.NewProjects(dynamodb.NewFromConfig(cfg), table),
		Runs: store, Claims: store, Marks: store, Rule: dora.DefaultRule(), Clock: clock, Log: log}
	for _, ch := range channels {
		if dc, ok := ch.(digest.Channel); ok {
			s.Channels = append(s.Channels, dc)
		}
	}
	return s, nil
}

var (
	_ digest.Runs     = (*runstore.Dynamo)(nil)
	_ digest.Marks    = (*runstore.Dynamo)(nil)
	_ digest.Projects = (*runstore.Projects)(nil)
	_ digest.Channel  = (*notify.SlackChannel)(nil)
	_ digest.Channel  = (*notify.SNS)(nil)
)
