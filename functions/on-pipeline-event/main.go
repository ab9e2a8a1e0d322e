// Command on-pipeline-event folds CodePipeline execution state changes into the run record and
// sends the failure and recovery notifications they call for.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/handler"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func main() {
	log := lambdaio.NewLogger()
	cfg, err := handler.LoadConfig(os.Getenv)
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	h := &handler.PipelineEvents{Recorder: recorder(cfg, log), Log: log}
	lambda.Start(h.Handle)
}

func recorder(cfg handler.Config, log *slog.Logger) *pipeline.Recorder {
	if cfg.LocalStore {
		// scripts/invoke: no AWS; the decisions are logged instead of queued.
		mem := runstore.NewMemory()
		return &pipeline.Recorder{Runs: mem, Outcomes: mem, Dispatch: &pipeline.Direct{Claims: mem, Notifier: handler.LogNotifier{Log: log}}}
	}
	awsCfg, err := awsconfig.FromEnv(os.Getenv)
	if err != nil {
		log.Error("AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	store := runstore.NewDynamo(dynamodb.NewFromConfig(awsCfg), cfg.RunsTable).WithRetention(cfg.Retention)
	// Decided notifications go to the outbox; the notifier function sends them.
	return &pipeline.Recorder{Runs: store, Outcomes: store, Dispatch: runstore.Outbox{Store: store}}
}
