package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsconfig"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
	"github.com/lambda-pipeline/lambda-pipeline/shared/enrich"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// localSlackVar names the local Slack receiver's URL (scripts/invoke, docs/local-invoke.md).
const localSlackVar = "LP_LOCAL_SLACK_WEBHOOK_URL"

// build wires the notifier from its environment. The Slack webhook URL is read on first use,
// once per cold start, and never logged.
func build(getenv func(string) string, log *slog.Logger) (*notifier, error) {
	env := lambdaio.NewEnv(getenv)
	table := env.Required("RUNS_TABLE")
	topic, slackRef := env.Optional("TOPIC_ARN", ""), env.Optional("SLACK_WEBHOOK_PARAMETER", "")
	// scripts/invoke's local Slack receiver: a plain URL, accepted on the loopback address only,
	// so that it can never carry a real webhook (those stay in SSM or Secrets Manager).
	localSlack := env.Optional(localSlackVar, "")
	settings := enrich.Settings{
		RepositoryName: env.Optional("REPOSITORY_NAME", ""),
		// A project's stacks derive from its pipeline's name (enrich); these two, set by a
		// per-project deployment only, are the fallback for a pipeline named after no project.
		StackNames: map[string]string{
			enrich.StageCreateUpdatePipeline: env.Optional("PIPELINE_STACK_NAME", ""),
			enrich.StageCreateUpdateLambda:   env.Optional("APP_STACK_NAME", ""),
		},
		LinkExpiry: time.Duration(env.Int("LINK_EXPIRY_HOURS", 24, 1, 7*24)) * time.Hour,
	}
	retention := time.Duration(env.Int("RETENTION_DAYS", 90, 1, 3653)) * 24 * time.Hour
	if err := env.Err(); err != nil {
		return nil, err
	}
	// An unreadable PROJECTS must not hold up the notifications: the parameter's projects are
	// then routed to the account's webhook (the table's declarations still route), and the
	// digest says why it cannot run (digest.go).
	declared, err := pipeline.ParseProjects(getenv("PROJECTS"))
	if err != nil {
		log.Error("PROJECTS unreadable: its projects' messages go to the account's webhook", "error", err.Error())
		declared = nil
	}
	cfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	clock := pipeline.SystemClock{}
	db := dynamodb.NewFromConfig(cfg)
	store := runstore.NewDynamo(db, table, clock).WithRetention(retention)
	enricher := enrich.New(cfg, settings, clock)
	// An execution has a few actions per attempt: a longer listing is not worth the delay.
	enricher.Executions = codepipelineapi.Reader{API: codepipeline.NewFromConfig(cfg), MaxActionPages: 5}
	sender := &delivery.Sender{Enrich: enricher, Marks: store, Log: log, Clock: clock}
	switch {
	case localSlack != "":
		if !strings.HasPrefix(localSlack, "http://127.0.0.1:") {
			return nil, fmt.Errorf("%s must be a http://127.0.0.1:PORT/ URL (a local receiver)", localSlackVar)
		}
		sender.Channels = append(sender.Channels, &notify.SlackChannel{Poster: notify.Slack{URL: localSlack}, Log: log})
	default:
		// A project's declaration may name its own webhook (docs/projects.md): its messages
		// go there, the others' to the account's (SLACK_WEBHOOK_PARAMETER, possibly none).
		// Each webhook URL is read once per cold start, as are the projects found.
		ssmAPI, sm := ssm.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg)
		routed := &notify.ProjectSlack{
			Projects: projectWebhooks{&projects.Lookup{Parameter: declared, Store: runstore.NewProjects(db, table)}},
			Open:     func(ref string) *notify.SlackChannel { return notify.SlackFromSecret(ref, ssmAPI, sm, log) },
		}
		if slackRef != "" {
			routed.Default = notify.SlackFromSecret(slackRef, ssmAPI, sm, log)
		}
		sender.Channels = append(sender.Channels, routed)
	}
	if topic != "" {
		sender.Channels = append(sender.Channels, &notify.SNS{API: sns.NewFromConfig(cfg), TopicARN: topic})
	}
	// A PROJECTS the digest cannot read must not hold up the notifications.
	digests, digestErr := newDigest(getenv, cfg, table, store, sender.Channels, clock, log)
	log.Info("notifier ready", "slack", slackRef != "" || localSlack != "", "sns", topic != "")
	return &notifier{Notifications: &delivery.Notifications{Queue: store, Runs: store, Claims: store, Approvals: store, Sender: sender, Log: log, Clock: clock},
		Digest: digests, DigestErr: digestErr, Log: log}, nil
}

// projectWebhooks reads a project's own Slack webhook parameter from its declaration; an
// undeclared project (or a pipeline named after none) has none.
type projectWebhooks struct{ lookup *projects.Lookup }

func (p projectWebhooks) SlackWebhookParameter(ctx context.Context, project string) (string, error) {
	d, err := p.lookup.ByRepository(ctx, project)
	if errors.Is(err, projects.ErrUndeclared) {
		return "", nil
	}
	return d.SlackWebhookParameter, err
}

var _ notify.ProjectWebhooks = projectWebhooks{}
