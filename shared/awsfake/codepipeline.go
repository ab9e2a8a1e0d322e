package awsfake

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// CodePipeline operations the fake answers.
const (
	OpStartPipelineExecution = "StartPipelineExecution"
	OpGetPipelineExecution   = "GetPipelineExecution"
	OpListActionExecutions   = "ListActionExecutions"
	OpListPipelineExecutions = "ListPipelineExecutions"
)

// CodePipeline is a stateful fake of the CodePipeline API (JSON 1.1, target prefix
// CodePipeline_20150709): StartPipelineExecution, GetPipelineExecution, ListActionExecutions,
// ListPipelineExecutions. It is safe for concurrent use.
type CodePipeline struct {
	*endpoint

	mu         sync.Mutex
	pipelines  map[string]bool
	executions map[string]*Execution // by execution id
	order      []string              // execution ids in creation order
	tokens     map[string]string     // pipeline + "\x00" + clientRequestToken → execution id
	starts     []StartCall
	actions    map[string][]ActionExecution // by execution id
	seq        int
}

// StartCall is one StartPipelineExecution request that the fake served (injected failures
// are not StartCalls; see Calls for those).
type StartCall struct {
	Pipeline           string
	ClientRequestToken string
	SourceRevisions    []SourceRevision
	Variables          map[string]string
	ExecutionID        string // the answer
	// Replayed is true when the token had been seen for this pipeline: the answer is the
	// first call's execution and no new execution started.
	Replayed bool
}

// SourceRevision is one entry of StartPipelineExecution's sourceRevisions.
type SourceRevision struct {
	ActionName    string `json:"actionName"`
	RevisionType  string `json:"revisionType"`
	RevisionValue string `json:"revisionValue"`
}

// Execution is a pipeline execution as GetPipelineExecution reports it.
type Execution struct {
	Pipeline      string
	ID            string
	Status        types.PipelineExecutionStatus
	StatusSummary string
	Version       int32
	TriggerType   types.TriggerType
	TriggerDetail string
	// SourceRevisions and Token are what StartPipelineExecution was called with. Scripted
	// executions without SourceRevisions list none (CodePipeline has not resolved them yet).
	SourceRevisions []SourceRevision
	Token           string
	// StartTime and LastUpdateTime, as ListPipelineExecutions reports them (omitted when zero).
	StartTime, LastUpdateTime time.Time
}

// ActionExecution is one action execution as ListActionExecutions reports it.
type ActionExecution struct {
	Stage, Action  string
	ID             string // actionExecutionId
	Status         types.ActionExecutionStatus
	StartTime      time.Time
	LastUpdateTime time.Time
	// The action type (input.actionTypeId) and region.
	Category, Owner, Provider, Version string
	Region                             string
	// output.executionResult
	ExternalID, Summary, URL string
	ErrorCode, ErrorMessage  string
	LogStreamARN             string
	InputArtifacts           []Artifact
	OutputArtifacts          []Artifact
}

// Artifact is an input or output artifact of an action execution, stored in S3.
type Artifact struct{ Name, Bucket, Key string }

// NewCodePipeline starts a fake that knows the given pipelines; the test's Cleanup stops it.
func NewCodePipeline(tb testing.TB, pipelines ...string) *CodePipeline {
	tb.Helper()
	f := &CodePipeline{pipelines: map[string]bool{}, executions: map[string]*Execution{}, tokens: map[string]string{},
		actions: map[string][]ActionExecution{}}
	for _, p := range pipelines {
		f.pipelines[p] = true
	}
	f.endpoint = newEndpoint(tb, "CodePipeline_20150709", map[string]op{
		OpStartPipelineExecution: f.startPipelineExecution,
		OpGetPipelineExecution:   f.getPipelineExecution,
		OpListActionExecutions:   f.listActionExecutions,
		OpListPipelineExecutions: f.listPipelineExecutions,
	})
	return f
}

// Client returns an SDK client for the fake (see Config); optFns apply last.
func (f *CodePipeline) Client(tb testing.TB, optFns ...func(*codepipeline.Options)) *codepipeline.Client {
	tb.Helper()
	return codepipeline.NewFromConfig(f.Config(), optFns...)
}

// AddPipeline makes a pipeline known.
func (f *CodePipeline) AddPipeline(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pipelines[name] = true
}

// SetExecution scripts an execution (its pipeline becomes known). It replaces one with the
// same id, so a test moves an execution on by setting it again. Status defaults to InProgress,
// Version to 1, TriggerType to StartPipelineExecution.
func (f *CodePipeline) SetExecution(e Execution) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pipelines[e.Pipeline] = true
	if e.Status == "" {
		e.Status = types.PipelineExecutionStatusInProgress
	}
	if e.Version == 0 {
		e.Version = 1
	}
	if e.TriggerType == "" {
		e.TriggerType = types.TriggerTypeStartPipelineExecution
	}
	if _, ok := f.executions[e.ID]; !ok {
		f.order = append(f.order, e.ID)
	}
	f.executions[e.ID] = &e
}

// SetStatus moves a known execution to status.
func (f *CodePipeline) SetStatus(executionID string, status types.PipelineExecutionStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.executions[executionID]; ok {
		e.Status = status
	}
}

// SetActionExecutions scripts the action executions of an execution, in the order
// ListActionExecutions returns them.
func (f *CodePipeline) SetActionExecutions(executionID string, actions ...ActionExecution) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions[executionID] = slices.Clone(actions)
}

// Execution returns a known execution.
func (f *CodePipeline) Execution(id string) (Execution, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.executions[id]
	if !ok {
		return Execution{}, false
	}
	return *e, true
}

// Starts returns the StartPipelineExecution calls served, in order.
func (f *CodePipeline) Starts() []StartCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts)
}

// Started returns the executions StartPipelineExecution created (replays excluded).
func (f *CodePipeline) Started() []Execution {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Execution
	for _, s := range f.starts {
		if !s.Replayed {
			out = append(out, *f.executions[s.ExecutionID])
		}
	}
	return out
}

// Limits and patterns from the CodePipeline API Reference
// (https://docs.aws.amazon.com/codepipeline/latest/APIReference/).
var (
	pipelineNamePattern = regexp.MustCompile(`^[A-Za-z0-9.@\-_]{1,100}$`)
	tokenPattern        = regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)
	executionIDPattern  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	revisionTypes       = []string{"COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"}
)

const maxSourceRevisions = 50

func validation(format string, args ...any) *Error {
	return clientError("ValidationException", format, args...)
}

func (f *CodePipeline) startPipelineExecution(body []byte) (any, *Error) {
	var in struct {
		Name               string           `json:"name"`
		ClientRequestToken *string          `json:"clientRequestToken"`
		SourceRevisions    []SourceRevision `json:"sourceRevisions"`
		Variables          []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"variables"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !pipelineNamePattern.MatchString(in.Name) {
		return nil, validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+", in.Name)
	}
	// The SDK fills in a UUID when the caller gives no token (it is an idempotency token), so
	// a request without one did not come through the SDK.
	if in.ClientRequestToken == nil || !tokenPattern.MatchString(*in.ClientRequestToken) {
		return nil, validation("1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9-]+$ and have length between 1 and 128")
	}
	if len(in.SourceRevisions) > maxSourceRevisions {
		return nil, validation("1 validation error detected: Value at 'sourceRevisions' failed to satisfy constraint: Member must have length less than or equal to %d", maxSourceRevisions)
	}
	for i, r := range in.SourceRevisions {
		if r.ActionName == "" || len(r.ActionName) > 100 {
			return nil, validation("sourceRevisions.%d.member.actionName must have length between 1 and 100", i+1)
		}
		if !slices.Contains(revisionTypes, r.RevisionType) {
			return nil, validation("sourceRevisions.%d.member.revisionType must satisfy enum value set: %v", i+1, revisionTypes)
		}
		if r.RevisionValue == "" || len(r.RevisionValue) > 1500 {
			return nil, validation("sourceRevisions.%d.member.revisionValue must have length between 1 and 1500", i+1)
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pipelines[in.Name] {
		return nil, clientError("PipelineNotFoundException", "Account '123456789012' does not have a pipeline with name '%s'", in.Name)
	}
	call := StartCall{Pipeline: in.Name, ClientRequestToken: *in.ClientRequestToken, SourceRevisions: slices.Clone(in.SourceRevisions)}
	if len(in.Variables) > 0 {
		call.Variables = map[string]string{}
		for _, v := range in.Variables {
			call.Variables[v.Name] = v.Value
		}
	}
	// AWS does not document what a repeated token does; the SDK marks it an idempotency token,
	// so the fake answers the first call's execution and starts nothing.
	tokenKey := in.Name + "\x00" + *in.ClientRequestToken
	if id, ok := f.tokens[tokenKey]; ok {
		call.ExecutionID, call.Replayed = id, true
		f.starts = append(f.starts, call)
		return map[string]string{"pipelineExecutionId": id}, nil
	}
	f.seq++
	id := fmt.Sprintf("5e7c0000-0000-4000-8000-%012d", f.seq)
	f.executions[id] = &Execution{Pipeline: in.Name, ID: id, Status: types.PipelineExecutionStatusInProgress, Version: 1,
		TriggerType: types.TriggerTypeStartPipelineExecution, TriggerDetail: "arn:aws:sts::123456789012:assumed-role/on-push/fake",
		SourceRevisions: call.SourceRevisions, Token: call.ClientRequestToken}
	f.order = append(f.order, id)
	f.tokens[tokenKey] = id
	call.ExecutionID = id
	f.starts = append(f.starts, call)
	return map[string]string{"pipelineExecutionId": id}, nil
}

// lookup finds an execution of a pipeline, with the errors the API names.
func (f *CodePipeline) lookup(pipelineName, executionID string) (*Execution, *Error) {
	if !pipelineNamePattern.MatchString(pipelineName) {
		return nil, validation("1 validation error detected: Value '%s' at 'pipelineName' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+", pipelineName)
	}
	if !executionIDPattern.MatchString(executionID) {
		return nil, validation("1 validation error detected: Value '%s' at 'pipelineExecutionId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", executionID)
	}
	if !f.pipelines[pipelineName] {
		return nil, clientError("PipelineNotFoundException", "Account '123456789012' does not have a pipeline with name '%s'", pipelineName)
	}
	e, ok := f.executions[executionID]
	if !ok || e.Pipeline != pipelineName {
		return nil, clientError("PipelineExecutionNotFoundException", "Pipeline execution ID %s does not exist in pipeline %s", executionID, pipelineName)
	}
	return e, nil
}

type wireTrigger struct {
	TriggerType   string `json:"triggerType,omitempty"`
	TriggerDetail string `json:"triggerDetail,omitempty"`
}

type wireArtifactRevision struct {
	Name       string `json:"name"`
	RevisionID string `json:"revisionId"`
}

type wireExecution struct {
	PipelineName        string                 `json:"pipelineName"`
	PipelineVersion     int32                  `json:"pipelineVersion"`
	PipelineExecutionID string                 `json:"pipelineExecutionId"`
	Status              string                 `json:"status"`
	StatusSummary       string                 `json:"statusSummary,omitempty"`
	ArtifactRevisions   []wireArtifactRevision `json:"artifactRevisions"`
	Trigger             wireTrigger            `json:"trigger"`
	ExecutionMode       string                 `json:"executionMode"`
	ExecutionType       string                 `json:"executionType"`
}

func (f *CodePipeline) getPipelineExecution(body []byte) (any, *Error) {
	var in struct {
		PipelineName        string `json:"pipelineName"`
		PipelineExecutionID string `json:"pipelineExecutionId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, apiErr := f.lookup(in.PipelineName, in.PipelineExecutionID)
	if apiErr != nil {
		return nil, apiErr
	}
	out := wireExecution{PipelineName: e.Pipeline, PipelineVersion: e.Version, PipelineExecutionID: e.ID, Status: string(e.Status),
		StatusSummary: e.StatusSummary, Trigger: wireTrigger{TriggerType: string(e.TriggerType), TriggerDetail: e.TriggerDetail},
		ExecutionMode: "SUPERSEDED", ExecutionType: "STANDARD", ArtifactRevisions: []wireArtifactRevision{}}
	for _, r := range e.SourceRevisions {
		out.ArtifactRevisions = append(out.ArtifactRevisions, wireArtifactRevision{Name: r.ActionName, RevisionID: r.RevisionValue})
	}
	return map[string]any{"pipelineExecution": out}, nil
}

type wireS3Location struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

type wireArtifact struct {
	Name       string          `json:"name"`
	S3Location *wireS3Location `json:"s3location,omitempty"`
}

type wireActionTypeID struct {
	Category string `json:"category"`
	Owner    string `json:"owner"`
	Provider string `json:"provider"`
	Version  string `json:"version"`
}

type wireErrorDetails struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type wireExecutionResult struct {
	ExternalExecutionID      string            `json:"externalExecutionId,omitempty"`
	ExternalExecutionSummary string            `json:"externalExecutionSummary,omitempty"`
	ExternalExecutionURL     string            `json:"externalExecutionUrl,omitempty"`
	ErrorDetails             *wireErrorDetails `json:"errorDetails,omitempty"`
	LogStreamARN             string            `json:"logStreamARN,omitempty"`
}

type wireActionDetail struct {
	PipelineExecutionID string      `json:"pipelineExecutionId"`
	ActionExecutionID   string      `json:"actionExecutionId"`
	PipelineVersion     int32       `json:"pipelineVersion"`
	StageName           string      `json:"stageName"`
	ActionName          string      `json:"actionName"`
	StartTime           *epoch      `json:"startTime,omitempty"`
	LastUpdateTime      *epoch      `json:"lastUpdateTime,omitempty"`
	Status              string      `json:"status"`
	UpdatedBy           string      `json:"updatedBy,omitempty"`
	Input               any         `json:"input"`
	Output              *wireOutput `json:"output,omitempty"`
}

type wireOutput struct {
	OutputArtifacts []wireArtifact       `json:"outputArtifacts"`
	ExecutionResult *wireExecutionResult `json:"executionResult,omitempty"`
	OutputVariables map[string]string    `json:"outputVariables,omitempty"`
}

func wireArtifacts(list []Artifact) []wireArtifact {
	out := make([]wireArtifact, 0, len(list))
	for _, a := range list {
		w := wireArtifact{Name: a.Name}
		if a.Bucket != "" || a.Key != "" {
			w.S3Location = &wireS3Location{Bucket: a.Bucket, Key: a.Key}
		}
		out = append(out, w)
	}
	return out
}

func (a ActionExecution) wire(e *Execution) wireActionDetail {
	d := wireActionDetail{PipelineExecutionID: e.ID, ActionExecutionID: a.ID, PipelineVersion: e.Version,
		StageName: a.Stage, ActionName: a.Action, StartTime: epochPtr(a.StartTime), LastUpdateTime: epochPtr(a.LastUpdateTime),
		Status: string(a.Status), UpdatedBy: "arn:aws:iam::123456789012:role/pipeline-role"}
	d.Input = struct {
		ActionTypeID   wireActionTypeID `json:"actionTypeId"`
		Region         string           `json:"region,omitempty"`
		InputArtifacts []wireArtifact   `json:"inputArtifacts"`
	}{wireActionTypeID{a.Category, a.Owner, a.Provider, a.Version}, a.Region, wireArtifacts(a.InputArtifacts)}
	if a.Status == types.ActionExecutionStatusInProgress {
		return d
	}
	res := &wireExecutionResult{ExternalExecutionID: a.ExternalID, ExternalExecutionSummary: a.Summary, ExternalExecutionURL: a.URL, LogStreamARN: a.LogStreamARN}
	if a.ErrorCode != "" || a.ErrorMessage != "" {
		res.ErrorDetails = &wireErrorDetails{Code: a.ErrorCode, Message: a.ErrorMessage}
	}
	d.Output = &wireOutput{OutputArtifacts: wireArtifacts(a.OutputArtifacts), ExecutionResult: res}
	return d
}

const defaultMaxResults = 100

// listActionExecutions pages through the scripted action executions: filtered by execution
// when the filter names one, else every execution of the pipeline. The nextToken is opaque to
// callers; a token the fake did not issue is InvalidNextTokenException.
func (f *CodePipeline) listActionExecutions(body []byte) (any, *Error) {
	var in struct {
		PipelineName string `json:"pipelineName"`
		Filter       *struct {
			PipelineExecutionID string `json:"pipelineExecutionId"`
		} `json:"filter"`
		MaxResults *int   `json:"maxResults"`
		NextToken  string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit := defaultMaxResults
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	all := []wireActionDetail{}
	scope := in.PipelineName
	if in.Filter != nil && in.Filter.PipelineExecutionID != "" {
		e, apiErr := f.lookup(in.PipelineName, in.Filter.PipelineExecutionID)
		if apiErr != nil {
			return nil, apiErr
		}
		scope += "/" + e.ID
		for _, a := range f.actions[e.ID] {
			all = append(all, a.wire(e))
		}
	} else {
		if !f.pipelines[in.PipelineName] {
			return nil, clientError("PipelineNotFoundException", "Account '123456789012' does not have a pipeline with name '%s'", in.PipelineName)
		}
		for _, id := range f.order {
			if e := f.executions[id]; e.Pipeline == in.PipelineName {
				for _, a := range f.actions[id] {
					all = append(all, a.wire(e))
				}
			}
		}
	}
	return page(all, limit, in.NextToken, scope, "actionExecutionDetails")
}

// page answers one page of a List call: limit items of all from where token left off, under
// field, with the token of the next page when there is one.
func page[T any](all []T, limit int, token, scope, field string) (any, *Error) {
	start := 0
	if token != "" {
		rest, ok := strings.CutPrefix(token, "fake|"+scope+"|")
		n, err := strconv.Atoi(rest)
		if !ok || err != nil || n <= 0 || n > len(all) {
			return nil, clientError("InvalidNextTokenException", "The next token was specified in an invalid format. Make sure that the next token you provide is the token returned by a previous call.")
		}
		start = n
	}
	end := min(start+limit, len(all))
	out := map[string]any{field: all[start:end]}
	if end < len(all) {
		out["nextToken"] = "fake|" + scope + "|" + strconv.Itoa(end)
	}
	return out, nil
}

type wireSourceRevision struct {
	ActionName string `json:"actionName"`
	RevisionID string `json:"revisionId,omitempty"`
}

type wireExecutionSummary struct {
	PipelineExecutionID string               `json:"pipelineExecutionId"`
	Status              string               `json:"status"`
	StartTime           *epoch               `json:"startTime,omitempty"`
	LastUpdateTime      *epoch               `json:"lastUpdateTime,omitempty"`
	SourceRevisions     []wireSourceRevision `json:"sourceRevisions"`
	Trigger             wireTrigger          `json:"trigger"`
	ExecutionMode       string               `json:"executionMode"`
}

// listPipelineExecutions pages through a pipeline's executions, the latest started first
// (executions without a start time in the order they were started or first scripted, latest
// first), in pages of maxResults (1–100, default 100). Each summary carries the source
// revisions StartPipelineExecution pinned (the revision value as revisionId).
// "ListPipelineExecutions", AWS CodePipeline API Reference,
// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ListPipelineExecutions.html
func (f *CodePipeline) listPipelineExecutions(body []byte) (any, *Error) {
	var in struct {
		PipelineName string `json:"pipelineName"`
		MaxResults   *int   `json:"maxResults"`
		NextToken    string `json:"nextToken"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !pipelineNamePattern.MatchString(in.PipelineName) {
		return nil, validation("1 validation error detected: Value '%s' at 'pipelineName' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+", in.PipelineName)
	}
	limit := defaultMaxResults
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pipelines[in.PipelineName] {
		return nil, clientError("PipelineNotFoundException", "Account '123456789012' does not have a pipeline with name '%s'", in.PipelineName)
	}
	var execs []*Execution
	for i := len(f.order) - 1; i >= 0; i-- {
		if e := f.executions[f.order[i]]; e.Pipeline == in.PipelineName {
			execs = append(execs, e)
		}
	}
	slices.SortStableFunc(execs, func(a, b *Execution) int { return b.StartTime.Compare(a.StartTime) })
	all := []wireExecutionSummary{}
	for _, e := range execs {
		w := wireExecutionSummary{PipelineExecutionID: e.ID, Status: string(e.Status), StartTime: epochPtr(e.StartTime),
			LastUpdateTime: epochPtr(e.LastUpdateTime), SourceRevisions: []wireSourceRevision{},
			Trigger: wireTrigger{TriggerType: string(e.TriggerType), TriggerDetail: e.TriggerDetail}, ExecutionMode: "SUPERSEDED"}
		for _, r := range e.SourceRevisions {
			w.SourceRevisions = append(w.SourceRevisions, wireSourceRevision{ActionName: r.ActionName, RevisionID: r.RevisionValue})
		}
		all = append(all, w)
	}
	return page(all, limit, in.NextToken, "executions/"+in.PipelineName, "pipelineExecutionSummaries")
}
