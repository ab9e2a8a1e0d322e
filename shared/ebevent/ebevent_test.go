package ebevent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// sampleFiles returns every example event AWS documents (testdata/aws-events, sources in its
// SOURCES.md) and every sample of ours (events/).
func sampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"testdata/aws-events/*.json", "../../events/*.json"} {
		m, err := filepath.Glob(pattern)
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	return files
}

// wantErrors lists the samples that must be refused, with the field named.
var wantErrors = map[string]string{
	// aws-lambda-go's fixture of a stage event has no "stage"; CodePipeline always sends one,
	// and a stage event without it cannot be recorded.
	"codepipeline-execution-stage-change-event.json": "detail.stage",
	// Samples of the other functions' triggers (scripts/invoke): the notifier's stream records
	// and the reconciler's schedule are no EventBridge events this package decodes.
	"notifier-stream-insert.json":   "detail-type",
	"notifier-approval-insert.json": "detail-type",
	"reconciler-schedule.json":      "detail-type",
	"app-greet.json":                "detail-type", // the sample application's own input
}

func TestDecodeEverySample(t *testing.T) {
	for _, f := range sampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			if field, ok := wantErrors[filepath.Base(f)]; ok {
				_, err := Decode(data)
				var de *Error
				require.True(t, errors.As(err, &de), "want *Error, got %v", err)
				assert.Equal(t, field, de.Field)
				return
			}
			switch {
			case strings.Contains(string(data), `"CodePipeline.job"`), strings.Contains(string(data), `"RequestType"`):
				// The deployer's payloads (shared/deploy decodes them) are no EventBridge events.
				_, err := Decode(data)
				assert.ErrorIs(t, err, ErrMalformed)
			default:
				d, err := Decode(data)
				require.NoError(t, err)
				require.True(t, (d.Pipeline == nil) != (d.Push == nil), "exactly one of Pipeline and Push")
				if ev := d.Pipeline; ev != nil {
					assert.NotEmpty(t, ev.ID)
					assert.NotEmpty(t, ev.Pipeline)
					assert.NotEmpty(t, ev.ExecutionID)
					assert.True(t, ev.State.ValidFor(ev.Level))
					assert.GreaterOrEqual(t, ev.Attempt, 1)
					assert.False(t, ev.Time.IsZero())
				}
				if p := d.Push; p != nil {
					assert.NotEmpty(t, p.Repository)
					assert.NotEmpty(t, p.Kind)
				}
			}
		})
	}
}

func TestDecodeActionFailedBuild(t *testing.T) {
	data, err := os.ReadFile("../../events/action-failed-build.json")
	require.NoError(t, err)
	ev, err := DecodePipelineEvent(data)
	require.NoError(t, err)
	want := pipeline.Event{
		ID:      "2c8d4e5f-3a6b-4c7d-8e9f-0a1b2c3d4e03",
		Time:    time.Date(2026, 11, 20, 10, 17, 50, 0, time.UTC),
		Account: "123456789012", Region: "eu-west-1",
		Level: pipeline.LevelAction, Pipeline: "my-lambda-pipeline", ExecutionID: "3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11",
		Stage: "BuildAndTest", Action: "Build", State: pipeline.StateFailed,
		Version: 3, Attempt: 1,
		ActionExecutionID: "5c9d2e1f-7a3b-4c8d-9e0f-1a2b3c4d5e03", ActionRegion: "eu-west-1",
		ActionType: pipeline.ActionType{Owner: "AWS", Category: "Build", Provider: "CodeBuild", Version: "1"},
		Result: pipeline.ExecutionResult{
			ExternalID: "my-lambda-build:7e2f1d3c-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
			Summary:    "Build terminated with state: FAILED",
			URL:        "https://console.aws.amazon.com/codebuild/home?region=eu-west-1#/builds/my-lambda-build:7e2f1d3c-4b5a-4c6d-8e7f-9a0b1c2d3e4f/view/new",
			ErrorCode:  "JobFailed",
		},
		InputArtifacts:  []pipeline.Artifact{{Name: "SourceArtifact", Bucket: "my-lambda-artifacts-123456789012-eu-west-1", Key: "my-lambda-pipeline/SourceArti/Xk3pQ9v"}},
		OutputArtifacts: []pipeline.Artifact{{Name: "BuildOutput", Bucket: "my-lambda-artifacts-123456789012-eu-west-1", Key: "my-lambda-pipeline/BuildOutpu/Qm7tR2w"}},
	}
	assert.Equal(t, want, ev)
}

func TestDecodePipelineStarted(t *testing.T) {
	data, err := os.ReadFile("../../events/pipeline-started.json")
	require.NoError(t, err)
	ev, err := DecodePipelineEvent(data)
	require.NoError(t, err)
	assert.Equal(t, pipeline.LevelPipeline, ev.Level)
	assert.Equal(t, pipeline.StatusInProgress, ev.State.Status())
	assert.Equal(t, "StartPipelineExecution", ev.Trigger.Type)
	assert.Equal(t, time.Date(2026, 11, 20, 10, 15, 5, 120e6, time.UTC), ev.StartTime)
	assert.Empty(t, ev.Stage)
}

func TestDecodeNotificationRuleForm(t *testing.T) {
	data, err := os.ReadFile("testdata/aws-events/docs-codepipeline-action-failed-event-processed-event.json")
	require.NoError(t, err)
	ev, err := DecodePipelineEvent(data)
	require.NoError(t, err)
	assert.Equal(t, pipeline.LevelAction, ev.Level)
	assert.Equal(t, "JobFailed", ev.Result.ErrorCode)
	assert.True(t, strings.HasPrefix(ev.ID, "sha256-"), "an id is derived when AWS sends none")
	again, err := DecodePipelineEvent(data)
	require.NoError(t, err)
	assert.Equal(t, ev.ID, again.ID, "the derived id is stable")
}

func TestDecodePush(t *testing.T) {
	data, err := os.ReadFile("../../events/push-main.json")
	require.NoError(t, err)
	p, err := DecodePush(data)
	require.NoError(t, err)
	assert.Equal(t, pipeline.Push{
		ID: "8d6f3c1a-2b4e-4f70-9c1d-5e7a8b9c0d11", Time: time.Date(2026, 11, 20, 10, 15, 3, 0, time.UTC),
		Account: "123456789012", Region: "eu-west-1", Repository: "my-lambda", Kind: "referenceUpdated",
		RefType: "branch", RefName: "main", RefFullName: "refs/heads/main",
		CommitID: "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6", OldCommitID: "a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0",
	}, p)

	data, err = os.ReadFile("../../events/branch-deleted.json")
	require.NoError(t, err)
	p, err = DecodePush(data)
	require.NoError(t, err)
	assert.Equal(t, pipeline.PushReferenceDeleted, p.Kind)
	assert.Empty(t, p.CommitID)
}

// mutate loads a sample and applies edits given as "path=value" (value JSON, or "-" to delete).
func mutate(t *testing.T, file string, edits ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return applyEdits(t, data, edits...)
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	failed := "../../events/pipeline-failed.json"
	action := "../../events/action-failed-build.json"
	push := "../../events/push-main.json"
	cases := []struct {
		name  string
		input []byte
		field string
		kind  error
	}{
		{"invalid JSON", []byte(`{"detail-type": `), "", ErrMalformed},
		{"not an object", []byte(`[1,2]`), "", ErrMalformed},
		{"trailing data", []byte(`{} {}`), "", ErrMalformed},
		{"empty", []byte(``), "", ErrMalformed},
		{"missing execution-id", mutate(t, failed, "detail.execution-id=-"), "detail.execution-id", ErrMalformed},
		{"missing pipeline", mutate(t, failed, "detail.pipeline=-"), "detail.pipeline", ErrMalformed},
		{"missing state", mutate(t, failed, "detail.state=-"), "detail.state", ErrMalformed},
		{"unknown state", mutate(t, failed, `detail.state="EXPLODED"`), "detail.state", ErrMalformed},
		{"action state at pipeline level", mutate(t, failed, `detail.state="ABANDONED"`), "detail.state", ErrMalformed},
		{"bad time", mutate(t, failed, `time="yesterday"`), "time", ErrMalformed},
		{"missing time", mutate(t, failed, `time=-`), "time", ErrMalformed},
		{"missing detail", mutate(t, failed, `detail=-`), "detail", ErrMalformed},
		{"detail not an object", mutate(t, failed, `detail="x"`), "detail", ErrMalformed},
		{"missing detail-type", mutate(t, failed, `detail-type=-`), "detail-type", ErrMalformed},
		{"unknown detail-type", mutate(t, failed, `detail-type="CodeBuild Build State Change"`), "detail-type", ErrUnsupported},
		{"wrong source", mutate(t, failed, `source="aws.codebuild"`), "source", ErrUnsupported},
		{"fractional attempt", mutate(t, failed, `detail.pipeline-execution-attempt=1.5`), "detail.pipeline-execution-attempt", ErrMalformed},
		{"negative version", mutate(t, failed, `detail.version=-3`), "detail.version", ErrMalformed},
		{"attempt as object", mutate(t, failed, `detail.pipeline-execution-attempt={}`), "detail.pipeline-execution-attempt", ErrMalformed},
		{"pipeline as number", mutate(t, failed, `detail.pipeline=7`), "detail.pipeline", ErrMalformed},
		{"bad start-time", mutate(t, failed, `detail.start-time="soon"`), "detail.start-time", ErrMalformed},
		{"action without stage", mutate(t, action, `detail.stage=-`), "detail.stage", ErrMalformed},
		{"action without action", mutate(t, action, `detail.action=-`), "detail.action", ErrMalformed},
		{"artifact without name", mutate(t, action, `detail.output-artifacts=[{"s3location":{"bucket":"b","key":"k"}}]`), "detail.output-artifacts", ErrMalformed},
		{"push without repository", mutate(t, push, `detail.repositoryName=-`), "detail.repositoryName", ErrMalformed},
		{"push without commit", mutate(t, push, `detail.commitId=-`), "detail.commitId", ErrMalformed},
		{"push with odd reference type", mutate(t, push, `detail.referenceType="note"`), "detail.referenceType", ErrMalformed},
		{"unknown push kind", mutate(t, push, `detail.event="repositoryExploded"`), "detail.event", ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Decode(c.input)
			require.Error(t, err)
			assert.Equal(t, Decoded{}, d, "no half-filled value")
			var de *Error
			require.True(t, errors.As(err, &de), "want *Error, got %T: %v", err, err)
			assert.Equal(t, c.field, de.Field, "field named in %q", err)
			assert.ErrorIs(t, err, c.kind)
			if c.field != "" {
				assert.Contains(t, err.Error(), c.field)
			}
		})
	}
}

func TestAttemptAndVersionAsFloats(t *testing.T) {
	ev, err := DecodePipelineEvent(mutate(t, "../../events/pipeline-failed.json", `detail.version=7.0`, `detail.pipeline-execution-attempt=2.0`))
	require.NoError(t, err)
	assert.Equal(t, int64(7), ev.Version)
	assert.Equal(t, 2, ev.Attempt)

	ev, err = DecodePipelineEvent(mutate(t, "../../events/pipeline-failed.json", `detail.pipeline-execution-attempt=-`))
	require.NoError(t, err)
	assert.Equal(t, 1, ev.Attempt, "absent attempt means the first")
}

// TestImpossibleTimesAreRejectedByName: a zero or pre-CodePipeline time, in the envelope or in
// detail.start-time, is malformed and the error names the field; a time more than MaxClockSkew
// ahead of the receiver is refused by CheckTimes. Before (issue 9, defect 7) the zero time
// decoded, and a FAILED dated years ahead was stored and ranked last for ever.
func TestImpossibleTimesAreRejectedByName(t *testing.T) {
	good := `{"version":"0","id":"e1","detail-type":"CodePipeline Pipeline Execution State Change","source":"aws.codepipeline","account":"1","time":"%s","region":"eu-west-1","resources":[],"detail":{"pipeline":"p","execution-id":"x","state":"FAILED","start-time":"%s"}}`
	for _, c := range []struct{ time, start, field string }{
		{"0001-01-01T00:00:00Z", "2026-03-02T08:00:00Z", "time"},
		{"1970-01-01T00:00:00Z", "2026-03-02T08:00:00Z", "time"},
		{"2026-03-02T08:00:00Z", "0001-01-01T00:00:00Z", "detail.start-time"},
	} {
		_, err := DecodePipelineEvent(fmt.Appendf(nil, good, c.time, c.start))
		var e *Error
		if !errors.As(err, &e) || e.Field != c.field || !errors.Is(err, ErrMalformed) {
			t.Errorf("time %s start %s: err = %v, want malformed %s", c.time, c.start, err, c.field)
		}
	}
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	ev, err := DecodePipelineEvent(fmt.Appendf(nil, good, "2031-03-02T08:00:00Z", "2026-03-02T08:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := CheckTimes(ev, now); !errors.As(err, &e) || e.Field != "time" {
		t.Errorf("five years ahead: %v, want time refused", err)
	}
	ev.Time = now.Add(MaxClockSkew)
	if err := CheckTimes(ev, now); err != nil {
		t.Errorf("within the skew: %v", err)
	}
	ev.StartTime = now.Add(MaxClockSkew + time.Second)
	if err := CheckTimes(ev, now); !errors.As(err, &e) || e.Field != "detail.start-time" {
		t.Errorf("start-time ahead: %v", err)
	}
}

// TestDocumentedLimits: names past CodePipeline's limits are refused by field; oversized free
// text is clipped (issue 9, defect 9: a 300 KB error code passed into messages and broke the
// DynamoDB write).
func TestDocumentedLimits(t *testing.T) {
	ev := func(stage, code string) []byte {
		return fmt.Appendf(nil, `{"version":"0","id":"e1","detail-type":"CodePipeline Action Execution State Change","source":"aws.codepipeline","account":"1","time":"2026-03-02T08:00:00Z","region":"eu-west-1","resources":[],"detail":{"pipeline":"p","execution-id":"x","stage":%q,"action":"Build","state":"FAILED","execution-result":{"error-code":%q,"external-execution-summary":%q}}}`,
			stage, code, strings.Repeat("s", 10_000))
	}
	var e *Error
	_, err := DecodePipelineEvent(ev(strings.Repeat("S", 101), "JobFailed"))
	if !errors.As(err, &e) || e.Field != "detail.stage" {
		t.Errorf("101-character stage: %v", err)
	}
	_, err = DecodePipelineEvent(ev("Build and test", "JobFailed"))
	if !errors.As(err, &e) || e.Field != "detail.stage" {
		t.Errorf("a space in the stage name: %v", err)
	}
	got, err := DecodePipelineEvent(ev(strings.Repeat("S", 100), strings.Repeat("é", 150_000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Result.ErrorCode) > 100 || len(got.Result.Summary) > 2048 || !utf8.ValidString(got.Result.ErrorCode) {
		t.Errorf("clipped to %d / %d bytes", len(got.Result.ErrorCode), len(got.Result.Summary))
	}
}
