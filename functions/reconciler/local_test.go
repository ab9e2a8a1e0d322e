package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/handler"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// Under LP_STORE=memory a stale run is asked about, found unknown, and left as it is.
func TestLocalStandInLeavesRunsAlone(t *testing.T) {
	mem := runstore.NewMemory()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	ev := pipeline.Event{ID: "e1", Time: now.Add(-time.Hour), Level: pipeline.LevelPipeline, Pipeline: "my-lambda-pipeline",
		ExecutionID: "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f", State: pipeline.StateStarted}
	if _, _, err := mem.Record(context.Background(), ev, ev.Time); err != nil {
		t.Fatal(err)
	}
	r := &handler.Reconciler{Runs: mem, Pipelines: noPipeline{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Recorder: &pipeline.Recorder{Runs: mem, Outcomes: mem, Dispatch: &pipeline.Direct{Claims: mem, Notifier: handler.LogNotifier{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}},
		Now:      func() time.Time { return now }, PipelineName: "my-lambda-pipeline"}
	resp, err := r.Handle(context.Background(), json.RawMessage(`{}`))
	if err != nil || resp.Checked != 1 || resp.Missing != 1 || resp.Settled != 0 {
		t.Errorf("Handle = %+v, %v; want 1 checked, 1 missing", resp, err)
	}
}
