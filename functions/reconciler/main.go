// Command reconciler runs on a schedule and settles runs whose final events were lost, by asking
// CodePipeline for the truth and folding it into the record.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/handler"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func main() {
	log := lambdaio.NewLogger()
	cfg, err := handler.LoadConfig(os.Getenv, "PIPELINE_NAME")
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	r := &handler.Reconciler{Log: log, PipelineName: cfg.PipelineName, StaleAfter: cfg.StaleAfter}
	if cfg.LocalStore {
		// scripts/invoke: no AWS, and an empty store, so nothing to ask CodePipeline about.
		mem := runstore.NewMemory()
		r.Runs, r.Pipelines = mem, noPipeline{}
		r.Recorder = &pipeline.Recorder{Runs: mem, Outcomes: mem, Dispatch: &pipeline.Direct{Claims: mem, Notifier: handler.LogNotifier{Log: log}}}
	} else {
		awsCfg, err := awsconfig.FromEnv(os.Getenv)
		if err != nil {
			log.Error("AWS configuration", "error", err.Error())
			os.Exit(1)
		}
		store := runstore.NewDynamo(dynamodb.NewFromConfig(awsCfg), cfg.RunsTable).WithRetention(cfg.Retention)
		r.Runs, r.Pipelines = store, codepipeline.NewFromConfig(awsCfg)
		// As on-pipeline-event: decided notifications go to the outbox; the notifier sends them.
		r.Recorder = &pipeline.Recorder{Runs: store, Outcomes: store, Dispatch: runstore.Outbox{Store: store}}
		r.Requeue = store.Requeue
	}
	lambda.Start(r.Handle)
}
