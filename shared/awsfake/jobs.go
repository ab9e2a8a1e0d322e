package awsfake

import (
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
)

// CodePipeline job-result operations (the Lambda Invoke action's side of the job protocol).
const (
	OpPutJobSuccessResult = "PutJobSuccessResult"
	OpPutJobFailureResult = "PutJobFailureResult"
	OpGetJobDetails       = "GetJobDetails"
)

// InvalidJobState is what CodePipeline answers for a job that no longer takes a result (it
// was answered, or its execution was cancelled, e.g. by a self-update). Inject it with
// FailNext, or make a job refuse results with Cancel.
var InvalidJobState = Error{Code: "InvalidJobStateException", Status: http.StatusBadRequest, Message: "The job is not in a state that accepts results."}

// Limits of PutJobSuccessResult and PutJobFailureResult ("PutJobSuccessResult",
// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PutJobSuccessResult.html;
// "PutJobFailureResult",
// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PutJobFailureResult.html).
const (
	MaxContinuationToken   = 2048
	MaxExecutionSummary    = 2048
	MaxExternalExecutionID = 1500
	MaxFailureMessage      = 5000
)

var (
	jobIDPattern      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	outputVarPattern  = regexp.MustCompile(`^[A-Za-z0-9@\-_]+$`)
	jobFailureTypes   = []string{"JobFailed", "ConfigurationError", "PermissionError", "RevisionOutOfSync", "RevisionUnavailable", "SystemUnavailable"}
	maxOutputVarBytes = 122880
)

// Jobs is a fake of CodePipeline's job results (JSON 1.1, target prefix CodePipeline_20150709):
// PutJobSuccessResult and PutJobFailureResult, validated against the API's limits and
// recorded. A job takes one result; a second one, or one for a cancelled job, is refused with
// InvalidJobStateException. A success with a continuation token creates the job CodePipeline
// would send next (JobResult.NextJobID), in the same pipeline context. GetJobDetails answers
// the pipeline context of the jobs a test registered (Register) and of their continuations,
// and JobNotFoundException for any other job id, as CodePipeline does. It is safe for
// concurrent use.
type Jobs struct {
	*endpoint

	mu        sync.Mutex
	results   []JobResult
	answered  map[string]bool
	cancelled map[string]bool
	contexts  map[string]JobContext
	seq       int
}

// JobContext is where a job runs: GetJobDetails' jobDetails.data.pipelineContext.
type JobContext struct {
	Pipeline    string // pipelineName
	ExecutionID string // pipelineExecutionId
	Stage       string // stage.name
	Action      string // action.name
}

// JobNotFound is what CodePipeline answers for a job id it does not know.
var JobNotFound = Error{Code: "JobNotFoundException", Status: http.StatusBadRequest, Message: "The job was specified in an invalid format or cannot be found."}

// JobResult is one accepted PutJobSuccessResult or PutJobFailureResult.
type JobResult struct {
	JobID     string
	Succeeded bool
	// Success: the continuation token, executionDetails and outputVariables.
	ContinuationToken   string
	Summary             string
	ExternalExecutionID string
	PercentComplete     *int32
	OutputVariables     map[string]string
	// Failure: failureDetails (ExternalExecutionID above is its externalExecutionId).
	FailureType    string
	FailureMessage string
	// NextJobID is the job that continues this one when ContinuationToken is set.
	NextJobID string
}

// NewJobs starts a job-result fake; the test's Cleanup stops it.
func NewJobs(tb testing.TB) *Jobs {
	tb.Helper()
	f := &Jobs{answered: map[string]bool{}, cancelled: map[string]bool{}, contexts: map[string]JobContext{}}
	f.endpoint = newEndpoint(tb, "CodePipeline_20150709", map[string]op{
		OpPutJobSuccessResult: f.putJobSuccessResult,
		OpPutJobFailureResult: f.putJobFailureResult,
		OpGetJobDetails:       f.getJobDetails,
	})
	return f
}

// Client returns an SDK client for the fake (see Config) that sends through HTTPClient;
// optFns apply last.
func (f *Jobs) Client(tb testing.TB, optFns ...func(*codepipeline.Options)) *codepipeline.Client {
	tb.Helper()
	return codepipeline.NewFromConfig(f.Config(), append([]func(*codepipeline.Options){func(o *codepipeline.Options) { o.HTTPClient = HTTPClient() }}, optFns...)...)
}

// Register makes GetJobDetails answer the job with c, as CodePipeline knows every job it
// created. A job's continuations (JobResult.NextJobID) inherit it.
func (f *Jobs) Register(jobID string, c JobContext) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contexts[jobID] = c
}

// Cancel makes the job refuse results from now on, as CodePipeline does once the job's
// execution is cancelled.
func (f *Jobs) Cancel(jobID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled[jobID] = true
}

// Results returns the accepted results, in order.
func (f *Jobs) Results() []JobResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.results)
	for i := range out {
		out[i].OutputVariables = maps.Clone(out[i].OutputVariables)
	}
	return out
}

// Result returns the result of one job.
func (f *Jobs) Result(jobID string) (JobResult, bool) {
	for _, r := range f.Results() {
		if r.JobID == jobID {
			return r, true
		}
	}
	return JobResult{}, false
}

// take checks that the job accepts a result and marks it answered. The caller holds f.mu.
func (f *Jobs) take(jobID string) *Error {
	if !jobIDPattern.MatchString(jobID) {
		return validation("1 validation error detected: Value '%s' at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", jobID)
	}
	if f.answered[jobID] || f.cancelled[jobID] {
		e := InvalidJobState
		return &e
	}
	f.answered[jobID] = true
	return nil
}

func lengthBetween(field, v string, lo, hi int) *Error {
	if len(v) < lo || len(v) > hi {
		return validation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length between %d and %d", field, lo, hi)
	}
	return nil
}

func (f *Jobs) putJobSuccessResult(body []byte) (any, *Error) {
	var in struct {
		JobID             string  `json:"jobId"`
		ContinuationToken *string `json:"continuationToken"`
		ExecutionDetails  *struct {
			Summary             *string `json:"summary"`
			ExternalExecutionID *string `json:"externalExecutionId"`
			PercentComplete     *int32  `json:"percentComplete"`
		} `json:"executionDetails"`
		OutputVariables map[string]string `json:"outputVariables"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	res := JobResult{JobID: in.JobID, Succeeded: true, OutputVariables: in.OutputVariables}
	if in.ContinuationToken != nil {
		if err := lengthBetween("continuationToken", *in.ContinuationToken, 1, MaxContinuationToken); err != nil {
			return nil, err
		}
		res.ContinuationToken = *in.ContinuationToken
	}
	if d := in.ExecutionDetails; d != nil {
		if d.Summary != nil {
			if err := lengthBetween("executionDetails.summary", *d.Summary, 1, MaxExecutionSummary); err != nil {
				return nil, err
			}
			res.Summary = *d.Summary
		}
		if d.ExternalExecutionID != nil {
			if err := lengthBetween("executionDetails.externalExecutionId", *d.ExternalExecutionID, 1, MaxExternalExecutionID); err != nil {
				return nil, err
			}
			res.ExternalExecutionID = *d.ExternalExecutionID
		}
		if p := d.PercentComplete; p != nil && (*p < 0 || *p > 100) {
			return nil, validation("1 validation error detected: Value '%d' at 'executionDetails.percentComplete' failed to satisfy constraint: Member must have value between 0 and 100", *p)
		}
		res.PercentComplete = d.PercentComplete
	}
	if len(in.OutputVariables) > 0 {
		if in.ContinuationToken != nil {
			return nil, validation("outputVariables can be included only when there is no continuation token")
		}
		size := 0
		for k, v := range in.OutputVariables {
			if !outputVarPattern.MatchString(k) {
				return nil, validation("output variable name %q must satisfy regular expression pattern: [A-Za-z0-9@\\-_]+", k)
			}
			size += len(k) + len(v)
		}
		if size > maxOutputVarBytes {
			return nil, clientError("OutputVariablesSizeExceededException", "Output variables exceed the maximum size of %d bytes", maxOutputVarBytes)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(in.JobID); err != nil {
		return nil, err
	}
	if res.ContinuationToken != "" {
		f.seq++
		res.NextJobID = fmt.Sprintf("c0a71000-0000-4000-8000-%012x", f.seq)
		if c, ok := f.contexts[in.JobID]; ok {
			f.contexts[res.NextJobID] = c
		}
	}
	f.results = append(f.results, res)
	return struct{}{}, nil
}

func (f *Jobs) putJobFailureResult(body []byte) (any, *Error) {
	var in struct {
		JobID          string `json:"jobId"`
		FailureDetails *struct {
			Type                string  `json:"type"`
			Message             string  `json:"message"`
			ExternalExecutionID *string `json:"externalExecutionId"`
		} `json:"failureDetails"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	d := in.FailureDetails
	if d == nil {
		return nil, validation("1 validation error detected: Value null at 'failureDetails' failed to satisfy constraint: Member must not be null")
	}
	if !slices.Contains(jobFailureTypes, d.Type) {
		return nil, validation("1 validation error detected: Value '%s' at 'failureDetails.type' failed to satisfy constraint: Member must satisfy enum value set: %v", d.Type, jobFailureTypes)
	}
	if err := lengthBetween("failureDetails.message", d.Message, 1, MaxFailureMessage); err != nil {
		return nil, err
	}
	res := JobResult{JobID: in.JobID, FailureType: d.Type, FailureMessage: d.Message}
	if d.ExternalExecutionID != nil {
		if err := lengthBetween("failureDetails.externalExecutionId", *d.ExternalExecutionID, 1, MaxExternalExecutionID); err != nil {
			return nil, err
		}
		res.ExternalExecutionID = *d.ExternalExecutionID
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.take(in.JobID); err != nil {
		return nil, err
	}
	f.results = append(f.results, res)
	return struct{}{}, nil
}

// getJobDetails answers a registered job's pipeline context ("GetJobDetails", CodePipeline API
// Reference, https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GetJobDetails.html).
// The real answer also holds the action's configuration, artifacts and artifact credentials;
// the fake sends the id, the account and the pipeline context.
func (f *Jobs) getJobDetails(body []byte) (any, *Error) {
	var in struct {
		JobID string `json:"jobId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !jobIDPattern.MatchString(in.JobID) {
		return nil, validation("1 validation error detected: Value '%s' at 'jobId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", in.JobID)
	}
	f.mu.Lock()
	c, ok := f.contexts[in.JobID]
	f.mu.Unlock()
	if !ok {
		e := JobNotFound
		return nil, &e
	}
	type name struct {
		Name string `json:"name,omitempty"`
	}
	type action struct {
		Name              string `json:"name,omitempty"`
		ActionExecutionID string `json:"actionExecutionId,omitempty"`
	}
	type pipelineContext struct {
		PipelineName        string `json:"pipelineName,omitempty"`
		PipelineArn         string `json:"pipelineArn,omitempty"`
		PipelineExecutionID string `json:"pipelineExecutionId,omitempty"`
		Stage               name   `json:"stage"`
		Action              action `json:"action"`
	}
	type data struct {
		PipelineContext pipelineContext `json:"pipelineContext"`
	}
	type details struct {
		ID        string `json:"id"`
		AccountID string `json:"accountId"`
		Data      data   `json:"data"`
	}
	pc := pipelineContext{PipelineName: c.Pipeline, PipelineExecutionID: c.ExecutionID, Stage: name{c.Stage}, Action: action{Name: c.Action}}
	if c.Pipeline != "" {
		pc.PipelineArn = "arn:aws:codepipeline:" + Region + ":123456789012:" + c.Pipeline
	}
	return struct {
		JobDetails details `json:"jobDetails"`
	}{details{ID: in.JobID, AccountID: "123456789012", Data: data{PipelineContext: pc}}}, nil
}
