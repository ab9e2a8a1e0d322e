package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/config"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// build wires the handler: the runs table from the environment or, under LP_STORE=memory
// (scripts/invoke), a store in memory whose decided notifications are logged. ACCOUNT_ID and
// AWS_REGION are the home: events of pipelines elsewhere are kept apart by their ARN.
func build(getenv func(string) string, log *slog.Logger) (*recording.PipelineEvents, error) {
	cfg, err := config.Load(getenv, "ACCOUNT_ID")
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	// Each attempt that ends writes its metrics to standard output in CloudWatch's embedded
	// metric format: the dashboard's data, at no API call.
	metrics := dora.Emit(os.Stdout, log, dora.DefaultRule())
	if cfg.LocalStore {
		r := runstore.NewMemory().Recorder(lambdaio.LogNotifier{Logger: log}, clock).OnEnded(metrics)
		return &recording.PipelineEvents{Recorder: r, Log: log, Clock: clock, Home: cfg.Home}, nil
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg)
	store := runstore.NewDynamo(db, cfg.RunsTable, clock).WithRetention(cfg.Retention)
	h := &recording.PipelineEvents{Recorder: store.Recorder().OnEnded(metrics), Log: log, Clock: clock, Home: cfg.Home, Foreign: store}
	// One control plane for the account's projects (no PIPELINE_NAME): each event says
	// whether its pipeline belongs to a declared project (PROJECTS, then the PROJECT item).
	if getenv("PIPELINE_NAME") == "" {
		param, err := pipeline.ParseProjects(getenv("PROJECTS"))
		if err != nil {
			return nil, err
		}
		h.Projects = &projects.Lookup{Parameter: param, Store: runstore.NewProjects(db, cfg.RunsTable)}
	}
	return h, nil
}
