// Command on-push starts a pipeline run, pinned to the pushed commit, for each push to the
// tracked branch, and records the push.
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
