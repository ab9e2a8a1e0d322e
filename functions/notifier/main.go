// Command notifier sends the failure and recovery notifications that on-pipeline-event queued,
// and the approval requests of deploys that widen IAM: the runs table's stream invokes it for
// each new claim item and each new approval item. It claims the notification, looks up the
// details (CodeBuild, CloudWatch Logs, CloudFormation, S3), and posts to Slack and SNS. The
// weekly schedule (template.yaml, WeeklyDigest) invokes it with
// {"lp":"weekly-digest"} for the delivery metrics digest (shared/digest).
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
	lambda.Start(h.Invoke)
}
