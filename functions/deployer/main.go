// Command deployer runs CloudFormation deployments through change sets. One binary serves two
// callers: CodePipeline's Lambda Invoke action (the CreateUpdatePipeline and CreateUpdateLambda
// stages) and CloudFormation's PipelineStack custom resource.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
)

func main() {
	log := lambdaio.NewLogger()
	h := &handler{log: log}
	lambda.Start(h.Handle)
}
