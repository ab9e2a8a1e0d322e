package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Every project's pipeline invokes the one deployer, and a job's UserParameters are written by
// the project's pushers (infrastructure/pipeline.yml is deployed by the pipeline onto itself).
// What a push cannot write is where the job runs: CodePipeline reports it in GetJobDetails'
// pipelineContext ("GetJobDetails", CodePipeline API Reference,
// https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_GetJobDetails.html; the
// Lambda invoke event itself does not name the pipeline). So before anything else, every job
// is scoped by it: its pipeline's project's stacks only (pipeline.StacksOf), and the approval
// of an IAM widening keyed by the pipeline and execution CodePipeline names, never by
// UserParameters' own.

// JobContext is where a CodePipeline job runs, as CodePipeline reports it.
type JobContext struct {
	Pipeline  string // pipelineName
	Execution string // pipelineExecutionId
	Stage     string // stage.name
	Action    string // action.name
}

// jobContext asks CodePipeline where the job runs. An answer without a pipeline name or an
// execution id is an error (errNoContext), which no retry mends.
func (h *JobHandler) jobContext(ctx context.Context, jobID string) (JobContext, error) {
	out, err := h.Jobs.GetJobDetails(ctx, &codepipeline.GetJobDetailsInput{JobId: aws.String(jobID)})
	if err != nil {
		return JobContext{}, err
	}
	var jc JobContext
	if d := out.JobDetails; d != nil && d.Data != nil && d.Data.PipelineContext != nil {
		pc := d.Data.PipelineContext
		jc.Pipeline, jc.Execution = aws.ToString(pc.PipelineName), aws.ToString(pc.PipelineExecutionId)
		if pc.Stage != nil {
			jc.Stage = aws.ToString(pc.Stage.Name)
		}
		if pc.Action != nil {
			jc.Action = aws.ToString(pc.Action.Name)
		}
	}
	if jc.Pipeline == "" || jc.Execution == "" {
		return jc, errNoContext
	}
	return jc, nil
}

var errNoContext = errors.New("CodePipeline's job details name no pipeline and execution")

// where names the job's action for messages: "action DeployFunction (stage CreateUpdateLambda)
// of pipeline a-pipeline".
func (jc JobContext) where() string {
	s := "pipeline " + jc.Pipeline
	if jc.Action != "" {
		if jc.Stage != "" {
			return fmt.Sprintf("action %s (stage %s) of %s", jc.Action, jc.Stage, s)
		}
		return fmt.Sprintf("action %s of %s", jc.Action, s)
	}
	return s
}

// Scope says why the job may not deploy what its UserParameters ask for, or "" when it may: the
// stack must be one of the pipeline's project's stacks (pipeline.StacksOf), and the pipeline
// and execution UserParameters name, when they name them, must be the job's own.
func (jc JobContext) Scope(p UserParameters) string {
	project := pipeline.ProjectOfPipeline(jc.Pipeline)
	if project == "" {
		return fmt.Sprintf("refused: the job runs in %s, which is not a project's pipeline (<project>-pipeline), and the deployer deploys only for its projects; UserParameters name stack %s; nothing was deployed",
			jc.where(), p.StackName)
	}
	if allowed := pipeline.StacksOf(project); !slices.Contains(allowed, p.StackName) {
		return fmt.Sprintf("refused: UserParameters name stack %s, but the job runs in %s, and project %s's pipeline may deploy only stacks %s; nothing was deployed",
			p.StackName, jc.where(), project, strings.Join(allowed, " and "))
	}
	if p.Pipeline != "" && p.Pipeline != jc.Pipeline {
		return fmt.Sprintf("refused: UserParameters name pipeline %s, but the job runs in %s; nothing was deployed", p.Pipeline, jc.where())
	}
	if p.Execution != "" && p.Execution != jc.Execution {
		return fmt.Sprintf("refused: UserParameters name execution %s, but the job runs in execution %s of %s; nothing was deployed", p.Execution, jc.Execution, jc.where())
	}
	return ""
}
