package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBuildNamesMissingConfiguration(t *testing.T) {
	_, err := build(env(nil), slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "RUNS_TABLE")
	// PIPELINE_NAME is optional: without it every declared project's pipeline is reconciled.

	_, err = build(env(map[string]string{"RUNS_TABLE": "t", "PIPELINE_NAME": "p"}), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "AWS_REGION")
}

func TestBuildWiresTheDeployedReconciler(t *testing.T) {
	r, err := build(env(map[string]string{"RUNS_TABLE": "t", "PIPELINE_NAME": "p", "AWS_REGION": "eu-west-1", "STALE_AFTER_MINUTES": "45"}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, "p", r.PipelineName)
	assert.Equal(t, 45*time.Minute, r.StaleAfter)
	assert.NotNil(t, r.Requeue, "the deployed reconciler hands unsent notifications back")
	assert.NotNil(t, r.Discover, "the deployed reconciler lists the executions CodePipeline started")
}

// Under LP_STORE=memory a stale run is asked about, found unknown, and left as it is.
func TestLocalStandInLeavesRunsAlone(t *testing.T) {
	r, err := build(env(map[string]string{"LP_STORE": "memory"}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	now := time.Now()
	ev := pipeline.Event{ID: "e1", Time: now.Add(-time.Hour), Level: pipeline.LevelPipeline, Pipeline: "my-lambda-pipeline",
		ExecutionID: "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f", State: pipeline.StateStarted}
	_, err = r.Recorder.Handle(context.Background(), ev)
	require.NoError(t, err)
	resp, err := r.Handle(context.Background(), json.RawMessage(`{}`))
	require.NoError(t, err)
	assert.Equal(t, 1, resp.Checked)
	assert.Equal(t, 1, resp.Missing)
	assert.Equal(t, 0, resp.Settled)
	assert.Nil(t, r.Requeue)
}
