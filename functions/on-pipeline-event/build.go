package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/config"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// build wires the handler: the runs table from the environment or, under LP_STORE=memory
// (scripts/invoke), a store in memory whose decided notifications are logged.
func build(getenv func(string) string, log *slog.Logger) (*recording.PipelineEvents, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	if cfg.LocalStore {
		return &recording.PipelineEvents{Recorder: runstore.NewMemory().Recorder(lambdaio.LogNotifier{Logger: log}, clock), Log: log, Clock: clock}, nil
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	store := runstore.NewDynamo(dynamodb.NewFromConfig(awsCfg), cfg.RunsTable, clock).WithRetention(cfg.Retention)
	return &recording.PipelineEvents{Recorder: store.Recorder(), Log: log, Clock: clock}, nil
}
