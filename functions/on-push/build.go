package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/config"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// build wires the handler: AWS clients from the environment or, under LP_STORE=memory
// (scripts/invoke), a store in memory and stand-ins that log what they would ask (commits.go).
func build(getenv func(string) string, log *slog.Logger) (*pushstart.Pushes, error) {
	cfg, err := config.Load(getenv, "PIPELINE_NAME", "REPOSITORY_NAME")
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	h := &pushstart.Pushes{Log: log, Clock: clock, PipelineName: cfg.PipelineName, RepositoryName: cfg.RepositoryName, Branch: cfg.TrackedBranch}
	if cfg.LocalStore {
		h.Store, h.Commits, h.Pipelines = runstore.NewMemory(), localAWS{log}, localAWS{log}
		return h, nil
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	h.Store = runstore.NewDynamo(dynamodb.NewFromConfig(awsCfg), cfg.RunsTable, clock).WithRetention(cfg.Retention)
	h.Commits = commits{codecommit.NewFromConfig(awsCfg)}
	h.Pipelines = codepipelineapi.Starter{API: codepipeline.NewFromConfig(awsCfg)}
	return h, nil
}
