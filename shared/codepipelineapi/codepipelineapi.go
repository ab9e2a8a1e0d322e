// Package codepipelineapi is the CodePipeline adapter: it starts runs pinned to a commit and
// reads what the API knows of an execution, in the domain's types (pipeline.ExecutionView).
// It is the one place that converts CodePipeline's API shapes; the reconciler and the
// notifier's enrichment both read executions through it.
package codepipelineapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// StartAPI is the part of the CodePipeline client that starts runs.
type StartAPI interface {
	StartPipelineExecution(ctx context.Context, in *codepipeline.StartPipelineExecutionInput, optFns ...func(*codepipeline.Options)) (*codepipeline.StartPipelineExecutionOutput, error)
}

// ReadAPI is the part of the CodePipeline client that reads executions.
type ReadAPI interface {
	GetPipelineExecution(ctx context.Context, in *codepipeline.GetPipelineExecutionInput, optFns ...func(*codepipeline.Options)) (*codepipeline.GetPipelineExecutionOutput, error)
	ActionsAPI
}

// ActionsAPI is the part of the CodePipeline client that lists action executions.
type ActionsAPI interface {
	ListActionExecutions(ctx context.Context, in *codepipeline.ListActionExecutionsInput, optFns ...func(*codepipeline.Options)) (*codepipeline.ListActionExecutionsOutput, error)
}

// ListAPI is the part of the CodePipeline client that lists a pipeline's executions.
type ListAPI interface {
	ListPipelineExecutions(ctx context.Context, in *codepipeline.ListPipelineExecutionsInput, optFns ...func(*codepipeline.Options)) (*codepipeline.ListPipelineExecutionsOutput, error)
}

var (
	_ StartAPI = (*codepipeline.Client)(nil)
	_ ReadAPI  = (*codepipeline.Client)(nil)
	_ ListAPI  = (*codepipeline.Client)(nil)
)

// SourceAction is the pipeline's source action, which Start pins to the pushed commit
// (infrastructure/pipeline.yml names it).
const SourceAction = "Source"

// Starter starts pipeline runs.
type Starter struct{ API StartAPI }

// Start starts a run of pipelineName on commitID. token is the clientRequestToken: a retry with
// the same token names the same execution.
func (s Starter) Start(ctx context.Context, pipelineName, commitID, token string) (string, error) {
	out, err := s.API.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{
		Name:               aws.String(pipelineName),
		ClientRequestToken: aws.String(token),
		SourceRevisions: []types.SourceRevisionOverride{{
			ActionName:    aws.String(SourceAction),
			RevisionType:  types.SourceRevisionTypeCommitId,
			RevisionValue: aws.String(commitID),
		}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.PipelineExecutionId), nil
}

// RecentPage is how many executions Lister.Recent asks for: one page, enough to hold every run
// of a branch head that was pushed in the last few hours on the busiest pipeline.
const RecentPage = 50

// Lister lists a pipeline's executions.
type Lister struct{ API ListAPI }

// Recent returns the pipeline's most recent executions (one page of ListPipelineExecutions,
// RecentPage of them; the API lists them newest first), each with the source revisions it
// runs. It returns an error wrapping pipeline.ErrNotFound when the pipeline does not exist.
// "ListPipelineExecutions", AWS CodePipeline API Reference,
// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ListPipelineExecutions.html
func (l Lister) Recent(ctx context.Context, pipelineName string) ([]pipeline.ExecutionSummary, error) {
	out, err := l.API.ListPipelineExecutions(ctx, &codepipeline.ListPipelineExecutionsInput{
		PipelineName: aws.String(pipelineName), MaxResults: aws.Int32(RecentPage)})
	if err != nil {
		return nil, wrap(fmt.Sprintf("list executions of %s", pipelineName), err)
	}
	list := make([]pipeline.ExecutionSummary, 0, len(out.PipelineExecutionSummaries))
	for _, e := range out.PipelineExecutionSummaries {
		list = append(list, summary(e))
	}
	return list, nil
}

// summary converts one execution summary of ListPipelineExecutions.
func summary(e types.PipelineExecutionSummary) pipeline.ExecutionSummary {
	s := pipeline.ExecutionSummary{ExecutionID: aws.ToString(e.PipelineExecutionId), State: executionStates[e.Status],
		StartTime: aws.ToTime(e.StartTime)}
	if t := e.Trigger; t != nil {
		s.Trigger = pipeline.Trigger{Type: string(t.TriggerType), Detail: aws.ToString(t.TriggerDetail)}
	}
	for _, r := range e.SourceRevisions {
		if id := aws.ToString(r.RevisionId); id != "" {
			s.Revisions = append(s.Revisions, id)
		}
	}
	return s
}

// Reader reads executions.
type Reader struct {
	API ReadAPI
	// MaxActionPages bounds ListActionExecutions (0: no bound).
	MaxActionPages int
}

// Execution returns what CodePipeline knows of an execution, or pipeline.ErrNotFound when it
// knows neither the execution nor the pipeline (deleted, or history expired).
func (r Reader) Execution(ctx context.Context, k pipeline.Key) (pipeline.ExecutionView, error) {
	out, err := r.API.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{
		PipelineName: aws.String(k.Pipeline), PipelineExecutionId: aws.String(k.ExecutionID)})
	if err != nil {
		return pipeline.ExecutionView{}, wrap(fmt.Sprintf("get execution %s", k.ExecutionID), err)
	}
	exec := out.PipelineExecution
	if exec == nil {
		return pipeline.ExecutionView{}, fmt.Errorf("get execution %s: the answer holds no execution", k.ExecutionID)
	}
	v := pipeline.ExecutionView{State: executionStates[exec.Status], Version: int64(aws.ToInt32(exec.PipelineVersion))}
	if t := exec.Trigger; t != nil {
		v.Trigger = pipeline.Trigger{Type: string(t.TriggerType), Detail: aws.ToString(t.TriggerDetail)}
	}
	if v.Actions, err = Actions(ctx, r.API, k, r.MaxActionPages); err != nil {
		return pipeline.ExecutionView{}, err
	}
	return v, nil
}

// Actions lists an execution's action executions (at most MaxActionPages pages).
func (r Reader) Actions(ctx context.Context, k pipeline.Key) ([]pipeline.ActionExecution, error) {
	return Actions(ctx, r.API, k, r.MaxActionPages)
}

// Actions lists an execution's action executions (at most maxPages pages; 0: all).
func Actions(ctx context.Context, api ActionsAPI, k pipeline.Key, maxPages int) ([]pipeline.ActionExecution, error) {
	pages := codepipeline.NewListActionExecutionsPaginator(api, &codepipeline.ListActionExecutionsInput{
		PipelineName: aws.String(k.Pipeline),
		Filter:       &types.ActionExecutionFilter{PipelineExecutionId: aws.String(k.ExecutionID)},
		MaxResults:   aws.Int32(100),
	})
	var out []pipeline.ActionExecution
	for n := 0; pages.HasMorePages() && (maxPages == 0 || n < maxPages); n++ {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, wrap(fmt.Sprintf("list action executions of %s", k.ExecutionID), err)
		}
		for _, a := range page.ActionExecutionDetails {
			out = append(out, actionExecution(a))
		}
	}
	return out, nil
}

// Started returns the pipeline's executions that started at or after since, as
// ListPipelineExecutions reports them ("a summary of the most recent executions",
// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_ListPipelineExecutions.html),
// reading pages of 100 until one holds no execution that recent: one call when since is a
// few passes ago. It returns an error wrapping pipeline.ErrNotFound when CodePipeline does
// not know the pipeline.
func (l Lister) Started(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.ExecutionSummary, error) {
	pages := codepipeline.NewListPipelineExecutionsPaginator(l.API, &codepipeline.ListPipelineExecutionsInput{
		PipelineName: aws.String(pipelineName), MaxResults: aws.Int32(100)})
	var out []pipeline.ExecutionSummary
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, wrap("list executions of "+pipelineName, err)
		}
		recent := false
		for _, e := range page.PipelineExecutionSummaries {
			if aws.ToTime(e.StartTime).Before(since) {
				continue
			}
			recent = true
			out = append(out, summary(e))
		}
		// The API does not say it lists newest first, only "the most recent": a page with
		// nothing recent enough ends the walk, whatever the order within it.
		if !recent {
			break
		}
	}
	return out, nil
}

// wrap adds what failed to err, and makes CodePipeline's not-found errors pipeline.ErrNotFound.
func wrap(what string, err error) error {
	var noExec *types.PipelineExecutionNotFoundException
	var noPipeline *types.PipelineNotFoundException
	if errors.As(err, &noExec) || errors.As(err, &noPipeline) {
		return fmt.Errorf("%s: %w (%w)", what, pipeline.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Mappings from CodePipeline's API statuses to the EventBridge states the fold knows.
var (
	actionStates = map[types.ActionExecutionStatus]pipeline.State{
		types.ActionExecutionStatusInProgress: pipeline.StateStarted,
		types.ActionExecutionStatusSucceeded:  pipeline.StateSucceeded,
		types.ActionExecutionStatusFailed:     pipeline.StateFailed,
		types.ActionExecutionStatusAbandoned:  pipeline.StateAbandoned,
	}
	executionStates = map[types.PipelineExecutionStatus]pipeline.State{
		types.PipelineExecutionStatusInProgress: pipeline.StateStarted,
		types.PipelineExecutionStatusSucceeded:  pipeline.StateSucceeded,
		types.PipelineExecutionStatusFailed:     pipeline.StateFailed,
		types.PipelineExecutionStatusStopped:    pipeline.StateStopped,
		types.PipelineExecutionStatusStopping:   pipeline.StateStopping,
		types.PipelineExecutionStatusSuperseded: pipeline.StateSuperseded,
		types.PipelineExecutionStatusCancelled:  pipeline.StateCanceled,
	}
)

// actionExecution converts one action execution. errorDetails.message is the reason a failed
// action gives, so it is the summary a person reads; the external summary is the fallback.
func actionExecution(a types.ActionExecutionDetail) pipeline.ActionExecution {
	out := pipeline.ActionExecution{Stage: aws.ToString(a.StageName), Action: aws.ToString(a.ActionName), State: actionStates[a.Status],
		ExecutionID: aws.ToString(a.ActionExecutionId), StartTime: aws.ToTime(a.StartTime), UpdatedAt: aws.ToTime(a.LastUpdateTime)}
	if in := a.Input; in != nil {
		out.Region = aws.ToString(in.Region)
		if t := in.ActionTypeId; t != nil {
			out.Type = pipeline.ActionType{Owner: string(t.Owner), Category: string(t.Category), Provider: aws.ToString(t.Provider), Version: aws.ToString(t.Version)}
		}
		out.Input = artifacts(in.InputArtifacts)
	}
	if o := a.Output; o != nil {
		out.Output = artifacts(o.OutputArtifacts)
		if res := o.ExecutionResult; res != nil {
			out.Result = pipeline.ExecutionResult{ExternalID: aws.ToString(res.ExternalExecutionId), Summary: aws.ToString(res.ExternalExecutionSummary),
				URL: aws.ToString(res.ExternalExecutionUrl)}
			if d := res.ErrorDetails; d != nil {
				out.Result.ErrorCode = aws.ToString(d.Code)
				out.Result.Summary = cmp.Or(aws.ToString(d.Message), out.Result.Summary)
			}
		}
	}
	return out
}

func artifacts(list []types.ArtifactDetail) []pipeline.Artifact {
	var out []pipeline.Artifact
	for _, a := range list {
		art := pipeline.Artifact{Name: aws.ToString(a.Name)}
		if loc := a.S3location; loc != nil {
			art.Bucket, art.Key = aws.ToString(loc.Bucket), aws.ToString(loc.Key)
		}
		out = append(out, art)
	}
	return out
}
