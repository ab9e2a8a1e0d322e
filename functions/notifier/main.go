// Command notifier sends the failure and recovery notifications that on-pipeline-event queued:
// the runs table's stream invokes it for each new claim item. It claims the notification,
// looks up the details (CodeBuild, CloudWatch Logs, CloudFormation, S3), and posts to Slack
// and SNS.
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
