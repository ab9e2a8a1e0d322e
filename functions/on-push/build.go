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
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// build wires the handler: AWS clients from the environment or, under LP_STORE=memory
// (scripts/invoke), a store in memory and stand-ins that log what they would ask (commits.go).
func build(getenv func(string) string, log *slog.Logger) (*handler, error) {
	cfg, err := config.Load(getenv, "ACCOUNT_ID")
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	h := &pushstart.Pushes{Log: log, Clock: clock, PipelineName: cfg.PipelineName, RepositoryName: cfg.RepositoryName, Branch: cfg.TrackedBranch,
		Home: cfg.Home}
	// One control plane for the account's projects: without PIPELINE_NAME (the per-account
	// template sets none), pushes are routed by the repository's project (PROJECTS, then the
	// table's PROJECT items).
	multi := getenv("PIPELINE_NAME") == "" && !cfg.LocalStore
	param, err := pipeline.ParseProjects(getenv("PROJECTS"))
	if err != nil {
		return nil, err
	}
	redrive := &pushstart.Redrive{Pushes: h, Region: getenv("AWS_REGION")}
	if cfg.LocalStore {
		h.Store, h.Commits, h.Pipelines = runstore.NewMemory(), localAWS{log}, localAWS{log}
		redrive.Branches, redrive.Executions = localAWS{log}, localAWS{log}
		return &handler{Pushes: h, redrive: redrive}, nil
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg)
	h.Store = runstore.NewDynamo(db, cfg.RunsTable, clock).WithRetention(cfg.Retention)
	if multi {
		table := runstore.NewProjects(db, cfg.RunsTable)
		h.Projects = &projects.Lookup{Parameter: param, Store: table}
		redrive.Projects = projects.Declared{Parameter: param, Store: table}
	}
	cc := commits{codecommit.NewFromConfig(awsCfg)}
	cp := codepipeline.NewFromConfig(awsCfg)
	h.Commits, h.Pipelines = cc, codepipelineapi.Starter{API: cp}
	redrive.Branches, redrive.Executions = cc, codepipelineapi.Lister{API: cp}
	return &handler{Pushes: h, redrive: redrive}, nil
}
