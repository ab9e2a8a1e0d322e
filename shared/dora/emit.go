package dora

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Emit returns the recorder's OnEnded hook: it writes the embedded-metric-format line of each
// attempt that ends to w (the function's standard output, which CloudWatch Logs reads), so
// that the metrics cost no API call on the hot path. The lead time it reports is the run's own
// commit's (RunEnd.Changes empty): the hook reads nothing. A line that cannot be made is
// logged and skipped: metrics never hold up a run's record.
func Emit(w io.Writer, log *slog.Logger, rule Rule) func(context.Context, pipeline.Ending) {
	var mu sync.Mutex
	return func(ctx context.Context, e pipeline.Ending) {
		line, err := EMF(RunEnd{Run: e.Run, Outcome: e.Outcome, BrokenSince: e.BrokenSince}, rule)
		if err != nil {
			log.WarnContext(ctx, "no metrics for the ended run", "executionId", e.Run.ExecutionID, "error", err.Error())
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if _, err := w.Write(append(line, '\n')); err != nil {
			log.WarnContext(ctx, "metrics not written", "executionId", e.Run.ExecutionID, "error", err.Error())
		}
	}
}
