package lambdaio

import (
	"context"
	"log/slog"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// LogNotifier writes each decided notification as one log line. It stands in for the Slack and SNS
// channels where none is configured (local runs under scripts/invoke).
type LogNotifier struct{ Logger *slog.Logger }

var _ pipeline.Notifier = LogNotifier{}

// Notify logs n.
func (l LogNotifier) Notify(ctx context.Context, n pipeline.Notification, run pipeline.Run) error {
	f := run.FailureAt(n.Attempt)
	l.Logger.InfoContext(ctx, "notification", "type", string(n.Type), "pipeline", n.Pipeline, "executionId", n.ExecutionID,
		"stage", f.Stage, "action", f.Action, "errorCode", f.Result.ErrorCode, "commitId", run.Commit.ID)
	return nil
}
