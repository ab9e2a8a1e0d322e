package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBuildNamesMissingConfiguration(t *testing.T) {
	_, err := build(env(nil), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "RUNS_TABLE")
	require.ErrorContains(t, err, "ACCOUNT_ID")
	_, err = build(env(map[string]string{"RUNS_TABLE": "t", "ACCOUNT_ID": "111111111111"}), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "AWS_REGION")
	_, err = build(env(map[string]string{"RUNS_TABLE": "t", "ACCOUNT_ID": "eleven", "AWS_REGION": "eu-west-1"}), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "ACCOUNT_ID")
	h, err := build(env(map[string]string{"RUNS_TABLE": "t", "ACCOUNT_ID": "111111111111", "AWS_REGION": "eu-west-1"}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.NotNil(t, h.Recorder)
	assert.Equal(t, pipeline.Home{Account: "111111111111", Region: "eu-west-1"}, h.Home, "the home is the function's account and region")
}

// Issue 9, defect 6: an event forwarded from another account is recorded under its pipeline's
// ARN, apart from the home's pipeline of the same name, and belongs to no declared project.
func TestEventOfAnotherAccountIsItsOwnPipeline(t *testing.T) {
	raw, err := os.ReadFile("../../events/pipeline-failed.json")
	require.NoError(t, err)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(raw, &ev))
	name := ev["detail"].(map[string]any)["pipeline"].(string)
	at := time.Date(2026, 11, 6, 15, 0, 0, 0, time.UTC)
	clock := pipeline.ClockFunc(func() time.Time { return at })
	var logs strings.Builder
	store := runstore.NewMemory()
	h := &recording.PipelineEvents{
		Recorder: store.Recorder(lambdaio.LogNotifier{Logger: slog.New(slog.DiscardHandler)}, clock),
		Projects: &projects.Lookup{Parameter: []pipeline.Project{{Name: pipeline.ProjectOfPipeline(name), Branch: "main"}}},
		Log:      slog.New(slog.NewJSONHandler(&logs, nil)),
		Home:     pipeline.Home{Account: "999999999999", Region: ev["region"].(string)},
		Foreign:  store,
	}
	resp, err := h.Handle(context.Background(), json.RawMessage(raw))
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:codepipeline:"+ev["region"].(string)+":"+ev["account"].(string)+":"+name, resp.Pipeline)
	assert.True(t, resp.Undeclared, "a pipeline of another account belongs to no project of this one")
	assert.Len(t, resp.Notifications, 1, "its failure is told all the same")
	assert.Contains(t, resp.Notifications[0], resp.Pipeline)
	foreign, err := store.ForeignPipelines(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{resp.Pipeline}, foreign, "the reconciler will find it")

	// The home's own event is the home's pipeline, by name, and is not remembered as foreign.
	h.Home = pipeline.Home{Account: ev["account"].(string), Region: ev["region"].(string)}
	h.Foreign = runstore.NewMemory()
	resp, err = h.Handle(context.Background(), json.RawMessage(raw))
	require.NoError(t, err)
	assert.Equal(t, name, resp.Pipeline)
	assert.False(t, resp.Undeclared)
	foreign, err = h.Foreign.(*runstore.Memory).ForeignPipelines(context.Background())
	require.NoError(t, err)
	assert.Empty(t, foreign)
}

// Under LP_STORE=memory the handler records a sample event and decides its notification.
func TestBuildLocalRecordsASampleFailure(t *testing.T) {
	h, err := build(env(map[string]string{"LP_STORE": "memory"}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	raw, err := os.ReadFile("../../events/pipeline-failed.json")
	require.NoError(t, err)
	resp, err := h.Handle(context.Background(), json.RawMessage(raw))
	require.NoError(t, err)
	assert.Equal(t, lambdaio.OutcomeRecorded, resp.Outcome)
	assert.Equal(t, "FAILED", resp.Status)
	assert.Len(t, resp.Notifications, 1, "a failure without history is reported")
}

// One control plane, many projects: an event of a declared project's pipeline names the
// project; one of a pipeline that belongs to no declared project is recorded all the same,
// its failure notified, and its response and log say "undeclared".
func TestUndeclaredPipelineIsRecordedAndSaysSo(t *testing.T) {
	raw, err := os.ReadFile("../../events/pipeline-failed.json")
	require.NoError(t, err)
	at := time.Date(2026, 11, 6, 15, 0, 0, 0, time.UTC)
	clock := pipeline.ClockFunc(func() time.Time { return at })
	for _, tc := range []struct {
		name, declared string
		wantProject    string
		undeclared     bool
	}{
		{name: "declared", declared: "my-lambda", wantProject: "my-lambda"},
		{name: "undeclared", declared: "other", undeclared: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			store := runstore.NewMemory()
			h := &recording.PipelineEvents{
				Recorder: store.Recorder(lambdaio.LogNotifier{Logger: slog.New(slog.DiscardHandler)}, clock),
				Projects: &projects.Lookup{Parameter: []pipeline.Project{{Name: tc.declared, Branch: "main"}}},
				Log:      slog.New(slog.NewJSONHandler(&logs, nil)),
			}
			resp, err := h.Handle(context.Background(), json.RawMessage(raw))
			require.NoError(t, err)
			assert.Equal(t, lambdaio.OutcomeRecorded, resp.Outcome)
			assert.Equal(t, tc.wantProject, resp.Project)
			assert.Equal(t, tc.undeclared, resp.Undeclared)
			assert.Len(t, resp.Notifications, 1, "a failure is notified, declared or not")
			_, err = pipeline.LoadRun(context.Background(), store, pipeline.Key{Pipeline: resp.Pipeline, ExecutionID: resp.ExecutionID})
			require.NoError(t, err, "the run is recorded")
			assert.Equal(t, tc.undeclared, strings.Contains(logs.String(), `"project":"undeclared"`), logs.String())
		})
	}
}
