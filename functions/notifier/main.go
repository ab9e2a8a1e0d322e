// Command notifier sends the failure and recovery notifications that on-pipeline-event queued:
// the runs table's stream invokes it for each new claim item. It claims the notification,
// looks up the details (CodeBuild, CloudWatch Logs, CloudFormation, S3), and posts to Slack
// and SNS.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
	"github.com/lambda-pipeline/lambda-pipeline/shared/enrich"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func main() {
	log := lambdaio.NewLogger()
	h, err := build(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func build(ctx context.Context, getenv func(string) string, log *slog.Logger) (*delivery.Notifications, error) {
	env := lambdaio.NewEnv(getenv)
	table := env.Required("RUNS_TABLE")
	topic := env.Optional("TOPIC_ARN", "")
	slackRef := env.Optional("SLACK_WEBHOOK_PARAMETER", "")
	repository := env.Optional("REPOSITORY_NAME", "")
	stacks := map[string]string{
		enrich.StageCreateUpdatePipeline: env.Optional("PIPELINE_STACK_NAME", ""),
		enrich.StageCreateUpdateLambda:   env.Optional("APP_STACK_NAME", ""),
	}
	expiry := time.Duration(env.Int("LINK_EXPIRY_HOURS", 24, 1, 7*24)) * time.Hour
	retention := time.Duration(env.Int("RETENTION_DAYS", 90, 1, 3653)) * 24 * time.Hour
	if err := env.Err(); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	store := runstore.NewDynamo(dynamodb.NewFromConfig(cfg), table).WithRetention(retention)
	sender := &delivery.Sender{
		Enrich: &enrich.Enricher{
			Builds: codebuild.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg),
			Stacks: cloudformation.NewFromConfig(cfg), Commits: codecommit.NewFromConfig(cfg),
			Executions: codepipeline.NewFromConfig(cfg), Presign: enrich.NewS3Presigner(cfg),
			Region: cfg.Region, RepositoryName: repository, StackNames: stacks, LinkExpiry: expiry,
		},
		Marks: store,
		Log:   log,
	}
	// The webhook URL is read once per cold start (on first use) and never logged. A secret
	// that cannot be read holds up Slack only: SNS still goes out, and the Slack half is retried.
	if slackRef != "" {
		ssmAPI, smAPI := ssm.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg)
		sender.SlackURL = &delivery.URLResolver{Resolve: func(ctx context.Context) (string, error) {
			return notify.WebhookURLFrom(ctx, slackRef, ssmAPI, smAPI)
		}}
	}
	if topic != "" {
		sender.SNS = &notify.SNS{API: sns.NewFromConfig(cfg), TopicARN: topic}
	}
	log.Info("notifier ready", "slack", sender.SlackURL != nil, "sns", sender.SNS != nil)
	return &delivery.Notifications{Queue: store, Runs: store, Claims: store, Sender: sender, Log: log}, nil
}
