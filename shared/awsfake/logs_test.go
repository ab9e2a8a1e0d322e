package awsfake_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const (
	logGroup  = "/aws/codebuild/my-lambda-build"
	logStream = "9b0ac37f-d19e-4254-9079-f47e9a389eb0"
)

func putLines(fake *awsfake.Logs, n int, t0 time.Time) {
	var events []awsfake.LogEvent
	for i := range n {
		events = append(events, awsfake.LogEvent{Timestamp: t0.Add(time.Duration(i) * time.Second), Message: fmt.Sprintf("line %d\n", i)})
	}
	fake.PutLogEvents(logGroup, logStream, events...)
}

func messages(events []types.OutputLogEvent) []string {
	var out []string
	for _, ev := range events {
		out = append(out, aws.ToString(ev.Message))
	}
	return out
}

func TestGetLogEventsLatestFirstPageOldestFirstWithin(t *testing.T) {
	fake := awsfake.NewLogs(t)
	putLines(fake, 30, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	c := fake.Client(t)
	ctx := context.Background()

	// The default (startFromHead=false) answers the latest events.
	out, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(logGroup), LogStreamName: aws.String(logStream), Limit: aws.Int32(20)})
	if err != nil {
		t.Fatal(err)
	}
	got := messages(out.Events)
	if len(got) != 20 || got[0] != "line 10\n" || got[19] != "line 29\n" {
		t.Fatalf("latest 20 = %q", got)
	}
	// Backward from there: the 10 before.
	back, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(logGroup), LogStreamName: aws.String(logStream),
		Limit: aws.Int32(20), NextToken: out.NextBackwardToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(back.Events); len(got) != 10 || got[0] != "line 0\n" || got[9] != "line 9\n" {
		t.Errorf("backward page = %q", got)
	}
	// Forward at the end: nothing, and the same token back.
	fwd, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(logGroup), LogStreamName: aws.String(logStream),
		StartFromHead: aws.Bool(true), NextToken: out.NextForwardToken})
	if err != nil {
		t.Fatal(err)
	}
	if len(fwd.Events) != 0 || aws.ToString(fwd.NextForwardToken) != aws.ToString(out.NextForwardToken) {
		t.Errorf("at the end: %d events, token %q after %q; want none and the same token", len(fwd.Events),
			aws.ToString(fwd.NextForwardToken), aws.ToString(out.NextForwardToken))
	}

	// From the head, by group ARN.
	head, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
		LogGroupIdentifier: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + logGroup), LogStreamName: aws.String(logStream),
		StartFromHead: aws.Bool(true), Limit: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(head.Events); len(got) != 3 || got[0] != "line 0\n" {
		t.Errorf("head = %q", got)
	}
}

// The SDK's paginator follows nextForwardToken and, unless told to stop on a repeated token,
// never ends at the end of the stream ("GetLogEvents",
// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html):
// the fake reproduces the repeat.
func TestGetLogEventsPaginatorStopsOnlyOnDuplicateToken(t *testing.T) {
	fake := awsfake.NewLogs(t)
	putLines(fake, 5, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	p := cloudwatchlogs.NewGetLogEventsPaginator(fake.Client(t), &cloudwatchlogs.GetLogEventsInput{
		LogGroupName: aws.String(logGroup), LogStreamName: aws.String(logStream), StartFromHead: aws.Bool(true), Limit: aws.Int32(2)},
		func(o *cloudwatchlogs.GetLogEventsPaginatorOptions) { o.StopOnDuplicateToken = true })
	var all []string
	for pages := 0; p.HasMorePages(); pages++ {
		if pages > 10 {
			t.Fatal("paginator did not stop")
		}
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, messages(out.Events)...)
	}
	if len(all) != 5 {
		t.Errorf("read %d events, want 5", len(all))
	}
}

func TestGetLogEventsErrors(t *testing.T) {
	fake := awsfake.NewLogs(t)
	fake.CreateLogGroup(logGroup)
	c := fake.Client(t)
	ctx := context.Background()
	get := func(group string) error {
		_, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(logStream)})
		return err
	}
	var notFound *types.ResourceNotFoundException
	if err := get(logGroup); !errors.As(err, &notFound) || notFound.ErrorMessage() != "The specified log stream does not exist." {
		t.Errorf("missing stream: err = %v", err)
	}
	if err := get("/aws/codebuild/other"); !errors.As(err, &notFound) || notFound.ErrorMessage() != "The specified log group does not exist." {
		t.Errorf("missing group: err = %v", err)
	}
	_, err := c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(logGroup), LogStreamName: aws.String(logStream),
		Limit: aws.Int32(10001)})
	var invalid *types.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Errorf("limit 10001: err = %v, want InvalidParameterException", err)
	}
	_, err = c.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(logGroup), LogGroupIdentifier: aws.String(logGroup),
		LogStreamName: aws.String(logStream)})
	if !errors.As(err, &invalid) {
		t.Errorf("group name and identifier: err = %v, want InvalidParameterException", err)
	}
}
