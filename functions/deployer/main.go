// Command deployer deploys CloudFormation stacks through change sets, for CodePipeline's Lambda
// Invoke jobs and for the PipelineStack custom resource. See docs/deployer.md.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

func main() {
	log := lambdaio.NewLogger()
	r, err := build(os.Getenv, log)
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(r.Handle)
}

// build wires the router over AWS clients, or dry runs under LP_STORE=memory (scripts/invoke).
func build(getenv func(string) string, log *slog.Logger) (*deploy.Router, error) {
	if getenv("LP_STORE") == "memory" {
		return deploy.NewDryRunRouter(infrastructure.PipelineTemplate, infrastructure.Templates(), log), nil
	}
	cfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return deploy.NewRouter(deploy.Config{Stacks: cloudformation.NewFromConfig(cfg), Jobs: codepipeline.NewFromConfig(cfg), Region: cfg.Region,
		BaseEndpoint: cfg.BaseEndpoint, PipelineTemplate: infrastructure.PipelineTemplate, Log: log}), nil
}
