package deploy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// Jobs is what the deployer calls of CodePipeline (codepipeline.Client satisfies it). Job
// results and job details have no resource-level permissions: the job id is the capability.
type Jobs interface {
	GetJobDetails(ctx context.Context, in *codepipeline.GetJobDetailsInput, optFns ...func(*codepipeline.Options)) (*codepipeline.GetJobDetailsOutput, error)
	PutJobSuccessResult(ctx context.Context, in *codepipeline.PutJobSuccessResultInput, optFns ...func(*codepipeline.Options)) (*codepipeline.PutJobSuccessResultOutput, error)
	PutJobFailureResult(ctx context.Context, in *codepipeline.PutJobFailureResultInput, optFns ...func(*codepipeline.Options)) (*codepipeline.PutJobFailureResultOutput, error)
}

var _ Jobs = (*codepipeline.Client)(nil)

// Limits of the job results ("PutJobSuccessResult", "PutJobFailureResult", CodePipeline API
// Reference, https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PutJobSuccessResult.html;
// output variables: "Quotas in AWS CodePipeline",
// https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html).
const (
	maxContinuationToken = 2048
	maxSummary           = 2048
	maxFailureMessage    = 5000
	maxOutputVariables   = 100000 // of CodePipeline's 122,880 bytes per action
)

// JobHandler runs the deploy a CodePipeline Lambda Invoke job asks for (UserParameters) and
// reports it to CodePipeline: success, failure, or "in progress" with a continuation token
// that makes CodePipeline invoke the deployer again with a new job ("Invoke an AWS Lambda
// function in a pipeline in CodePipeline",
// https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html).
type JobHandler struct {
	Engine    *Engine
	Jobs      Jobs
	Artifacts ArtifactGetter
	Poll      Poller
	Log       *slog.Logger
	// Gate is the policy gate and the approval of IAM widenings (gate.go). NewRouter always
	// sets it; a handler without one deploys whatever it is given.
	Gate *Gate
	// DryRun validates the job and reads its template, then reports what it would deploy
	// without calling CloudFormation or CodePipeline (local runs: scripts/invoke).
	DryRun bool
}

// Results of a job invocation (JobReport.Result).
const (
	JobSucceeded = "succeeded" // PutJobSuccessResult, deploy done
	JobContinued = "continued" // PutJobSuccessResult with a continuation token
	JobFailed    = "failed"    // PutJobFailureResult
	JobDropped   = "dropped"   // the job no longer takes results (its execution was cancelled)
	JobPlanned   = "planned"   // DryRun
)

// JobReport is what the handler did with one job.
type JobReport struct {
	JobID       string `json:"jobId"`
	StackName   string `json:"stackName,omitempty"`
	ChangeSet   string `json:"changeSet,omitempty"`
	Result      string `json:"result"`
	FailureType string `json:"failureType,omitempty"`
	// Summary is the executionDetails summary, the failure message, or the plan.
	Summary string `json:"summary"`
}

// continuation is the continuation token: which deploy this job continues, and its Progress.
// It is JSON, well under CodePipeline's 2048 characters.
type continuation struct {
	V         int      `json:"v"`
	Stack     string   `json:"stack"`
	Token     string   `json:"token"`
	ChangeSet string   `json:"changeSet"`
	Phase     Phase    `json:"phase,omitempty"`
	Progress  Progress `json:"progress"`
	// Retries counts the jobs in a row that ended on a transient error (IsTransient).
	Retries int `json:"retries,omitempty"`
}

// MaxTransientContinuations is how many jobs in a row may end on a transient error (a throttle
// or a 5xx past every retry, no answer) and continue; the next one fails. Each job polls for
// minutes, so this bounds a CloudFormation outage the deploy waits out to about an hour.
const MaxTransientContinuations = 4

const continuationVersion = 1

var deployTokenPattern = regexp.MustCompile(`^[-a-zA-Z0-9]{1,128}$`)

// EncodeContinuation returns the continuation token of an in-progress deploy.
func encodeContinuation(c continuation) (string, error) {
	c.V = continuationVersion
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	if len(b) > maxContinuationToken {
		return "", fmt.Errorf("continuation token of %d characters, CodePipeline takes %d", len(b), maxContinuationToken)
	}
	return string(b), nil
}

// decodeContinuation reads a token encodeContinuation wrote.
func decodeContinuation(s string) (continuation, error) {
	var c continuation
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return continuation{}, fmt.Errorf("continuation token: %w", err)
	}
	switch {
	case c.V != continuationVersion:
		return continuation{}, fmt.Errorf("continuation token: version %d, want %d", c.V, continuationVersion)
	case !deployTokenPattern.MatchString(c.Token):
		return continuation{}, errors.New("continuation token: no valid deploy token")
	case c.ChangeSet != ChangeSetName(c.Token):
		return continuation{}, fmt.Errorf("continuation token: change set %q is not the deploy's", c.ChangeSet)
	case ValidateStackName(c.Stack) != nil:
		return continuation{}, fmt.Errorf("continuation token: stack %q", c.Stack)
	}
	return c, nil
}

// failure is a job failure decided before the deploy (failure type and message).
type failure struct {
	typ cptypes.FailureType
	msg string
}

// Handle runs one job. It returns an error only when the result could not be reported to
// CodePipeline (so that Lambda retries the invocation: every step is idempotent); a job that
// no longer takes results is logged and dropped. The job's artifactCredentials are used to
// read the artifact and never logged.
func (h *JobHandler) Handle(ctx context.Context, job events.CodePipelineJob) (JobReport, error) {
	rep := JobReport{JobID: job.ID}
	params, err := ParseUserParameters(job.Data.ActionConfiguration.Configuration.UserParameters)
	if err != nil {
		return h.fail(ctx, rep, failure{cptypes.FailureTypeConfigurationError, err.Error()})
	}
	rep.StackName = params.StackName
	// The deploy's token is the job id of its first job; continuations carry it.
	token, progress, retries, phase := job.ID, Progress{}, 0, Phase("")
	if t := job.Data.ContinuationToken; t != "" {
		c, err := decodeContinuation(t)
		if err == nil && c.Stack != params.StackName {
			err = fmt.Errorf("continuation token: stack %s, but the action deploys %s", c.Stack, params.StackName)
		}
		if err != nil {
			return h.fail(ctx, rep, failure{cptypes.FailureTypeJobFailed, err.Error()})
		}
		token, progress, retries, phase = c.Token, c.Progress, c.Retries, c.Phase
	}
	rep.ChangeSet = ChangeSetName(token)

	// Where the job runs, as CodePipeline says (scope.go): before anything else, a job may
	// deploy only its pipeline's project's stacks, and approvals are keyed by its pipeline and
	// execution, whatever UserParameters say. A dry run has no CodePipeline to ask.
	if !h.DryRun {
		jc, err := h.jobContext(ctx, job.ID)
		switch {
		case err != nil && IsTransient(err) && !errors.Is(err, errNoContext) && retries < MaxTransientContinuations:
			out := Outcome{StackName: params.StackName, ChangeSet: rep.ChangeSet, Status: StatusInProgress, Phase: phase, Progress: progress,
				Reason: fmt.Sprintf("stack %s: CodePipeline did not say where the job runs (%s); the next job looks again", params.StackName, apiMessage(err))}
			return h.continueJob(ctx, rep, Request{StackName: params.StackName, Token: token}, out, retries+1)
		case err != nil:
			typ := cptypes.FailureTypeJobFailed
			if IsPermissionError(err) {
				typ = cptypes.FailureTypePermissionError
			}
			rep.StackName = "" // not known to be the job's to name
			return h.fail(ctx, rep, failure{typ, fmt.Sprintf("reading where job %s runs (GetJobDetails): %v; nothing was deployed", job.ID, err)})
		}
		if msg := jc.Scope(params); msg != "" {
			// The failure names no stack as the action's: the stack is another project's.
			rep.StackName = ""
			return h.fail(ctx, rep, failure{cptypes.FailureTypeJobFailed, msg})
		}
		params.Pipeline, params.Execution = jc.Pipeline, jc.Execution
	}
	req, fail := h.prepare(ctx, job, params)
	if fail != nil {
		return h.fail(ctx, rep, *fail)
	}
	req.Token, req.Progress = token, progress

	// The policy gate, before anything reaches CloudFormation: a refused template fails the
	// action with every violation, and no change set is even created.
	if h.Gate != nil {
		if msg := h.Gate.Check(req.StackName, params.TemplatePath, req.TemplateBody); msg != "" {
			return h.fail(ctx, rep, failure{cptypes.FailureTypeJobFailed, msg})
		}
	}

	if h.DryRun {
		rep.Result = JobPlanned
		rep.Summary = fmt.Sprintf("would deploy stack %s through change set %s (template %s, %d bytes; overrides: %s; capabilities: %s; role: %s); nothing was sent to AWS",
			req.StackName, rep.ChangeSet, params.TemplatePath, len(req.TemplateBody), describeOverrides(req.Parameters),
			listOrNone(req.Capabilities), cmp.Or(req.RoleARN, "none"))
		h.log().InfoContext(ctx, "job planned (dry run)", "jobId", job.ID, "stack", req.StackName, "changeSet", rep.ChangeSet, "plan", rep.Summary)
		return rep, nil
	}

	// A deploy that widens IAM waits for a person: each job of the wait asks once and answers
	// with a continuation token (which restarts CodePipeline's 20-minute clock) instead of
	// holding the function while nobody decides.
	if h.Gate != nil {
		adm, err := h.Gate.admit(ctx, req.StackName, req.TemplateBody, ApprovalTarget{
			Pipeline: params.Pipeline, ExecutionID: params.Execution, Deploy: token, TemplatePath: params.TemplatePath})
		base := Outcome{StackName: req.StackName, ChangeSet: ChangeSetName(token), Progress: progress}
		switch {
		case err != nil && IsTransient(err) && retries < MaxTransientContinuations:
			base.Status, base.Phase = StatusInProgress, PhaseAwaitingApproval
			base.Reason = fmt.Sprintf("stack %s: the policy gate could not compare the templates or read the approval (%s); the next job looks again", req.StackName, apiMessage(err))
			return h.continueJob(ctx, rep, req, base, retries+1)
		case err != nil:
			typ := cptypes.FailureTypeJobFailed
			if IsPermissionError(err) {
				typ = cptypes.FailureTypePermissionError
			}
			return h.fail(ctx, rep, failure{typ, fmt.Sprintf("policy gate for stack %s: %v", req.StackName, err)})
		case adm.failure != nil:
			return h.fail(ctx, rep, *adm.failure)
		case adm.pending != nil:
			return h.continueJob(ctx, rep, req, waiting(base, *adm.pending), 0)
		}
	}

	out, err := h.Poll.Run(ctx, progress, func(ctx context.Context, p Progress) (Outcome, error) {
		req.Progress = p
		return h.Engine.Step(ctx, req)
	})
	switch {
	case err != nil && IsTransient(err) && retries < MaxTransientContinuations:
		// Not the deploy's failure: CloudFormation did not answer. The next job looks again.
		out.Reason = fmt.Sprintf("stack %s: CloudFormation did not answer (%s); the next job looks again", req.StackName, apiMessage(err))
		return h.continueJob(ctx, rep, req, out, retries+1)
	case err != nil:
		typ := cptypes.FailureTypeJobFailed
		if IsPermissionError(err) {
			typ = cptypes.FailureTypePermissionError
		}
		return h.fail(ctx, rep, failure{typ, fmt.Sprintf("deploying stack %s: %v", req.StackName, err)})
	}
	switch out.Status {
	case StatusDone:
		return h.succeed(ctx, rep, out)
	case StatusFailed:
		typ := cptypes.FailureTypeJobFailed
		if out.Misconfigured {
			typ = cptypes.FailureTypeConfigurationError
		}
		return h.fail(ctx, rep, failure{typ, out.Reason})
	}
	return h.continueJob(ctx, rep, req, out, 0)
}

// Reject fails a job whose event could not be decoded (reason says why), so that the action
// fails at once instead of waiting for CodePipeline's timeout.
func (h *JobHandler) Reject(ctx context.Context, jobID string, reason error) (JobReport, error) {
	rep := JobReport{JobID: jobID}
	if h.DryRun {
		rep.Result, rep.FailureType, rep.Summary = JobFailed, string(cptypes.FailureTypeJobFailed), "malformed job: "+reason.Error()
		return rep, nil
	}
	return h.fail(ctx, rep, failure{cptypes.FailureTypeJobFailed, "malformed job: " + reason.Error()})
}

// prepare reads the template from the input artifact and resolves the overrides.
func (h *JobHandler) prepare(ctx context.Context, job events.CodePipelineJob, params UserParameters) (Request, *failure) {
	artifact, file := params.Template()
	inputs := job.Data.InputArtifacts
	var names []string
	idx := -1
	for i, a := range inputs {
		names = append(names, a.Name)
		if a.Name == artifact {
			idx = i
		}
	}
	if idx < 0 {
		return Request{}, &failure{cptypes.FailureTypeConfigurationError,
			fmt.Sprintf("templatePath %s: %q is not an input artifact of this action (inputs: %s)", params.TemplatePath, artifact, listOrNone(names))}
	}
	loc := inputs[idx].Location.S3Location
	c := job.Data.ArtifactCredentials
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Source: "CodePipelineJobArtifactCredentials"}
	data, err := h.Artifacts.GetObject(ctx, creds, loc.BucketName, loc.ObjectKey)
	if err != nil {
		typ := cptypes.FailureTypeJobFailed
		if errors.Is(err, ErrArtifactDenied) {
			typ = cptypes.FailureTypePermissionError
		}
		return Request{}, &failure{typ, fmt.Sprintf("reading input artifact %s: %v", artifact, err)}
	}
	body, err := TemplateFromZip(data, file)
	if err != nil {
		typ := cptypes.FailureTypeJobFailed
		if errors.Is(err, ErrTemplateNotFound) || errors.Is(err, ErrTemplateTooLarge) {
			typ = cptypes.FailureTypeConfigurationError
		}
		return Request{}, &failure{typ, fmt.Sprintf("templatePath %s: %v", params.TemplatePath, err)}
	}
	overrides, err := params.ResolveOverrides(func(name string) (string, string, bool) {
		for _, a := range inputs {
			if a.Name == name {
				return a.Location.S3Location.BucketName, a.Location.S3Location.ObjectKey, true
			}
		}
		return "", "", false
	})
	if err != nil {
		return Request{}, &failure{cptypes.FailureTypeConfigurationError, "parameterOverrides: " + err.Error()}
	}
	return Request{StackName: params.StackName, TemplateBody: body, Parameters: overrides,
		Capabilities: params.Capabilities, RoleARN: params.RoleARN}, nil
}

func (h *JobHandler) succeed(ctx context.Context, rep JobReport, out Outcome) (JobReport, error) {
	rep.Result = JobSucceeded
	if out.NoChanges {
		rep.Summary = fmt.Sprintf("Stack %s: no changes (change set %s was empty)", out.StackName, out.ChangeSet)
	} else {
		rep.Summary = fmt.Sprintf("Stack %s: %s (change set %s)", out.StackName, out.StackStatus, out.ChangeSet)
	}
	_, err := h.Jobs.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{
		JobId: aws.String(rep.JobID),
		ExecutionDetails: &cptypes.ExecutionDetails{
			Summary: aws.String(truncate(rep.Summary, maxSummary)),
			// The notifier and the run record read the stack from here.
			ExternalExecutionId: aws.String(out.StackName),
			PercentComplete:     aws.Int32(100),
		},
		OutputVariables: outputVariables(out.Outputs),
	})
	return h.reported(ctx, rep, err)
}

// continueJob answers success with a continuation token; retries is the count of jobs in a row
// that ended on a transient error, this one included.
func (h *JobHandler) continueJob(ctx context.Context, rep JobReport, req Request, out Outcome, retries int) (JobReport, error) {
	tok, err := encodeContinuation(continuation{Stack: req.StackName, Token: req.Token, ChangeSet: ChangeSetName(req.Token), Phase: out.Phase, Progress: out.Progress, Retries: retries})
	if err != nil {
		return h.fail(ctx, rep, failure{cptypes.FailureTypeJobFailed, err.Error()})
	}
	rep.Result = JobContinued
	rep.Summary = out.Reason
	if rep.Summary == "" {
		rep.Summary = fmt.Sprintf("stack %s: deploy in progress", req.StackName)
	}
	_, err = h.Jobs.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{
		JobId:             aws.String(rep.JobID),
		ContinuationToken: aws.String(tok),
		ExecutionDetails: &cptypes.ExecutionDetails{
			Summary:             aws.String(truncate(rep.Summary, maxSummary)),
			ExternalExecutionId: aws.String(req.StackName),
		},
	})
	return h.reported(ctx, rep, err)
}

func (h *JobHandler) fail(ctx context.Context, rep JobReport, f failure) (JobReport, error) {
	rep.Result, rep.FailureType, rep.Summary = JobFailed, string(f.typ), f.msg
	if strings.TrimSpace(rep.Summary) == "" {
		rep.Summary = "the deploy failed"
	}
	details := &cptypes.FailureDetails{Type: f.typ, Message: aws.String(truncate(rep.Summary, maxFailureMessage))}
	if rep.StackName != "" {
		details.ExternalExecutionId = aws.String(rep.StackName)
	}
	_, err := h.Jobs.PutJobFailureResult(ctx, &codepipeline.PutJobFailureResultInput{JobId: aws.String(rep.JobID), FailureDetails: details})
	return h.reported(ctx, rep, err)
}

// reported logs the job's result once, and decides about a failed report: a job that no
// longer takes results is dropped (its execution was cancelled, e.g. restarted by the
// pipeline's self-update, or it was answered already); any other error is returned so that
// Lambda retries.
func (h *JobHandler) reported(ctx context.Context, rep JobReport, err error) (JobReport, error) {
	attrs := []any{"jobId", rep.JobID, "stack", rep.StackName, "changeSet", rep.ChangeSet, "result", rep.Result, "summary", rep.Summary}
	if rep.FailureType != "" {
		attrs = append(attrs, "failureType", rep.FailureType)
	}
	var invalid *cptypes.InvalidJobStateException
	var notFound *cptypes.JobNotFoundException
	switch {
	case err == nil:
		h.log().InfoContext(ctx, "job result", attrs...)
		return rep, nil
	case errors.As(err, &invalid), errors.As(err, &notFound):
		rep.Result = JobDropped
		h.log().WarnContext(ctx, "job no longer takes a result (execution cancelled or already answered); dropped",
			append(attrs[:len(attrs):len(attrs)], "error", err.Error())...)
		return rep, nil
	}
	h.log().ErrorContext(ctx, "job result not reported", append(attrs[:len(attrs):len(attrs)], "error", err.Error())...)
	return rep, fmt.Errorf("report the result of job %s: %w", rep.JobID, err)
}

func (h *JobHandler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

var outputVariablePattern = regexp.MustCompile(`^[A-Za-z0-9@\-_]+$`)

// outputVariables are the stack's outputs as the action's output variables (namespace them in
// the pipeline to use them), within CodePipeline's rules; nil when there are none.
func outputVariables(outputs map[string]string) map[string]string {
	vars := map[string]string{}
	size := 0
	for _, k := range slices.Sorted(maps.Keys(outputs)) {
		if !outputVariablePattern.MatchString(k) || size+len(k)+len(outputs[k]) > maxOutputVariables {
			continue
		}
		vars[k] = outputs[k]
		size += len(k) + len(outputs[k])
	}
	if len(vars) == 0 {
		return nil
	}
	return vars
}

func describeOverrides(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}
