// Package pipeline is the domain of lambda-pipeline: pipeline runs, their stages and actions, the
// events CodePipeline and CodeCommit emit about them, and the pure fold that turns an unordered,
// duplicated stream of those events into one record per run.
//
// It uses the standard library only. Decoding (ebevent), storage (runstore), notification
// (notify) and deployment (deploy) live in their own packages and import this one.
package pipeline

import (
	"fmt"
	"time"
)

// Level says which element of a run an event is about.
type Level int

const (
	LevelPipeline Level = iota + 1 // "CodePipeline Pipeline Execution State Change"
	LevelStage                     // "CodePipeline Stage Execution State Change"
	LevelAction                    // "CodePipeline Action Execution State Change"
)

func (l Level) String() string {
	switch l {
	case LevelPipeline:
		return "pipeline"
	case LevelStage:
		return "stage"
	case LevelAction:
		return "action"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// State is the state word an EventBridge event carries, exactly as AWS spells it.
type State string

const (
	StateStarted    State = "STARTED"
	StateResumed    State = "RESUMED"
	StateSucceeded  State = "SUCCEEDED"
	StateFailed     State = "FAILED"
	StateCanceled   State = "CANCELED"
	StateSuperseded State = "SUPERSEDED"
	StateStopping   State = "STOPPING"
	StateStopped    State = "STOPPED"
	StateAbandoned  State = "ABANDONED"
)

// validStates lists, per level, the states CodePipeline documents for that detail-type.
var validStates = map[Level][]State{
	LevelPipeline: {StateStarted, StateResumed, StateSucceeded, StateFailed, StateCanceled, StateSuperseded, StateStopping, StateStopped},
	LevelStage:    {StateStarted, StateResumed, StateSucceeded, StateFailed, StateCanceled, StateStopping, StateStopped},
	LevelAction:   {StateStarted, StateSucceeded, StateFailed, StateCanceled, StateAbandoned},
}

// ValidFor reports whether CodePipeline emits state s for events of level l.
func (s State) ValidFor(l Level) bool {
	for _, v := range validStates[l] {
		if v == s {
			return true
		}
	}
	return false
}

// Status maps an event state to the status recorded for the element: STARTED and RESUMED are
// IN_PROGRESS, every other state keeps its word.
func (s State) Status() Status {
	switch s {
	case StateStarted, StateResumed:
		return StatusInProgress
	}
	return Status(s)
}

// Event is one CodePipeline execution state change, decoded and validated. Every field that
// AWS documents for the three detail-types is kept; optional ones are zero when absent.
type Event struct {
	ID      string    // EventBridge event id
	Time    time.Time // EventBridge event time
	Account string
	Region  string

	Level Level
	// Pipeline is the pipeline's name as decoded; once the event enters the use case
	// (Home.Identify) it is the pipeline's identity: the name for the home's pipelines, the
	// ARN for the others (identity.go).
	Pipeline    string
	ExecutionID string
	Stage       string // stage and action events
	Action      string // action events
	State       State

	Version   int64     // pipeline structure version
	Attempt   int       // pipeline-execution-attempt; 1 when absent
	StartTime time.Time // detail start-time, when present

	Trigger Trigger // pipeline events

	ActionExecutionID string
	ActionRegion      string
	ActionType        ActionType
	Result            ExecutionResult
	InputArtifacts    []Artifact
	OutputArtifacts   []Artifact
}

// Trigger is what started an execution (detail execution-trigger).
type Trigger struct {
	Type   string `json:"type,omitempty"`   // e.g. StartPipelineExecution, CreatePipeline, Webhook
	Detail string `json:"detail,omitempty"` // e.g. the caller's ARN
}

// TriggerCreatePipeline is the trigger of the execution CodePipeline starts when a pipeline is created.
const TriggerCreatePipeline = "CreatePipeline"

// ActionType is an action's owner, category, provider and version.
type ActionType struct {
	Owner    string `json:"owner,omitempty"`
	Category string `json:"category,omitempty"`
	Provider string `json:"provider,omitempty"`
	Version  string `json:"version,omitempty"`
}

// ExecutionResult is an action's execution-result: the external system's id, summary and link,
// and the error code of a failure.
type ExecutionResult struct {
	ExternalID string `json:"externalId,omitempty"`
	Summary    string `json:"summary,omitempty"`
	URL        string `json:"url,omitempty"`
	ErrorCode  string `json:"errorCode,omitempty"`
}

// IsZero reports whether the result carries nothing.
func (r ExecutionResult) IsZero() bool { return r == ExecutionResult{} }

// Artifact is a named pipeline artifact and where it lives in S3.
type Artifact struct {
	Name   string `json:"name"`
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key,omitempty"`
}

// ArtifactBuildOutput is the artifact BuildAndTest produces, even when the build fails.
const ArtifactBuildOutput = "BuildOutput"

// Push is one CodeCommit reference change ("CodeCommit Repository State Change").
type Push struct {
	ID         string
	Time       time.Time
	Account    string
	Region     string
	Repository string
	// Kind is the detail's event: referenceCreated, referenceUpdated, referenceDeleted, ...
	Kind        string
	RefType     string // branch or tag
	RefName     string
	RefFullName string
	CommitID    string
	OldCommitID string
}

// CodeCommit event kinds that can move a branch.
const (
	PushReferenceCreated = "referenceCreated"
	PushReferenceUpdated = "referenceUpdated"
	PushReferenceDeleted = "referenceDeleted"
)
