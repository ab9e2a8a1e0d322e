package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/digest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func TestMain(m *testing.M) { os.Exit(dynalitetest.Main(m)) }

const digestTopic = "arn:aws:sns:eu-west-1:123456789012:lp"

// TestWeeklyDigestOverTheTable: the replayed week (events/replay/one-week.ndjson, 2026-W48,
// worked by hand in docs/metrics.md) recorded in a table in dynalite; the schedule fires on
// Monday of the next week, Slack fails, Lambda retries, the schedule fires again. One Slack
// post, one e-mail, with the numbers docs/metrics.md works out.
func TestWeeklyDigestOverTheTable(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db := dynalitetest.Start(t).Client(t)
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	clock := pipeline.ClockFunc(func() time.Time { return now })
	store := runstore.NewDynamo(db, dynalitetest.CreateTable(t, db, runstore.TableInput(dynalitetest.UniqueTableName(t))), clock)

	events := &recording.PipelineEvents{Recorder: store.Recorder(), Log: log}
	f, err := os.Open("../../events/replay/one-week.ndjson")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		_, err := events.Handle(ctx, sc.Bytes())
		require.NoError(t, err)
	}
	require.NoError(t, sc.Err())

	slack := notifytest.NewSlack(t)
	sns := notifytest.NewSNS(t, digestTopic)
	h := &notifier{Log: log, Digest: &digest.Sender{
		Declared: []pipeline.Project{{Name: "my-lambda"}, {Name: "other"}},
		Runs:     store, Claims: store, Marks: store, Rule: dora.DefaultRule(), Clock: clock, Log: log,
		Channels: []digest.Channel{
			&notify.SlackChannel{Poster: notify.Slack{URL: slack.URL(), Client: slack.Client(), MaxAttempts: 2,
				Sleep: func(context.Context, time.Duration) error { return nil }}, Log: log},
			&notify.SNS{API: sns.Client(), TopicARN: digestTopic},
		},
	}}

	slack.FailNext(notifytest.Reply{Status: 500}, notifytest.Reply{Status: 500})
	_, err = h.Invoke(ctx, []byte(digest.Payload))
	require.Error(t, err, "Slack failed: the invocation fails so that Lambda retries it")
	require.Len(t, sns.Published(), 1)
	require.Empty(t, slack.Delivered())

	now = now.Add(time.Minute) // Lambda's first retry
	out, err := h.Invoke(ctx, []byte(digest.Payload))
	require.NoError(t, err)
	assert.Equal(t, digest.Report{Week: "2026-W48", Sent: []string{"my-lambda"}, Quiet: []string{"other"}, Done: []string{}}, out)

	now = now.Add(2 * time.Hour) // EventBridge delivers the schedule again
	out, err = h.Invoke(ctx, []byte(digest.Payload))
	require.NoError(t, err)
	assert.Equal(t, []string{"my-lambda"}, out.(digest.Report).Done)

	require.Len(t, slack.Delivered(), 1, "one Slack post")
	pub := sns.Published()
	require.Len(t, pub, 1, "one e-mail")
	assert.Equal(t, "Weekly digest my-lambda 2026-W48: 2 deploys, 50% failed", pub[0].Subject)
	// docs/metrics.md, "The replayed week, by hand": lead time median 1h12m17s, restores
	// 8,424 s and 73,190 s (median 11h20m07s).
	assert.Contains(t, pub[0].Message, "Lead time (median)        1h12m")
	assert.Contains(t, pub[0].Message, "Time to restore (median)  11h20m")
	assert.Contains(t, pub[0].Message, "50% (2 of 4 runs)")
	assert.Contains(t, pub[0].Message, "2 deploys (0.29/day)")
	assert.Contains(t, string(slack.Delivered()[0]), "Weekly digest my-lambda 2026-W48")
}
