// Command deployer runs CloudFormation deployments through change sets. One binary serves two
// callers: CodePipeline's Lambda Invoke action (the CreateUpdatePipeline and CreateUpdateLambda
// stages) and CloudFormation's PipelineStack custom resource. See docs/deployer.md.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

func main() {
	log := lambdaio.NewLogger()
	h, err := build(os.Getenv, log)
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

// build wires the handler: AWS clients from the environment, or, under LP_STORE=memory
// (scripts/invoke's default), dry runs that call nothing (local.go).
func build(getenv func(string) string, log *slog.Logger) (*handler, error) {
	if getenv("LP_STORE") == "memory" {
		return localHandler(log), nil
	}
	cfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	engine := &deploy.Engine{Stacks: cloudformation.NewFromConfig(cfg), Region: cfg.Region}
	artifacts := &deploy.S3Getter{Region: cfg.Region, Endpoint: aws.ToString(cfg.BaseEndpoint)}
	return &handler{
		log:    log,
		jobs:   &deploy.JobHandler{Engine: engine, Jobs: codepipeline.NewFromConfig(cfg), Artifacts: artifacts, Log: log},
		custom: &deploy.CustomResource{Engine: engine, Template: infrastructure.PipelineTemplate, Reply: replier(cfg.BaseEndpoint != nil, log), Log: log},
	}, nil
}
