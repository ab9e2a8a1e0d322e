package pipeline

import "time"

// Details is what the enrichment look-ups learnt about a run for its notification, beyond the
// run record. Every field is optional: a look-up that failed (throttled, denied, timed out)
// leaves its fields empty and adds a line to Degraded, and the message is sent all the same.
type Details struct {
	Region    string `json:"region,omitempty"`
	AccountID string `json:"accountId,omitempty"`

	// ExecutionURL is the CodePipeline console page of the execution.
	ExecutionURL string `json:"executionUrl,omitempty"`

	// Commit fills what the run record lacks (codecommit:GetCommit).
	Commit Commit `json:"commit"`

	// Failure fills what the events lacked (ListActionExecutions), when the run record does not
	// say where the run failed.
	Failure *Failure `json:"failure,omitempty"`

	// Build is set for a CodeBuild failure (BatchGetBuilds, GetLogEvents).
	Build *BuildDetails `json:"build,omitempty"`

	// RootCause is set for a deploy failure: the first *_FAILED stack event with a reason,
	// cascade noise ("Resource creation cancelled") skipped (DescribeStackEvents).
	RootCause *StackEvent `json:"rootCause,omitempty"`

	// Artifact is the BuildOutput artifact: a presigned GET link with its expiry, and the
	// S3 console link.
	Artifact *ArtifactLinks `json:"artifact,omitempty"`

	// Degraded lists the look-ups that failed, in words a person reads ("build log:
	// AccessDeniedException"), so that a thinner message says why it is thin.
	Degraded []string `json:"degraded,omitempty"`
}

// BuildDetails describes a CodeBuild build.
type BuildDetails struct {
	ID          string   `json:"id"`
	Status      string   `json:"status,omitempty"`      // SUCCEEDED, FAILED, FAULT, TIMED_OUT, STOPPED, IN_PROGRESS
	FailedPhase string   `json:"failedPhase,omitempty"` // e.g. BUILD
	PhaseReason string   `json:"phaseReason,omitempty"` // e.g. "COMMAND_EXECUTION_ERROR: Error while executing command: go test ./.... Reason: exit status 1"
	LogGroup    string   `json:"logGroup,omitempty"`
	LogStream   string   `json:"logStream,omitempty"`
	LogURL      string   `json:"logUrl,omitempty"`
	LogTail     []string `json:"logTail,omitempty"` // the last lines of the log, oldest first
	// LogTailTrimmed says lines or characters were cut to fit.
	LogTailTrimmed bool `json:"logTailTrimmed,omitempty"`
}

// StackEvent is one CloudFormation stack event.
type StackEvent struct {
	StackName         string    `json:"stackName"`
	LogicalResourceID string    `json:"logicalResourceId"`
	ResourceType      string    `json:"resourceType"`
	Status            string    `json:"status"`
	Reason            string    `json:"reason"`
	Timestamp         time.Time `json:"timestamp"`
	ConsoleURL        string    `json:"consoleUrl,omitempty"`
}

// ArtifactLinks are the links to an artifact in S3.
type ArtifactLinks struct {
	Bucket       string    `json:"bucket"`
	Key          string    `json:"key"`
	PresignedURL string    `json:"presignedUrl,omitempty"`
	Expires      time.Time `json:"expires,omitempty"`
	ConsoleURL   string    `json:"consoleUrl,omitempty"`
}
