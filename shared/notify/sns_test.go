package notify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

const topicARN = "arn:aws:sns:us-east-1:123456789012:lambda-pipeline-notifications"

func noDelay(int, error) (time.Duration, error) { return 0, nil }

// noRetries keeps error tests to one request; the SDK's retryer is not what is under test.
func noRetries(o *sns.Options) { o.RetryMaxAttempts = 1 }

// TestSNSPublishThroughTheSDK sends rendered messages through the real aws-sdk-go-v2 client to
// the awsQuery fake, and checks what arrived: subject, body and the four attributes (the
// project's among them, for subscription filter policies).
func TestSNSPublishThroughTheSDK(t *testing.T) {
	fake := notifytest.NewSNS(t, topicARN)
	ch := &SNS{API: fake.Client(), TopicARN: topicARN}
	var want []SNSMessage
	for _, c := range goldenCases() {
		m := RenderSNS(Compose(c.n, c.run, c.d))
		if err := ch.Publish(context.Background(), m); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want = append(want, m)
	}
	got := fake.Published()
	if len(got) != len(want) {
		t.Fatalf("published %d, want %d", len(got), len(want))
	}
	for i, p := range got {
		w := want[i]
		if p.TopicARN != topicARN || p.Subject != w.Subject || p.Message != w.Body {
			t.Errorf("message %d: got subject %q (%d bytes of body), want %q", i, p.Subject, len(p.Message), w.Subject)
		}
		if len(p.Attributes) != 4 {
			t.Errorf("message %d: attributes %v, want pipeline, project, status and type", i, p.Attributes)
		}
		if a := p.Attributes[AttrProject]; a.StringValue != "my-lambda" {
			t.Errorf("message %d: project attribute %+v, want my-lambda (of %s)", i, a, fxPipeline)
		}
		for _, k := range []string{AttrPipeline, AttrProject, AttrStatus, AttrType} {
			if a := p.Attributes[k]; a.DataType != "String" || a.StringValue != w.Attributes[k] {
				t.Errorf("message %d: attribute %s = %+v, want String %q", i, k, a, w.Attributes[k])
			}
		}
	}
	if a := got[2].Attributes; a[AttrStatus].StringValue != "SUCCEEDED" || a[AttrType].StringValue != "recovered" || a[AttrPipeline].StringValue != fxPipeline {
		t.Errorf("the recovery's attributes: %+v", a)
	}
	if !strings.HasPrefix(got[0].Subject, "FAILED my-lambda-pipeline: BuildAndTest/Build (4f2a9c1e)") {
		t.Errorf("subject %q", got[0].Subject)
	}
}

// The largest message the renderer makes is one SNS accepts.
func TestSNSAcceptsTheLargestRendering(t *testing.T) {
	fake := notifytest.NewSNS(t, topicARN)
	var lines []string
	for range 5_000 {
		lines = append(lines, strings.Repeat("é🔥", 400))
	}
	run := fxRun("BuildAndTest", "Build", codeBuild, pipeline.ExecutionResult{Summary: strings.Repeat("s", 100_000)}, fxCommit())
	m := RenderSNS(Compose(fxFailed(), run, pipeline.Details{Build: fxBuild(lines, false)}))
	if err := (&SNS{API: fake.Client(), TopicARN: topicARN}).Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := fake.Published(); len(got) != 1 || len(got[0].Message) < 200_000 {
		t.Fatalf("published %d messages", len(got))
	}
}

func TestSNSErrors(t *testing.T) {
	fake := notifytest.NewSNS(t, topicARN)
	m := RenderSNS(Compose(goldenCases()[0].n, goldenCases()[0].run, goldenCases()[0].d))

	t.Run("unknown topic", func(t *testing.T) {
		other := "arn:aws:sns:us-east-1:123456789012:nope"
		err := (&SNS{API: fake.Client(noRetries), TopicARN: other}).Publish(context.Background(), m)
		var nf *types.NotFoundException
		if !errors.As(err, &nf) || !strings.Contains(err.Error(), other) {
			t.Fatalf("want a NotFoundException naming the topic, got %v", err)
		}
	})
	// The fake refuses what SNS refuses, so the tests above would catch a bad rendering.
	t.Run("subject SNS refuses", func(t *testing.T) {
		for _, subj := range []string{strings.Repeat("s", 100), "two\nlines", "tab\there"} {
			err := (&SNS{API: fake.Client(noRetries), TopicARN: topicARN}).Publish(context.Background(), SNSMessage{Subject: subj, Body: "b"})
			var ip *types.InvalidParameterException
			if !errors.As(err, &ip) {
				t.Errorf("subject %q: want InvalidParameterException, got %v", subj, err)
			}
		}
	})
	t.Run("message too long", func(t *testing.T) {
		err := (&SNS{API: fake.Client(noRetries), TopicARN: topicARN}).Publish(context.Background(), SNSMessage{Body: strings.Repeat("x", 262_145)})
		if err == nil || !strings.Contains(err.Error(), "Message too long") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("throttled, then retried by the SDK", func(t *testing.T) {
		// Default retryer, without its waits.
		fast := func(o *sns.Options) {
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.Backoff = retry.BackoffDelayerFunc(noDelay) })
		}
		for _, fault := range []notifytest.Fault{notifytest.Throttled, notifytest.InternalFailure} {
			fake.FailNext(fault)
			before := len(fake.Published())
			if err := (&SNS{API: fake.Client(fast), TopicARN: topicARN}).Publish(context.Background(), m); err != nil {
				t.Fatalf("after %s: %v", fault.Code, err)
			}
			if len(fake.Published()) != before+1 {
				t.Errorf("not published after %s", fault.Code)
			}
		}
	})
	t.Run("not configured", func(t *testing.T) {
		if err := (&SNS{}).Publish(context.Background(), m); err == nil {
			t.Error("want an error")
		}
	})
}

func TestSlackChannelFallsBackToPlainText(t *testing.T) {
	r := notifytest.NewSlack(t)
	r.FailNext(notifytest.InvalidBlocks)
	var sl sleeps
	c := goldenCases()[0]
	ch := &SlackChannel{Poster: *newSlack(r, &sl), Log: slog.New(slog.DiscardHandler)}
	if err := ch.Send(context.Background(), Compose(c.n, c.run, c.d)); err != nil {
		t.Fatal(err)
	}
	got := r.Delivered()
	if len(got) != 1 || !strings.Contains(string(got[0]), `"text"`) || strings.Contains(string(got[0]), `"blocks"`) {
		t.Fatalf("want one plain-text message, got %d: %q", len(got), got)
	}
}

func TestSlackChannelWithoutWebhookIsOff(t *testing.T) {
	calls := 0
	ch := &SlackChannel{Resolve: func(context.Context) (string, error) { calls++; return "", nil }, Log: slog.New(slog.DiscardHandler)}
	c := goldenCases()[0]
	for range 2 {
		if err := ch.Send(context.Background(), Compose(c.n, c.run, c.d)); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("the webhook URL was read %d times, want once", calls)
	}
}
