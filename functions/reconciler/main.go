// Command reconciler runs on a schedule and settles runs whose final events were lost, by asking
// CodePipeline for the truth and folding it into the record.
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
