// Command on-push starts a pipeline run, pinned to the pushed commit, for each push to the
// tracked branch, and records the push.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/handler"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func main() {
	log := lambdaio.NewLogger()
	cfg, err := handler.LoadConfig(os.Getenv, "PIPELINE_NAME", "REPOSITORY_NAME")
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	h := &handler.Pushes{Log: log, PipelineName: cfg.PipelineName, RepositoryName: cfg.RepositoryName, Branch: cfg.TrackedBranch}
	if cfg.LocalStore {
		// scripts/invoke: no AWS; the look-up and the start are logged instead.
		h.Store, h.Commits, h.Pipelines = runstore.NewMemory(), localAWS{log}, localAWS{log}
	} else {
		awsCfg, err := awsconfig.FromEnv(os.Getenv)
		if err != nil {
			log.Error("AWS configuration", "error", err.Error())
			os.Exit(1)
		}
		h.Store = runstore.NewDynamo(dynamodb.NewFromConfig(awsCfg), cfg.RunsTable).WithRetention(cfg.Retention)
		h.Commits = commits{codecommit.NewFromConfig(awsCfg)}
		h.Pipelines = codepipeline.NewFromConfig(awsCfg)
	}
	lambda.Start(h.Handle)
}
