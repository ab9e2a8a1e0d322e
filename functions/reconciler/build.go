package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/config"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// build wires the reconciler: the runs table and CodePipeline from the environment or, under
// LP_STORE=memory (scripts/invoke), an empty store in memory and a CodePipeline that knows no
// execution, so that nothing is asked about.
func build(getenv func(string) string, log *slog.Logger) (*accountReconciler, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	metrics := dora.Emit(os.Stdout, log, dora.DefaultRule()) // as on-pipeline-event: runs it ends
	r := &reconcile.Reconciler{Log: log, Clock: clock, PipelineName: cfg.PipelineName, StaleAfter: cfg.StaleAfter}
	if cfg.LocalStore {
		mem := runstore.NewMemory()
		r.Runs, r.Executions, r.Recorder = mem, noPipeline{}, mem.Recorder(lambdaio.LogNotifier{Logger: log}, clock).OnEnded(metrics)
		if r.PipelineName == "" {
			r.PipelineName = "my-lambda-pipeline"
		}
		return &accountReconciler{Reconciler: r}, nil
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	param, err := pipeline.ParseProjects(getenv("PROJECTS"))
	if err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg)
	store := runstore.NewDynamo(db, cfg.RunsTable, clock).WithRetention(cfg.Retention)
	r.Runs, r.Recorder, r.Requeue, r.SweepApprovals = store, store.Recorder().OnEnded(metrics), store.Requeue, store.SweepApprovals
	cp := codepipeline.NewFromConfig(awsCfg)
	r.Executions, r.Discover = codepipelineapi.Reader{API: cp}, codepipelineapi.Lister{API: cp}
	// Without PIPELINE_NAME (the per-account template): every declared project's pipeline.
	return &accountReconciler{Reconciler: r, parameter: param, projects: runstore.NewProjects(db, cfg.RunsTable), foreign: store}, nil
}

// noPipeline stands in for CodePipeline under LP_STORE=memory: it knows no execution, so a run
// it is asked about is logged and left as it is.
type noPipeline struct{}

func (noPipeline) Execution(_ context.Context, k pipeline.Key) (pipeline.ExecutionView, error) {
	return pipeline.ExecutionView{}, fmt.Errorf("local run: no CodePipeline knows %s: %w", k.ExecutionID, pipeline.ErrNotFound)
}
