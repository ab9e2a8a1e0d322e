// Command on-pipeline-event folds CodePipeline execution state changes into the run record and
// sends the failure and recovery notifications they call for.
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
