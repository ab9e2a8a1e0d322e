package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
)

var update = flag.Bool("update", false, "rewrite docs/metrics-week.svg from the replayed week")

const (
	week        = "../../events/replay/one-week.ndjson"
	weekSVG     = "../../docs/metrics-week.svg"
	weekPipe    = "my-lambda-pipeline"
	weekFirst   = "2026-11-23T09:00:01Z" // the first event of the replayed week
	weekLast    = "2026-11-25T10:22:18Z" // the last
	weekSeconds = 2*86400 + 3600 + 22*60 + 17
)

// The replayed week, checked by hand (docs/metrics.md walks through it):
//
//	…001  09:00:01–09:01:54 Mon  FAILED in BuildAndTest      commit 4f2a9c1e
//	…002  11:20:01–11:22:18 Mon  SUCCEEDED, deployed          commit 9b3e7d2c
//	…003  14:00:01–14:02:28 Tue  FAILED in CreateUpdateLambda commit c81d4e6f
//	…004  10:20:01–10:22:18 Wed  SUCCEEDED, deployed          commit e5a7b3c9
//
// Deploys: 2 over 2 days 1:22:17 (177,737 s). Pushes are not replayed, so a change enters the
// pipeline when its run starts: lead times 8,537 s (4f2a, delivered by …002), 137 s, 73,337 s
// (c81d, delivered by …004) and 137 s: median (137+8,537)/2 = 4,337 s, mean 20,537 s.
// Change failure rate 2/4. Streaks: 09:01:54 → 11:22:18 (8,424 s) and Tue 14:02:28 → Wed
// 10:22:18 (73,190 s): median 40,807 s.
func TestReplayReportsMetrics(t *testing.T) {
	stdout, stderr, status := lp(t, "replay", "--json", week)
	require.Equal(t, 0, status, stderr)
	var got replayReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Len(t, got.Metrics, 1)
	m := got.Metrics[weekPipe]
	assert.Equal(t, weekFirst, m.Since.Format(time.RFC3339))
	assert.Equal(t, weekLast, m.Until.Format(time.RFC3339))
	assert.Equal(t, 2, m.Deployments)
	assert.InDelta(t, 2*86400.0/weekSeconds, m.DeploymentFrequencyPerDay, 1e-9)
	assert.Equal(t, 4337.0, *m.LeadTimeSeconds)
	assert.Equal(t, 20537.0, *m.LeadTimeMeanSeconds)
	assert.Equal(t, 0.5, *m.ChangeFailureRate)
	assert.Equal(t, 40807.0, *m.TimeToRestoreSeconds)

	// The contract's field names, and null for what cannot be measured.
	var raw struct {
		Metrics map[string]map[string]any `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	for _, f := range []string{"deploymentFrequencyPerDay", "leadTimeSeconds", "changeFailureRate", "timeToRestoreSeconds"} {
		assert.Contains(t, raw.Metrics[weekPipe], f)
	}
}

func TestReplayMetricsWhenNothingToMeasure(t *testing.T) {
	// Only a push: nothing replayed, metrics is an empty object.
	stdout, stderr, status := lp(t, "replay", "--json", "../../events/push-main.json")
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, `"metrics": {}`)

	// One failed run: a pipeline with no deploy, no lead time and nothing restored.
	stdout, stderr, status = lp(t, "replay", "--json", "../../events/pipeline-failed.json")
	require.Equal(t, 0, status, stderr)
	var raw struct {
		Metrics map[string]map[string]any `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	require.Len(t, raw.Metrics, 1)
	for _, m := range raw.Metrics {
		assert.Equal(t, 0.0, m["deploymentFrequencyPerDay"])
		assert.Nil(t, m["leadTimeSeconds"])
		assert.Equal(t, 1.0, m["changeFailureRate"])
		assert.Nil(t, m["timeToRestoreSeconds"])
	}
}

// docs/metrics-week.svg is what the project draws from the replayed week: regenerate it with
// go test ./cmd/lp -run TestWeekPicture -update.
func TestWeekPicture(t *testing.T) {
	out := filepath.Join(t.TempDir(), "week.svg")
	_, stderr, status := lp(t, "replay", "--svg", out, week)
	require.Equal(t, 0, status, stderr)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(weekSVG, got, 0o644))
	}
	want, err := os.ReadFile(weekSVG)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "docs/metrics-week.svg is stale: go test ./cmd/lp -run TestWeekPicture -update")
	// It shows the numbers the replay reports.
	for _, s := range []string{"0.97/day", "1h12m", "50%", "11h20m", "2 failed of 4 decisive runs"} {
		assert.Contains(t, string(got), s)
	}
}

// lp metrics reads what lp replay stored in the runs table (dynalite), as it reads a deployed
// table: the same numbers over a window that holds the whole week.
func TestMetricsFromTheTable(t *testing.T) {
	// Credentials for the local stand-in, so that the SDK looks for none elsewhere.
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	srv := dynalitetest.Start(t)
	table := dynalitetest.UniqueTableName(t)
	db := []string{"--endpoint", srv.Endpoint(), "--table", table}

	// An empty table (read commands create none: lp init-local does): valid JSON, an empty list.
	_, stderr, status := lp(t, append([]string{"init-local"}, db...)...)
	require.Equal(t, 0, status, stderr)
	stdout, stderr, status := lp(t, append([]string{"metrics", "--json"}, db...)...)
	require.Equal(t, 0, status, stderr)
	assert.JSONEq(t, "[]", stdout)

	_, stderr, status = lp(t, append([]string{"replay"}, append(db, week)...)...)
	require.Equal(t, 0, status, stderr)

	window := []string{"--since", "3d", "--until", "2026-11-25T10:22:19Z"}
	for _, which := range [][]string{nil, {"--project", "my-lambda"}, {"--pipeline", weekPipe}} {
		args := append(append(append([]string{"metrics", "--json"}, db...), window...), which...)
		stdout, stderr, status = lp(t, args...)
		require.Equal(t, 0, status, stderr)
		var got []pipelineMetrics
		require.NoError(t, json.Unmarshal([]byte(stdout), &got))
		require.Len(t, got, 1, "%v", which)
		m := got[0]
		assert.Equal(t, weekPipe, m.Pipeline)
		assert.Equal(t, "my-lambda", m.Project)
		assert.Equal(t, 2, m.Current.Deployments)
		assert.InDelta(t, 2/3.0, m.Current.DeploymentFrequencyPerDay, 1e-9)
		assert.Equal(t, 4337.0, *m.Current.LeadTimeSeconds)
		assert.Equal(t, 0.5, *m.Current.ChangeFailureRate)
		assert.Equal(t, 40807.0, *m.Current.TimeToRestoreSeconds)
		assert.Zero(t, m.Previous.Deployments)
		assert.Nil(t, m.Previous.ChangeFailureRate, "no run in the previous window")
		require.Len(t, m.Daily, 3)
		assert.Equal(t, []int{0, 1, 1}, []int{m.Daily[0].Deployments, m.Daily[1].Deployments, m.Daily[2].Deployments})
	}

	// The table: every line fits in 80 columns and shows the keys.
	stdout, stderr, status = lp(t, append(append([]string{"metrics"}, db...), window...)...)
	require.Equal(t, 0, status, stderr)
	for _, line := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		assert.LessOrEqual(t, utf8.RuneCountInString(line), 80, "%q", line)
	}
	for _, s := range []string{"0.67/day", "1h12m", "mean 5h42m", "50%", "2 of 4 runs", "11h20m", "deploys   ·██", "failures  █·█"} {
		assert.Contains(t, stdout, s)
	}

	// A window without runs says so.
	stdout, stderr, status = lp(t, append(append([]string{"metrics"}, db...), "--since", "1d", "--until", "2026-01-01T00:00:00Z")...)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "no runs")
}

func TestMetricsUsage(t *testing.T) {
	for _, args := range [][]string{{"metrics", "--since", "0d"}, {"metrics", "--since", "soon"}, {"metrics", "extra"}, {"metrics", "--until", "yesterday"}} {
		_, _, status := lp(t, args...)
		assert.Equal(t, 2, status, "%v", args)
	}
	d, err := parseSince("2w")
	require.NoError(t, err)
	assert.Equal(t, 14*24*time.Hour, d)
	d, err = parseSince("36h")
	require.NoError(t, err)
	assert.Equal(t, 36*time.Hour, d)
}

func TestTrendAndSparkline(t *testing.T) {
	assert.Equal(t, "↑ 100% better", dora.Trend(2, 1, true, true, true))
	assert.Equal(t, "↑ 50% worse", dora.Trend(0.75, 0.5, true, true, false))
	assert.Equal(t, "↓ 25% better", dora.Trend(45, 60, true, true, false))
	assert.Equal(t, "=", dora.Trend(1, 1, true, true, true))
	assert.Equal(t, "↑ better", dora.Trend(1, 0, true, true, true))
	assert.Equal(t, "", dora.Trend(1, 0, true, false, true), "nothing to compare with")

	days := make([]dora.Day, 90)
	days[0].Deployments, days[1].Deployments, days[89].Failures = 4, 4, 1
	dep, fail := sparklines(days, 30)
	assert.Equal(t, 30, utf8.RuneCountInString(dep), "three days a cell")
	assert.Equal(t, "█"+strings.Repeat("·", 29), dep)
	assert.Equal(t, strings.Repeat("·", 29)+"▁", fail)
}
