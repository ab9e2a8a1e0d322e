package ebevent

import (
	"encoding/json"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// PipelineDetail is the detail of the three CodePipeline execution state change detail-types,
// with every field AWS documents. Stage, Action and the action fields are empty for the levels
// that do not carry them.
type PipelineDetail struct {
	Pipeline    string `json:"pipeline"`
	ExecutionID string `json:"execution-id"`
	Stage       string `json:"stage,omitempty"`
	Action      string `json:"action,omitempty"`
	State       string `json:"state"`
	Region      string `json:"region,omitempty"`
	StartTime   string `json:"start-time,omitempty"`

	Version        json.RawMessage `json:"version,omitempty"`
	ExecutionRound json.RawMessage `json:"pipeline-execution-attempt,omitempty"`

	ExecutionTrigger *ExecutionTrigger `json:"execution-trigger,omitempty"`

	ActionExecutionID string           `json:"action-execution-id,omitempty"`
	Type              *ActionTypeInfo  `json:"type,omitempty"`
	ExecutionResult   *ExecutionResult `json:"execution-result,omitempty"`
	InputArtifacts    []ArtifactInfo   `json:"input-artifacts,omitempty"`
	OutputArtifacts   []ArtifactInfo   `json:"output-artifacts,omitempty"`
}

// ExecutionTrigger is detail.execution-trigger.
type ExecutionTrigger struct {
	TriggerType   string `json:"trigger-type"`
	TriggerDetail string `json:"trigger-detail"`
}

// ActionTypeInfo is detail.type of an action event.
type ActionTypeInfo struct {
	Owner    string     `json:"owner"`
	Category string     `json:"category"`
	Provider string     `json:"provider"`
	Version  flexString `json:"version"`
}

// ExecutionResult is detail.execution-result of a finished action.
type ExecutionResult struct {
	ExternalExecutionURL     string `json:"external-execution-url"`
	ExternalExecutionSummary string `json:"external-execution-summary"`
	ExternalExecutionID      string `json:"external-execution-id"`
	ErrorCode                string `json:"error-code"`
}

// ArtifactInfo is one entry of detail.input-artifacts / output-artifacts.
type ArtifactInfo struct {
	Name       string `json:"name"`
	S3Location struct {
		Bucket string `json:"bucket"`
		Key    string `json:"key"`
	} `json:"s3location"`
}

var levels = map[string]pipeline.Level{
	DetailPipeline: pipeline.LevelPipeline,
	DetailStage:    pipeline.LevelStage,
	DetailAction:   pipeline.LevelAction,
}

func pipelineEvent(env Envelope, t time.Time) (pipeline.Event, error) {
	level, ok := levels[env.DetailType]
	if !ok {
		return pipeline.Event{}, unsupported("detail-type", "%q is not a CodePipeline execution state change", env.DetailType)
	}
	if env.Source != "" && env.Source != SourceCodePipeline {
		return pipeline.Event{}, unsupported("source", "%q is not %q", env.Source, SourceCodePipeline)
	}
	var d PipelineDetail
	if err := strictUnmarshal(env.Detail, &d); err != nil {
		return pipeline.Event{}, jsonError("detail", err)
	}
	if d.Pipeline == "" {
		return pipeline.Event{}, malformed("detail.pipeline", "missing")
	}
	if d.ExecutionID == "" {
		return pipeline.Event{}, malformed("detail.execution-id", "missing")
	}
	if d.State == "" {
		return pipeline.Event{}, malformed("detail.state", "missing")
	}
	state := pipeline.State(d.State)
	if !state.ValidFor(level) {
		return pipeline.Event{}, malformed("detail.state", "%q is not a %s state", d.State, level)
	}
	if level >= pipeline.LevelStage && d.Stage == "" {
		return pipeline.Event{}, malformed("detail.stage", "missing")
	}
	if level == pipeline.LevelAction && d.Action == "" {
		return pipeline.Event{}, malformed("detail.action", "missing")
	}
	if err := checkName("detail.pipeline", d.Pipeline); err != nil {
		return pipeline.Event{}, err
	}
	if level >= pipeline.LevelStage {
		if err := checkName("detail.stage", d.Stage); err != nil {
			return pipeline.Event{}, err
		}
	}
	if level == pipeline.LevelAction {
		if err := checkName("detail.action", d.Action); err != nil {
			return pipeline.Event{}, err
		}
	}
	if len(d.ExecutionID) > maxExecutionID {
		return pipeline.Event{}, malformed("detail.execution-id", "%d characters: not a pipeline execution id", len(d.ExecutionID))
	}
	var version, attempt number
	if err := version.decode("version", d.Version); err != nil {
		return pipeline.Event{}, jsonError("detail", err)
	}
	if err := attempt.decode("pipeline-execution-attempt", d.ExecutionRound); err != nil {
		return pipeline.Event{}, jsonError("detail", err)
	}
	ev := pipeline.Event{
		ID: env.ID, Time: t, Account: env.Account, Region: env.Region,
		Level: level, Pipeline: d.Pipeline, ExecutionID: d.ExecutionID, State: state,
		Version: version.v, Attempt: int(attempt.v),
		ActionExecutionID: d.ActionExecutionID, ActionRegion: d.Region,
	}
	if level != pipeline.LevelAction {
		ev.ActionRegion = ""
	}
	if level < pipeline.LevelStage {
		ev.Stage = ""
	} else {
		ev.Stage = d.Stage
	}
	if level == pipeline.LevelAction {
		ev.Action = d.Action
	}
	if !attempt.set || ev.Attempt < 1 {
		ev.Attempt = 1
	}
	if d.StartTime != "" {
		st, err := time.Parse(time.RFC3339Nano, d.StartTime)
		if err != nil {
			return pipeline.Event{}, malformed("detail.start-time", "%q is not an RFC 3339 time", d.StartTime)
		}
		if err := checkPast("detail.start-time", st); err != nil {
			return pipeline.Event{}, err
		}
		ev.StartTime = st.UTC()
	}
	if tr := d.ExecutionTrigger; tr != nil {
		ev.Trigger = pipeline.Trigger{Type: tr.TriggerType, Detail: tr.TriggerDetail}
	}
	if ty := d.Type; ty != nil {
		ev.ActionType = pipeline.ActionType{Owner: ty.Owner, Category: ty.Category, Provider: ty.Provider, Version: string(ty.Version)}
	}
	if r := d.ExecutionResult; r != nil {
		// Free text is clipped to CodePipeline's documented limits, so that an oversized
		// field can neither break the store's item nor a message.
		ev.Result = pipeline.ExecutionResult{ExternalID: clipText(r.ExternalExecutionID, maxExternalID), Summary: clipText(r.ExternalExecutionSummary, maxSummary),
			URL: clipText(r.ExternalExecutionURL, maxURL), ErrorCode: clipText(r.ErrorCode, maxErrorCode)}
	}
	var err error
	if ev.InputArtifacts, err = artifacts("detail.input-artifacts", d.InputArtifacts); err != nil {
		return pipeline.Event{}, err
	}
	if ev.OutputArtifacts, err = artifacts("detail.output-artifacts", d.OutputArtifacts); err != nil {
		return pipeline.Event{}, err
	}
	if ev.ID == "" {
		// The notification-rule form carries no id: derive a stable one, so that duplicates
		// of it are still recognised.
		ev.ID = syntheticID(env)
	}
	return ev, nil
}

// CodePipeline's documented limits. Pipeline, stage and action names: 1–100 characters of
// [A-Za-z0-9.@\-_] (AWS CodePipeline API Reference, "PipelineDeclaration", "StageDeclaration",
// "ActionDeclaration": https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PipelineDeclaration.html,
// …/API_StageDeclaration.html, …/API_ActionDeclaration.html). Execution ids are UUIDs
// ("PipelineExecution", …/API_PipelineExecution.html), bounded here at 200 characters. An action's
// external execution id is at most 1,500 characters and its summary at most 2,048
// ("ExecutionDetails", …/API_ExecutionDetails.html); error codes and URLs have no documented
// bound, and are kept to 100 and 2,048 characters.
const (
	maxName        = 100
	maxExecutionID = 200 // a UUID; AWS's own sample events carry an ARN there
	maxExternalID  = 1500
	maxSummary     = 2048
	maxErrorCode   = 100
	maxURL         = 2048
)

var nameChars = regexp.MustCompile(`^[A-Za-z0-9.@\-_]+$`)

// checkName refuses a pipeline, stage or action name CodePipeline would not accept.
func checkName(field, name string) error {
	if len(name) > maxName {
		return malformed(field, "%d characters, more than CodePipeline's %d", len(name), maxName)
	}
	if !nameChars.MatchString(name) {
		return malformed(field, "%q has characters CodePipeline does not allow in a name", truncate(name, 60))
	}
	return nil
}

// clipText cuts s to at most n bytes, between UTF-8 characters, marking the cut.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func artifacts(field string, in []ArtifactInfo) ([]pipeline.Artifact, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]pipeline.Artifact, 0, len(in))
	for _, a := range in {
		if a.Name == "" {
			return nil, malformed(field, "an artifact has no name")
		}
		out = append(out, pipeline.Artifact{Name: a.Name, Bucket: a.S3Location.Bucket, Key: a.S3Location.Key})
	}
	return out, nil
}
