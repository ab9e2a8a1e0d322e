package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/enrich"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

const benchExec = "0e000000-0000-4000-8000-00000000000a"

// benchSender is the notifier's Sender over fakes that answer at once: CodeBuild with the
// failed build, Logs with its 30-line log, the presigner, a Slack receiver and an SNS fake.
func benchSender(b *testing.B) (*Sender, *notifytest.SlackReceiver, *notifytest.SNSFake) {
	start := time.Date(2026, 3, 2, 9, 1, 12, 0, time.UTC)
	builds := awsfake.NewCodeBuild(b, awsfake.FailedBuild("app-build:"+benchExec, start, "BUILD", "COMMAND_EXECUTION_ERROR",
		"Error while executing command: go test ./.... Reason: exit status 1"))
	logs := awsfake.NewLogs(b)
	var lines []awsfake.LogEvent
	for i := range 30 {
		lines = append(lines, awsfake.LogEvent{Timestamp: start.Add(time.Duration(i) * time.Second), Message: fmt.Sprintf("=== RUN TestUpload/case_%02d\n", i)})
	}
	logs.PutLogEvents("/aws/codebuild/app-build", benchExec, lines...)
	slack := notifytest.NewSlack(b)
	sns := notifytest.NewSNS(b, testTopic)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return &Sender{
		Enrich: &enrich.Enricher{
			Builds: builds.Client(b), Logs: logs.Client(b), Region: "eu-central-1",
			Presign: &enrich.S3Presigner{Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake", ""), Region: "eu-central-1", Clock: pipeline.SystemClock{}},
			Clock:   pipeline.SystemClock{},
		},
		Channels: []notify.Channel{
			&notify.SlackChannel{Poster: notify.Slack{URL: slack.URL(), Client: slack.Client()}, Log: log},
			&notify.SNS{API: sns.Client(), TopicARN: testTopic},
		},
		Log:   log,
		Clock: pipeline.SystemClock{},
	}, slack, sns
}

func benchLines(b *testing.B) []string {
	data := strings.TrimSpace(readScenario(b, "red-then-green"))
	var out []string
	for _, l := range strings.Split(data, "\n") {
		if strings.Contains(l, benchExec) {
			out = append(out, l)
		}
	}
	return out
}

// BenchmarkFailedEventToPosts times, in process, the handling of a run's FAILED event from
// decoding to both posts: fold, decision, claim, enrichment (BatchGetBuilds, GetLogEvents,
// presign), rendering, the Slack post and the SNS publish, with fakes that answer at once.
// The store is in memory, so the figure is our own time plus local HTTP round trips.
func BenchmarkFailedEventToPosts(b *testing.B) {
	sender, slack, sns := benchSender(b)
	lines := benchLines(b)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mem := runstore.NewMemory()
		h := &recording.PipelineEvents{Recorder: mem.Recorder(sender, pipeline.SystemClock{}), Log: log}
		for _, l := range lines[:len(lines)-1] {
			if _, err := h.Handle(ctx, []byte(l)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		resp, err := h.Handle(ctx, []byte(lines[len(lines)-1]))
		if err != nil || len(resp.Notifications) != 1 {
			b.Fatalf("%v %v", resp, err)
		}
	}
	b.StopTimer()
	checkPosts(b, slack, sns)
}

// checkPosts fails the benchmark unless every failure was posted once to each channel, with
// the enrichment (the log tail) in it.
func checkPosts(b *testing.B, slack *notifytest.SlackReceiver, sns *notifytest.SNSFake) {
	if len(slack.Delivered()) != b.N || len(sns.Published()) != b.N {
		b.Fatalf("%d Slack posts and %d SNS publishes for %d failures", len(slack.Delivered()), len(sns.Published()), b.N)
	}
	if last := string(slack.Delivered()[b.N-1]); !strings.Contains(last, "case_29") || strings.Contains(last, "missing") {
		b.Fatalf("the message lacks the enrichment: %s", last)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/failure")
}

// BenchmarkFailedEventToPostsDynalite is the deployed path with DynamoDB played by dynalite:
// on-pipeline-event's handler queues the notification in the outbox, then the notifier's
// handler takes the stream record, claims, enriches and posts.
func BenchmarkFailedEventToPostsDynalite(b *testing.B) {
	sender, slack, sns := benchSender(b)
	lines := benchLines(b)
	rig := newRig(b, sender)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		exec := fmt.Sprintf("0e000000-0000-4000-8000-%012d", 1000+i)
		var evs []string
		for _, l := range lines {
			evs = append(evs, strings.ReplaceAll(l, `"execution-id": "`+benchExec+`"`, `"execution-id": "`+exec+`"`))
		}
		for _, l := range evs[:len(evs)-1] {
			if _, err := rig.events.Handle(ctx, []byte(l)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if _, err := rig.events.Handle(ctx, []byte(evs[len(evs)-1])); err != nil {
			b.Fatal(err)
		}
		n := pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: "search", ExecutionID: exec}
		resp, err := rig.notifier.Handle(ctx, streamInsert(n, fmt.Sprint(i)))
		if err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("%v %v", resp, err)
		}
	}
	b.StopTimer()
	checkPosts(b, slack, sns)
}
