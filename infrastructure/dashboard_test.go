package infrastructure

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// search is the metric-math SEARCH form the dashboard uses: a schema {Namespace,Dimension...},
// a metric name, a statistic and a period ("Using search expressions in graphs",
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-search-expressions.html).
var search = regexp.MustCompile(`^SEARCH\('\{([^}]*)\} MetricName="([^"]+)"', '([^']+)', (\d+)\)$`)

// emitted returns, for every metric the EMF lines declare, its namespace-qualified dimension
// set ("Namespace|Dim,Dim"), dimensions sorted.
func emitted(t *testing.T, lines ...[]byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range lines {
		var doc struct {
			AWS struct {
				CloudWatchMetrics []struct {
					Namespace  string
					Dimensions [][]string
					Metrics    []struct{ Name string }
				}
			} `json:"_aws"`
		}
		require.NoError(t, json.Unmarshal(line, &doc))
		for _, d := range doc.AWS.CloudWatchMetrics {
			for _, set := range d.Dimensions {
				dims := slices.Sorted(slices.Values(set))
				for _, m := range d.Metrics {
					out[m.Name] = d.Namespace + "|" + strings.Join(dims, ",")
				}
			}
		}
	}
	return out
}

// The dashboard graphs exactly the metrics a finished run emits (shared/dora.EMF): the same
// namespace, names and dimension sets, so that no graph stays empty and no metric goes unseen.
func TestDashboardGraphsWhatRunsEmit(t *testing.T) {
	tp := mustLoad(t, "template.yaml")
	require.Equal(t, []string{"DeliveryDashboard"}, tp.resourcesOfType("AWS::CloudWatch::Dashboard"))
	_, props := tp.resource("DeliveryDashboard")
	body, err := newSampleEnv(tp, controlPlaneStack, nil).evalString(props["DashboardBody"])
	require.NoError(t, err)
	var dash struct {
		Widgets []struct {
			Type       string
			Properties struct {
				Region  string
				Metrics [][]map[string]any
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &dash), "DashboardBody is JSON once substituted")

	graphed := map[string]string{}
	var stats []string
	for _, w := range dash.Widgets {
		if w.Type != "metric" {
			continue
		}
		assert.Equal(t, "eu-west-1", w.Properties.Region)
		for _, m := range w.Properties.Metrics {
			require.Len(t, m, 1)
			expr, _ := m[0]["expression"].(string)
			s := search.FindStringSubmatch(expr)
			require.NotNil(t, s, "expression %q", expr)
			schema := strings.Split(s[1], ",")
			dims := slices.Sorted(slices.Values(schema[1:]))
			key := schema[0] + "|" + strings.Join(dims, ",")
			if prev, ok := graphed[s[2]]; ok {
				assert.Equal(t, prev, key, "%s graphed with two dimension sets", s[2])
			}
			graphed[s[2]] = key
			stats = append(stats, s[2]+" "+s[3])
		}
	}

	// Runs that, between them, emit every metric: a failure in a stage, a deploy that restores.
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	failed := pipeline.Run{Pipeline: "my-lambda-pipeline", ExecutionID: "f", StartedAt: t0, EndedAt: t0.Add(2 * time.Minute),
		Progress: pipeline.Progress{Status: pipeline.StatusFailed, Attempt: 1, At: t0.Add(2 * time.Minute)},
		Failures: []pipeline.Failure{{Stage: "BuildAndTest", Action: "Build", Attempt: 1}}}
	deployed := pipeline.Run{Pipeline: "my-lambda-pipeline", ExecutionID: "d", StartedAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Hour + 2*time.Minute),
		Progress: pipeline.Progress{Status: pipeline.StatusSucceeded, Attempt: 1, At: t0.Add(time.Hour + 2*time.Minute)},
		Commit:   pipeline.Commit{ID: "9b3e7d2c", PushedAt: t0.Add(time.Hour)},
		Stages:   map[string]pipeline.Stage{dora.DefaultDeployStage: {Name: dora.DefaultDeployStage}}}
	var lines [][]byte
	for _, e := range []dora.RunEnd{{Run: failed}, {Run: deployed, BrokenSince: failed.EndedAt}} {
		line, err := dora.EMF(e, dora.DefaultRule())
		require.NoError(t, err)
		lines = append(lines, line)
	}
	emits := emitted(t, lines...)
	for _, m := range []string{dora.MetricRuns, dora.MetricRunSucceeded, dora.MetricRunFailed, dora.MetricRunDuration,
		dora.MetricFailuresByStage, dora.MetricDeployments, dora.MetricLeadTime, dora.MetricTimeToRestore} {
		assert.Contains(t, emits, m, "the sample runs emit %s", m)
		assert.True(t, strings.HasPrefix(emits[m], dora.Namespace+"|"), "%s in namespace %s", m, dora.Namespace)
	}
	assert.Equal(t, emits, graphed)

	// The graphs the docs promise: runs by status, failures by stage, duration p50/p90, the four keys.
	for _, want := range []string{"Runs Sum", "FailuresByStage Sum", "RunDuration p50", "RunDuration p90",
		"Deployments Sum", "LeadTime p50", "RunFailed Average", "TimeToRestore p50"} {
		assert.Contains(t, stats, want)
	}
}

// The dashboard has its output, and its name stays within the account's namespace of the stack.
func TestDashboardOutput(t *testing.T) {
	tp := mustLoad(t, "template.yaml")
	env := newSampleEnv(tp, controlPlaneStack, nil)
	_, props := tp.resource("DeliveryDashboard")
	name, err := env.evalString(props["DashboardName"])
	require.NoError(t, err)
	assert.Equal(t, controlPlaneStack+"-delivery", name)
	assert.Regexp(t, `^[A-Za-z0-9_-]{1,255}$`, name, "DashboardName: letters, digits, - and _")
	out, ok := tp.section("Outputs")["DeliveryDashboardUrl"].(map[string]any)
	require.True(t, ok)
	_, _, isSub := intrinsic(out["Value"])
	assert.True(t, isSub)
}
