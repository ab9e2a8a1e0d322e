package dora_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// The recorder emits one EMF line per attempt that ends, not one per delivery of its event,
// and a recovery carries the time it restored.
func TestRecorderEmitsOneLinePerEndedAttempt(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	clock := pipeline.ClockFunc(func() time.Time { return t0 })
	mem := runstore.NewMemory()
	r := mem.Recorder(noop{}, clock).OnEnded(dora.Emit(&out, slog.New(slog.DiscardHandler), dora.DefaultRule()))
	end := func(exec string, s pipeline.State, at time.Time) {
		for _, ev := range []pipeline.Event{
			{ID: exec + "-start", Time: at.Add(-2 * time.Minute), Level: pipeline.LevelPipeline, Pipeline: "shop-pipeline", ExecutionID: exec, State: pipeline.StateStarted,
				Trigger: pipeline.Trigger{Type: "StartPipelineExecution"}},
			{ID: exec + "-build", Time: at.Add(-time.Minute), Level: pipeline.LevelStage, Pipeline: "shop-pipeline", ExecutionID: exec, Stage: "BuildAndTest", State: s},
			{ID: exec + "-end", Time: at, Level: pipeline.LevelPipeline, Pipeline: "shop-pipeline", ExecutionID: exec, State: s},
		} {
			for range 2 { // every event delivered twice
				_, err := r.Handle(context.Background(), ev)
				require.NoError(t, err)
			}
		}
	}
	end("e1", pipeline.StateFailed, t0)
	end("e2", pipeline.StateSucceeded, t0.Add(time.Hour))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	var last map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &last))
	assert.Equal(t, "shop-pipeline", last["Pipeline"])
	assert.EqualValues(t, 3600, last["TimeToRestore"], "restored an hour after the failure: %s", lines[1])
}

type noop struct{}

func (noop) Notify(context.Context, pipeline.Notification, pipeline.Run) error { return nil }
