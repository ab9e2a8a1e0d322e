// Command deployer deploys CloudFormation stacks through change sets, for CodePipeline's Lambda
// Invoke jobs and for the PipelineStack custom resource, and converges the account's declared
// projects to their pipeline stacks on a schedule. See docs/deployer.md and docs/projects.md.
package main

import (
	"os"

	"github.com/aws/aws-lambda-go/lambda"

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
