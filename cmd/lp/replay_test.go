package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

func noEnv(string) string { return "" }

func lp(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	status = run(context.Background(), args, &out, &errb, noEnv)
	return out.String(), errb.String(), status
}

type expected struct {
	// Args are the replay's other arguments, e.g. the control plane's home (--home).
	Args []string `json:"args"`
	Runs []struct {
		Pipeline    string            `json:"pipeline"`
		ExecutionID string            `json:"executionId"`
		Status      string            `json:"status"`
		Stages      map[string]string `json:"stages"`
	} `json:"runs"`
	Notifications []replayNotification `json:"notifications"`
}

func noteKey(n replayNotification) string {
	k := n.Type + " " + n.Pipeline + " " + n.ExecutionID
	if n.Type == "failed" {
		k += " " + n.Stage + "/" + n.Action
	}
	return k
}

// TestScenarios checks lp replay --json against every recorded scenario: each run's status and
// stage statuses, the number of runs, and the notifications (type, pipeline, execution, and
// for a failure its stage and action) as a multiset. A scenario's expectation may give the
// replay more arguments ("args"), such as the home of same-name-in-two-accounts (issue 9,
// defect 6: a failure in one account and a success in another are no recovery).
func TestScenarios(t *testing.T) {
	var files []string
	for _, dir := range []string{"testdata/scenarios/shared", "testdata/scenarios"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.GreaterOrEqual(t, len(files), 9)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".ndjson")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(filepath.Dir(f), "expected", name+".json"))
			require.NoError(t, err)
			var want expected
			require.NoError(t, json.Unmarshal(data, &want))

			stdout, stderr, status := lp(t, append(append([]string{"replay", "--json"}, want.Args...), f)...)
			require.Equal(t, 0, status, stderr)
			var got replayReport
			require.NoError(t, json.Unmarshal([]byte(stdout), &got), "stdout is one JSON document")
			assert.Equal(t, 0, got.Rejected)

			runs := map[string]replayRun{}
			for _, r := range got.Runs {
				runs[r.Pipeline+" "+r.ExecutionID] = r
			}
			assert.Len(t, runs, len(want.Runs))
			for _, w := range want.Runs {
				have, ok := runs[w.Pipeline+" "+w.ExecutionID]
				if !assert.True(t, ok, "run %s missing", w.ExecutionID) {
					continue
				}
				assert.Equal(t, w.Status, have.Status, "run %s", w.ExecutionID)
				assert.Equal(t, w.Stages, have.Stages, "run %s", w.ExecutionID)
			}
			var gotNotes, wantNotes []string
			for _, n := range got.Notifications {
				gotNotes = append(gotNotes, noteKey(n))
			}
			for _, n := range want.Notifications {
				wantNotes = append(wantNotes, noteKey(n))
			}
			sort.Strings(gotNotes)
			sort.Strings(wantNotes)
			assert.Equal(t, wantNotes, gotNotes)
		})
	}
}

func TestReplayCountsBadLinesAndKeepsGoodOnes(t *testing.T) {
	good, err := os.ReadFile("testdata/scenarios/shared/deploy-fails.ndjson")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	first := lines[0]
	bad := []string{
		`{"detail-type": "CodePipeline Pipeline Execution State Change", `, // invalid JSON
		strings.Replace(first, "CodePipeline Pipeline Execution State Change", "CodeBuild Build State Change", 1),
		strings.Replace(first, `"execution-id"`, `"execution-idx"`, 1),
		strings.Replace(first, `"state": "STARTED"`, `"state": "EXPLODED"`, 1),
		strings.Replace(first, `"time": "2026-03-02T09:00:01Z"`, `"time": "yesterday"`, 1),
	}
	var mixed []string
	for i, l := range lines {
		mixed = append(mixed, l)
		if i < len(bad) {
			mixed = append(mixed, bad[i], "")
		}
	}
	path := filepath.Join(t.TempDir(), "mixed.ndjson")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(mixed, "\n")), 0o600))

	stdout, stderr, status := lp(t, "replay", "--json", path)
	require.Equal(t, 0, status)
	var got replayReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	assert.Equal(t, len(bad), got.Rejected)
	require.Len(t, got.Runs, 1)
	assert.Equal(t, "FAILED", got.Runs[0].Status)
	require.Len(t, got.Notifications, 1)
	assert.Equal(t, "CreateUpdateLambda", got.Notifications[0].Stage)
	for _, field := range []string{"invalid JSON", "detail-type", "detail.execution-id", "detail.state", "time"} {
		assert.Contains(t, stderr, field)
	}
	assert.Equal(t, len(bad), strings.Count(stderr, "rejected"), stderr)
}

func TestReplayAcceptsArraysAndPrettyFiles(t *testing.T) {
	lines, err := os.ReadFile("testdata/scenarios/shared/success.ndjson")
	require.NoError(t, err)
	var events []json.RawMessage
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		events = append(events, json.RawMessage(l))
	}
	arr, err := json.MarshalIndent(events, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "success.json")
	require.NoError(t, os.WriteFile(path, arr, 0o600))
	stdout, _, status := lp(t, "replay", "--json", path, "../../events/pipeline-failed.json", "../../events/push-main.json")
	require.Equal(t, 0, status)
	var got replayReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	assert.Len(t, got.Runs, 2)
	assert.Equal(t, 1, got.Pushes, "the push is counted as a push")
	assert.Equal(t, 0, got.Skipped, "a push is not a skipped event")
	assert.Equal(t, 0, got.Rejected)
}

func TestReplayUnreadableFile(t *testing.T) {
	_, stderr, status := lp(t, "replay", "--json", filepath.Join(t.TempDir(), "missing.ndjson"))
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "missing.ndjson")
	_, _, status = lp(t, "replay")
	assert.Equal(t, 2, status)
	_, _, status = lp(t, "frobnicate")
	assert.Equal(t, 2, status)
}

func TestReplayHumanOutput(t *testing.T) {
	stdout, stderr, status := lp(t, "replay", "testdata/scenarios/shared/red-then-green.ndjson", "../../events/push-main.json")
	require.Equal(t, 0, status)
	// The push is said, not dropped.
	assert.Contains(t, stdout, "1 CodeCommit push not replayed")
	assert.Contains(t, stderr, "push-main.json: not replayed: a CodeCommit push (referenceUpdated branch main of my-lambda)")
	assert.Contains(t, stdout, "notify FAILED")
	assert.Contains(t, stdout, "BuildAndTest/Build")
	assert.Contains(t, stdout, "notify RECOVERED")
	assert.Contains(t, stdout, fmt.Sprintf("%d runs", 2))
}

func TestReplayRender(t *testing.T) {
	stdout, stderr, status := lp(t, "replay", "--render", "testdata/scenarios/shared/red-then-green.ndjson")
	require.Equal(t, 0, status, stderr)
	assert.Equal(t, 2, strings.Count(stdout, "---- Slack\n"))
	assert.Equal(t, 2, strings.Count(stdout, "---- SNS (e-mail)\n"))
	// As people see them: a sketch of the Slack message, not its JSON; the e-mail's headers.
	assert.NotContains(t, stdout, `"blocks"`)
	assert.Contains(t, stdout, "│ # :red_circle: search failed")
	assert.Contains(t, stdout, "│ [Open execution] https://")
	assert.Contains(t, stdout, "Subject: FAILED search: BuildAndTest/Build")
	assert.Contains(t, stdout, "Attributes: pipeline=search status=FAILED type=failed")
	assert.NotContains(t, stdout, "map[")
	assert.Contains(t, stdout, "recovered")

	// --render=json: one JSON document with the payloads as sent.
	stdout, stderr, status = lp(t, "replay", "--render=json", "testdata/scenarios/shared/red-then-green.ndjson")
	require.Equal(t, 0, status, stderr)
	var payloads []struct {
		Notification string          `json:"notification"`
		Slack        json.RawMessage `json:"slack"`
		SNS          struct {
			Subject    string            `json:"subject"`
			Attributes map[string]string `json:"messageAttributes"`
		} `json:"sns"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &payloads), "stdout is one JSON document")
	require.Len(t, payloads, 2)
	assert.Contains(t, string(payloads[0].Slack), `"blocks"`)
	assert.Equal(t, "failed", payloads[0].SNS.Attributes["type"])
}

// TestReplayCountsStoreErrorsAndGoesOn: an event the store refuses is counted and reported,
// and the events after it are still recorded (issue 9, defect 9: the replay stopped the whole
// file at the first store error).
func TestReplayCountsStoreErrorsAndGoesOn(t *testing.T) {
	data, err := os.ReadFile("testdata/scenarios/shared/success.ndjson")
	require.NoError(t, err)
	inputs := split("success.ndjson", data)
	calls := 0
	handle := func(_ context.Context, raw json.RawMessage) (lambdaio.Response, error) {
		calls++
		if calls == 2 {
			return lambdaio.Response{}, fmt.Errorf("record stage event: %w", errors.New("ValidationException: Item size has exceeded the maximum allowed size"))
		}
		return lambdaio.Response{Outcome: lambdaio.OutcomeRecorded, Pipeline: "payments", ExecutionID: "e"}, nil
	}
	var report replayReport
	var stderr bytes.Buffer
	touched := replayInputs(context.Background(), handle, inputs, &report, &stderr)
	assert.Equal(t, len(inputs), calls, "every event after the failing one is handed on")
	assert.Equal(t, 1, report.StoreErrors)
	assert.Contains(t, stderr.String(), "success.ndjson:2: not recorded: record stage event: ValidationException")
	assert.Len(t, touched, 1)
}

// --home keeps the pipelines of other accounts and regions apart, and names them with their
// account and region; without it every event is the home's (issue 9, defect 6).
func TestReplayHome(t *testing.T) {
	const scenario = "testdata/scenarios/same-name-in-two-accounts.ndjson"
	stdout, stderr, status := lp(t, "replay", "--home", "111111111111/eu-west-1", scenario)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "app (222222222222/us-east-1)")
	assert.Contains(t, stdout, "notify FAILED")
	assert.NotContains(t, stdout, "notify RECOVERED")

	stdout, stderr, status = lp(t, "replay", scenario)
	require.Equal(t, 0, status, stderr)
	assert.NotContains(t, stdout, "222222222222", "without a home, every pipeline is the home's")

	for _, bad := range []string{"111111111111", "eu-west-1/111111111111", "1111/eu-west-1", "111111111111/"} {
		_, stderr, status = lp(t, "replay", "--home", bad, scenario)
		assert.Equal(t, 2, status, "--home %s", bad)
		assert.Contains(t, stderr, "ACCOUNT/REGION")
	}
}
