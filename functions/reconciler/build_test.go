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
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
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
	assert.NotNil(t, r.SweepApprovals, "the deployed reconciler tells approval requests nothing told")
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

type noProjects struct{}

func (noProjects) ListProjects(context.Context) ([]pipeline.ProjectDeclaration, error) {
	return nil, nil
}

// collect records what the recorder sends.
type collect struct{ sent []pipeline.Notification }

func (c *collect) Notify(_ context.Context, n pipeline.Notification, _ pipeline.Run) error {
	c.sent = append(c.sent, n)
	return nil
}

// Issue 9, defect 6: the deployed reconciler also goes over the pipelines of other accounts
// and regions that on-pipeline-event remembered. It never asks CodePipeline about them, but
// takes their decisions again: a foreign run whose end was recorded while its decision was
// not (every delivery failed after the write) is still told.
func TestAccountReconcilerRedrivesForeignPipelines(t *testing.T) {
	const foreign = "arn:aws:codepipeline:us-east-1:222222222222:app-pipeline"
	now := time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)
	clock := pipeline.ClockFunc(func() time.Time { return now })
	mem := runstore.NewMemory()
	sent := &collect{}
	ev := func(id string, s pipeline.State, at time.Time) pipeline.Event {
		return pipeline.Event{ID: id, Time: at, Level: pipeline.LevelPipeline, Pipeline: foreign, ExecutionID: "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f",
			State: s, Attempt: 1, Trigger: pipeline.Trigger{Type: "StartPipelineExecution"}}
	}
	for _, e := range []pipeline.Event{ev("e1", pipeline.StateStarted, now.Add(-40*time.Minute)), ev("e2", pipeline.StateFailed, now.Add(-20*time.Minute))} {
		_, err := mem.Append(context.Background(), e)
		require.NoError(t, err)
	}
	require.NoError(t, mem.RememberForeign(context.Background(), foreign))
	a := &accountReconciler{
		Reconciler: &reconcile.Reconciler{Runs: mem, Executions: noPipeline{}, Recorder: mem.Recorder(sent, clock),
			Log: slog.New(slog.DiscardHandler), Clock: clock},
		projects: noProjects{}, foreign: mem,
	}
	resp, err := a.Handle(context.Background(), json.RawMessage(`{}`))
	require.NoError(t, err)
	assert.Equal(t, 1, resp.Foreign)
	assert.Equal(t, 1, resp.Redriven)
	assert.Equal(t, 0, resp.Checked+resp.Missing, "CodePipeline is not asked about a pipeline of another account")
	require.Len(t, sent.sent, 1)
	assert.Equal(t, "failed#"+foreign+"#0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f", sent.sent[0].Key())
}
