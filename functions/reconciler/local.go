package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
)

// noPipeline stands in for CodePipeline under LP_STORE=memory: it knows no execution, so a run
// it is asked about is logged and left as it is.
type noPipeline struct{}

func (noPipeline) GetPipelineExecution(context.Context, *codepipeline.GetPipelineExecutionInput, ...func(*codepipeline.Options)) (*codepipeline.GetPipelineExecutionOutput, error) {
	return nil, &types.PipelineExecutionNotFoundException{Message: aws.String("local run: no CodePipeline")}
}

func (noPipeline) ListActionExecutions(context.Context, *codepipeline.ListActionExecutionsInput, ...func(*codepipeline.Options)) (*codepipeline.ListActionExecutionsOutput, error) {
	return nil, &types.PipelineExecutionNotFoundException{Message: aws.String("local run: no CodePipeline")}
}
