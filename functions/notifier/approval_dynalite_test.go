package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// TestApprovalSampleThroughInvoke: the stream batch of events/notifier-approval-insert.json,
// as Lambda hands it to the function, tells the approval request on Slack and SNS once,
// however often it is delivered.
func TestApprovalSampleThroughInvoke(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := dynalitetest.Start(t).Client(t)
	clock := pipeline.ClockFunc(func() time.Time { return time.Date(2026, 11, 23, 11, 21, 6, 0, time.UTC) })
	store := runstore.NewDynamo(db, dynalitetest.CreateTable(t, db, runstore.TableInput(dynalitetest.UniqueTableName(t))), clock)
	slack := notifytest.NewSlack(t)
	sns := notifytest.NewSNS(t, digestTopic)
	sender := &delivery.Sender{Marks: store, Log: log, Clock: clock, Channels: []notify.Channel{
		&notify.SlackChannel{Poster: notify.Slack{URL: slack.URL(), Client: slack.Client()}, Log: log},
		&notify.SNS{API: sns.Client(), TopicARN: digestTopic},
	}}
	h := &notifier{Log: log, Notifications: &delivery.Notifications{Queue: store, Runs: store, Claims: store, Sender: sender, Log: log, Clock: clock}}

	raw, err := os.ReadFile("../../events/notifier-approval-insert.json")
	require.NoError(t, err)
	for range 2 {
		out, err := h.Invoke(ctx, raw)
		require.NoError(t, err)
		assert.Empty(t, out.(events.DynamoDBEventResponse).BatchItemFailures)
	}
	require.Len(t, slack.Delivered(), 1)
	require.Len(t, sns.Published(), 1)
	pub := sns.Published()[0]
	assert.Equal(t, "APPROVAL NEEDED my-lambda-pipeline: stack my-lambda-app waits until 2026-11-24 07:21 UTC", pub.Subject)
	assert.Contains(t, pub.Message, "lp approve --deploy-stack my-lambda-app a1f0c2d4-1111-4a5b-8c6d-000000000002")
	assert.Contains(t, pub.Message, "FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*")
	assert.Contains(t, string(slack.Delivered()[0]), "waits for approval")
}
