package enrich

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/stackevents"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
)

func logEvent(ms int64, msg string) cwltypes.OutputLogEvent {
	return cwltypes.OutputLogEvent{Timestamp: aws.Int64(ms), Message: aws.String(msg)}
}

func TestTail(t *testing.T) {
	t.Run("ordered oldest first, newlines and terminal escapes stripped", func(t *testing.T) {
		lines, trimmed := tail([]cwltypes.OutputLogEvent{
			logEvent(3, "\x1b[31mFAIL\x1b[0m\tgithub.com/x/app\t0.01s\r\n"),
			logEvent(1, "=== RUN   TestHandler\n"),
			logEvent(2, "    handler_test.go:12: got 500, want 200\n"),
		}, 20)
		want := []string{"=== RUN   TestHandler", "    handler_test.go:12: got 500, want 200", "FAIL\tgithub.com/x/app\t0.01s"}
		if !slices.Equal(lines, want) || trimmed {
			t.Errorf("tail = %q (trimmed %v), want %q", lines, trimmed, want)
		}
	})
	t.Run("an event of several lines counts its lines", func(t *testing.T) {
		lines, trimmed := tail([]cwltypes.OutputLogEvent{logEvent(1, "a\nb\nc\n"), logEvent(2, "d\n")}, 3)
		if !slices.Equal(lines, []string{"b", "c", "d"}) || !trimmed {
			t.Errorf("tail = %q (trimmed %v)", lines, trimmed)
		}
	})
	t.Run("a long line is cut", func(t *testing.T) {
		long := strings.Repeat("é", maxLineWidth+50)
		lines, trimmed := tail([]cwltypes.OutputLogEvent{logEvent(1, long)}, 20)
		if len(lines) != 1 || len([]rune(lines[0])) != maxLineWidth || !strings.HasSuffix(lines[0], "…") || !trimmed {
			t.Errorf("tail = %d runes (trimmed %v)", len([]rune(lines[0])), trimmed)
		}
	})
	t.Run("the oldest lines go to keep within the budget", func(t *testing.T) {
		var events []cwltypes.OutputLogEvent
		for i := range 20 {
			events = append(events, logEvent(int64(i), fmt.Sprintf("%02d%s", i, strings.Repeat("x", 198))))
		}
		lines, trimmed := tail(events, 20)
		total := 0
		for _, l := range lines {
			total += len([]rune(l))
		}
		if len(lines) != maxTailChars/200 || total > maxTailChars || !strings.HasPrefix(lines[len(lines)-1], "19") || !trimmed {
			t.Errorf("tail = %d lines, %d runes, last %.2q, trimmed %v", len(lines), total, lines[len(lines)-1], trimmed)
		}
	})
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

const stackName = "app"

// ev builds a stack event at second s; a stack-level one when logical is the stack's name.
func ev(s int, logical, status, reason string) cftypes.StackEvent {
	typ := "AWS::Lambda::Function"
	if logical == stackName {
		typ = stackevents.ResourceTypeStack
	}
	e := cftypes.StackEvent{StackName: aws.String(stackName), StackId: aws.String("arn:aws:cloudformation:us-east-1:123456789012:stack/app/1"),
		LogicalResourceId: aws.String(logical), ResourceType: aws.String(typ), ResourceStatus: cftypes.ResourceStatus(status),
		Timestamp: aws.Time(t0.Add(time.Duration(s) * time.Second))}
	if reason != "" {
		e.ResourceStatusReason = aws.String(reason)
	}
	return e
}

// newestFirst lists events as DescribeStackEvents does.
func newestFirst(events ...cftypes.StackEvent) []cftypes.StackEvent {
	out := slices.Clone(events)
	slices.Reverse(out)
	return out
}

func TestRootCause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []cftypes.StackEvent // oldest first
		want   string               // logical id and reason, or "" for none
	}{
		{"failed create: the real failure, not the cancellation", []cftypes.StackEvent{
			ev(0, stackName, "CREATE_IN_PROGRESS", "User Initiated"),
			ev(1, "Role", "CREATE_IN_PROGRESS", ""),
			ev(1, "Bucket", "CREATE_IN_PROGRESS", ""),
			ev(3, "Bucket", "CREATE_FAILED", "my-bucket already exists"),
			ev(4, "Role", "CREATE_FAILED", "Resource creation cancelled"),
			ev(5, stackName, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [Bucket, Role]. . Rollback requested by user."),
			ev(9, "Role", "DELETE_FAILED", "later: role in use"),
			ev(10, stackName, "ROLLBACK_FAILED", "The following resource(s) failed to delete: [Role]."),
		}, "Bucket: my-bucket already exists"},
		{"noise listed first at the same second", []cftypes.StackEvent{
			ev(0, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
			ev(4, "Function", "UPDATE_FAILED", "Resource handler returned message: \"Memory must be a multiple of 1 MB\""),
			ev(4, "Alias", "UPDATE_FAILED", "Resource update cancelled"),
		}, "Function: Resource handler returned message: \"Memory must be a multiple of 1 MB\""},
		{"only noise: the stack's own reason", []cftypes.StackEvent{
			ev(0, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
			ev(4, "Alias", "UPDATE_FAILED", "Resource update cancelled"),
			ev(5, stackName, "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Alias]."),
		}, "app: The following resource(s) failed to update: [Alias]."},
		{"a failure without a reason is skipped", []cftypes.StackEvent{
			ev(0, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
			ev(2, "Function", "UPDATE_FAILED", ""),
			ev(3, "Alias", "UPDATE_FAILED", "Invalid version"),
		}, "Alias: Invalid version"},
		{"no failure", []cftypes.StackEvent{
			ev(0, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
			ev(2, "Function", "UPDATE_COMPLETE", ""),
			ev(3, stackName, "UPDATE_COMPLETE", ""),
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if c := stackevents.RootCause(newestFirst(tc.events...)); c != nil {
				got = aws.ToString(c.LogicalResourceId) + ": " + aws.ToString(c.ResourceStatusReason)
			}
			if got != tc.want {
				t.Errorf("root cause = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLastOperation(t *testing.T) {
	events := newestFirst(
		ev(0, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
		ev(2, "Function", "UPDATE_FAILED", "old"),
		ev(60, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
		// A nested stack is a resource, not the stack's operation.
		ev(61, "Nested", "UPDATE_IN_PROGRESS", ""),
		ev(62, "Function", "UPDATE_FAILED", "this one"),
		ev(120, stackName, "UPDATE_IN_PROGRESS", "User Initiated"),
		ev(121, "Function", "UPDATE_COMPLETE", ""),
	)
	events[len(events)-4].ResourceType = aws.String(stackevents.ResourceTypeStack) // ev(61, "Nested")

	op, complete := stackevents.LastOperation(events, time.Time{})
	if !complete || len(op) != 2 {
		t.Errorf("no cutoff: %d events (complete %v), want the latest operation's 2", len(op), complete)
	}
	// The failure was told at second 100: the operation that started at 120 is a later one.
	op, complete = stackevents.LastOperation(events, t0.Add(100*time.Second))
	if !complete || len(op) != 3 || aws.ToString(stackevents.RootCause(op).ResourceStatusReason) != "this one" {
		t.Errorf("cutoff: %d events (complete %v)", len(op), complete)
	}
	// Without the start in sight, the events read are all there is.
	op, complete = stackevents.LastOperation(events[:3], t0.Add(100*time.Second))
	if complete || len(op) != 1 {
		t.Errorf("start not read: %d events (complete %v), want 1 and incomplete", len(op), complete)
	}
}

func TestReason(t *testing.T) {
	deadline, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	live := context.Background()
	for _, tc := range []struct {
		err  error
		ctx  context.Context
		want string
	}{
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, live, "throttled"},
		{fmt.Errorf("describe: %w", &smithy.GenericAPIError{Code: "Throttling"}), live, "throttled"},
		{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: x is not authorized"}, live, "access denied"},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, live, "access denied"},
		{&smithy.GenericAPIError{Code: "ResourceNotFoundException"}, live, "not found"},
		{&smithy.GenericAPIError{Code: "ValidationError", Message: "Stack [x] does not exist"}, live, "not found"},
		{&smithy.GenericAPIError{Code: "ValidationError", Message: "bad token"}, live, "ValidationError: bad token"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), live, "timed out after 3s"},
		{errors.New("EOF"), deadline, "timed out after 3s"},
		{fmt.Errorf("op: %w", fmt.Errorf("send: %w", errors.New("connection refused"))), live, "connection refused"},
	} {
		if got := reason(tc.err, tc.ctx, 3*time.Second); got != tc.want {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestLinks(t *testing.T) {
	if got, want := console.LogEventsURL("eu-west-1", "/aws/codebuild/my build", "a:b"),
		"https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fmy$2520build/log-events/a$253Ab"; got != want {
		t.Errorf("log link\n got  %s\n want %s", got, want)
	}
	for _, u := range []string{
		"https://us-west-2.console.aws.amazon.com/codecommit/home#/repository/my-repo/commit/8cf40f2EXAMPLE",
		"https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/my-repo/commit/b7e6f4c2?region=eu-west-1",
	} {
		if got := console.RepositoryFromURL(u); got != "my-repo" {
			t.Errorf("repository of %s = %q", u, got)
		}
	}
	for in, want := range map[string]string{
		"my-lambda-app": "my-lambda-app",
		"arn:aws:cloudformation:us-east-1:123456789012:stack/my-lambda-app/5fa1c000-0000-4000-8000-000000000001": "arn:aws:cloudformation:us-east-1:123456789012:stack/my-lambda-app/5fa1c000-0000-4000-8000-000000000001",
		"e3b0c442-98fc-4c14-9afb-f4c8996fb924": "", // a request id
		"":                                     "",
		"my_stack":                             "",
	} {
		if got := stackRef(in); got != want {
			t.Errorf("stackRef(%q) = %q, want %q", in, got, want)
		}
	}
}
