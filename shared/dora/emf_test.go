package dora

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// emfDoc decodes an EMF line and checks it against the specification's rules
// ("Specification: Embedded metric format"): a root _aws object with an integer millisecond
// Timestamp and CloudWatchMetrics directives; every dimension a string member of the root, every
// metric a number (or an array of up to 100 numbers) member of the root, with a CloudWatch unit.
// It returns the root, and the metrics by name with the dimension set each was declared with.
func emfDoc(t *testing.T, line []byte) (map[string]any, map[string][]string) {
	t.Helper()
	require.NotContains(t, string(line), "\n", "one log line")
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&doc))
	aws, ok := doc["_aws"].(map[string]any)
	require.True(t, ok, "_aws object")
	assert.Len(t, aws, 2, "_aws has Timestamp and CloudWatchMetrics only")
	ts, ok := aws["Timestamp"].(json.Number)
	require.True(t, ok, "Timestamp is a number")
	_, err := ts.Int64()
	require.NoError(t, err, "Timestamp is an integer of milliseconds")
	dirs, ok := aws["CloudWatchMetrics"].([]any)
	require.True(t, ok)
	units := []string{"Seconds", "Count"}
	metrics := map[string][]string{}
	for _, d := range dirs {
		dir := d.(map[string]any)
		assert.Equal(t, Namespace, dir["Namespace"])
		assert.Len(t, dir, 3, "a directive has Namespace, Dimensions and Metrics only")
		sets := dir["Dimensions"].([]any)
		require.Len(t, sets, 1)
		var set []string
		for _, name := range sets[0].([]any) {
			v, ok := doc[name.(string)].(string)
			assert.True(t, ok && v != "", "dimension %s is a non-empty string member", name)
			set = append(set, name.(string))
		}
		assert.LessOrEqual(t, len(set), 30)
		for _, m := range dir["Metrics"].([]any) {
			def := m.(map[string]any)
			name := def["Name"].(string)
			assert.Contains(t, units, def["Unit"], "unit of %s", name)
			switch v := doc[name].(type) {
			case json.Number:
			case []any:
				assert.LessOrEqual(t, len(v), 100)
				for _, x := range v {
					assert.IsType(t, json.Number(""), x, "values of %s", name)
				}
			default:
				t.Errorf("metric %s is %T, want a number", name, doc[name])
			}
			_, dup := metrics[name]
			assert.False(t, dup, "metric %s declared once", name)
			metrics[name] = set
		}
	}
	return doc, metrics
}

func num(t *testing.T, v any) float64 {
	t.Helper()
	f, err := v.(json.Number).Float64()
	require.NoError(t, err)
	return f
}

func names(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEMFFailedRun(t *testing.T) {
	r := runOf("b", "bbbb", at(2, 0), at(2, 10), pipeline.StatusFailed, toBuild...)
	r.Failures = []pipeline.Failure{{Stage: "BuildAndTest", Action: "Build", Attempt: 1}}
	line, err := EMF(RunEnd{Run: r}, DefaultRule())
	require.NoError(t, err)
	doc, metrics := emfDoc(t, line)

	assert.Equal(t, []string{MetricFailuresByStage, MetricRunDuration, MetricRunFailed, MetricRunSucceeded, MetricRuns}, names(metrics))
	assert.Equal(t, []string{"Pipeline", "Project", "Stage"}, metrics[MetricFailuresByStage])
	assert.Equal(t, []string{"Pipeline", "Project", "Status"}, metrics[MetricRuns])
	assert.Equal(t, []string{"Pipeline", "Project"}, metrics[MetricRunFailed])
	assert.Equal(t, pl, doc["Pipeline"])
	assert.Equal(t, "shop", doc["Project"])
	assert.Equal(t, "FAILED", doc["Status"])
	assert.Equal(t, "BuildAndTest", doc["Stage"])
	assert.Equal(t, 600.0, num(t, doc[MetricRunDuration]))
	assert.Equal(t, 1.0, num(t, doc[MetricRunFailed]))
	assert.Equal(t, 0.0, num(t, doc[MetricRunSucceeded]))
	assert.Equal(t, "b", doc["executionId"])
	assert.Equal(t, "bbbb", doc["commitId"])
	ts, _ := doc["_aws"].(map[string]any)["Timestamp"].(json.Number).Int64()
	assert.Equal(t, at(2, 10).UnixMilli(), ts)
}

func TestEMFRecoveringDeploy(t *testing.T) {
	d := pushed(runOf("d", "dddd", at(5, 0), at(5, 10), pipeline.StatusSucceeded, all...), at(4, 55))
	line, err := EMF(RunEnd{Run: d, BrokenSince: at(2, 10)}, DefaultRule())
	require.NoError(t, err)
	doc, metrics := emfDoc(t, line)
	assert.Equal(t, []string{MetricDeployments, MetricLeadTime, MetricRunDuration, MetricRunFailed, MetricRunSucceeded, MetricRuns, MetricTimeToRestore}, names(metrics))
	assert.Equal(t, 1.0, num(t, doc[MetricDeployments]))
	assert.Equal(t, 900.0, num(t, doc[MetricLeadTime]), "push 04:55 → end 05:10")
	assert.Equal(t, 3*3600.0, num(t, doc[MetricTimeToRestore]))
	assert.NotContains(t, doc, "Stage")

	// With the changes it delivers (as Delivered finds them), one lead time per change.
	history := []pipeline.Run{
		pushed(runOf("b", "bbbb", at(2, 0), at(2, 10), pipeline.StatusFailed, toBuild...), at(2, 0)),
		pushed(runOf("c", "cccc", at(3, 0), at(3, 10), pipeline.StatusFailed, toBuild...), at(3, 0)),
	}
	changes := Delivered(history, d, DefaultRule())
	assert.Equal(t, []time.Time{at(2, 0), at(3, 0), at(4, 55)}, changes)
	line, err = EMF(RunEnd{Run: d, Changes: changes}, DefaultRule())
	require.NoError(t, err)
	doc, _ = emfDoc(t, line)
	var leads []float64
	for _, v := range doc[MetricLeadTime].([]any) {
		leads = append(leads, num(t, v))
	}
	assert.Equal(t, []float64{3*3600 + 600, 2*3600 + 600, 900}, leads)
}

func TestEMFQuietRuns(t *testing.T) {
	for _, s := range []pipeline.Status{pipeline.StatusSuperseded, pipeline.StatusStopped, pipeline.StatusCanceled} {
		r := runOf("s", "ssss", at(1, 0), at(1, 5), s, all...)
		line, err := EMF(RunEnd{Run: r}, DefaultRule())
		require.NoError(t, err)
		doc, metrics := emfDoc(t, line)
		assert.Equal(t, []string{MetricRuns}, names(metrics), "%s: counted by status only", s)
		assert.Equal(t, string(s), doc["Status"])
	}
	// A success that never reached the deploy stage is no deploy.
	r := runOf("a", "aaaa", at(1, 0), at(1, 5), pipeline.StatusSucceeded, toBuild...)
	line, err := EMF(RunEnd{Run: r}, DefaultRule())
	require.NoError(t, err)
	_, metrics := emfDoc(t, line)
	assert.False(t, slices.Contains(names(metrics), MetricDeployments))
}

// Each attempt of a retried run emits its own line: the failed attempt as a failure in its
// stage, the retry as a success and a deploy.
func TestEMFRetriedAttempts(t *testing.T) {
	r := runOf("r", "rrrr", at(1, 0), at(3, 0), pipeline.StatusSucceeded, all...)
	r.Attempt = 2
	r.Failures = []pipeline.Failure{{Stage: "CreateUpdateLambda", Action: "DeployFunction", Attempt: 1}}
	first := pipeline.Outcome{Pipeline: pl, ExecutionID: "r", Attempt: 1, Status: pipeline.StatusFailed, At: at(1, 20)}
	line, err := EMF(RunEnd{Run: r, Outcome: first}, DefaultRule())
	require.NoError(t, err)
	doc, metrics := emfDoc(t, line)
	assert.Contains(t, metrics, MetricFailuresByStage)
	assert.NotContains(t, metrics, MetricDeployments)
	assert.Equal(t, "CreateUpdateLambda", doc["Stage"])
	assert.Equal(t, 1200.0, num(t, doc[MetricRunDuration]))

	second := pipeline.Outcome{Pipeline: pl, ExecutionID: "r", Attempt: 2, Status: pipeline.StatusSucceeded, At: at(3, 0)}
	line, err = EMF(RunEnd{Run: r, Outcome: second, BrokenSince: first.At}, DefaultRule())
	require.NoError(t, err)
	doc, metrics = emfDoc(t, line)
	assert.Contains(t, metrics, MetricDeployments)
	assert.Equal(t, 100*60.0, num(t, doc[MetricTimeToRestore]))
}

func TestEMFErrorsAndProject(t *testing.T) {
	_, err := EMF(RunEnd{Run: runOf("p", "", at(1, 0), time.Time{}, pipeline.StatusInProgress)}, DefaultRule())
	assert.ErrorContains(t, err, "has not ended")
	_, err = EMF(RunEnd{}, DefaultRule())
	assert.Error(t, err)

	r := runOf("a", "", at(1, 0), at(1, 5), pipeline.StatusFailed)
	r.Pipeline = "release"
	line, err := EMF(RunEnd{Run: r}, DefaultRule())
	require.NoError(t, err)
	doc, metrics := emfDoc(t, line)
	assert.Equal(t, []string{"Pipeline"}, metrics[MetricRunFailed], "no project known: Pipeline alone")
	assert.NotContains(t, doc, "Project")
	assert.NotContains(t, metrics, MetricFailuresByStage, "failing stage unknown")

	line, err = EMF(RunEnd{Run: r, Project: "billing"}, DefaultRule())
	require.NoError(t, err)
	doc, _ = emfDoc(t, line)
	assert.Equal(t, "billing", doc["Project"])

	assert.Equal(t, "my-lambda", ProjectOf("my-lambda-pipeline"))
	assert.Equal(t, "", ProjectOf("release"))
	assert.Equal(t, "", ProjectOf("arn:aws:codepipeline:us-east-1:222222222222:my-lambda-pipeline"), "a pipeline of another account belongs to no project")
}
