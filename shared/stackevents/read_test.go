package stackevents_test

import (
	"context"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/stackevents"
)

// Read pages until the latest operation's start, and the root cause and the last failure
// come from that operation only.
func TestReadFindsTheLatestOperationAcrossPages(t *testing.T) {
	fake := awsfake.NewCloudFormation(t)
	fake.SetStackEventsPageSize(2)
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	ev := func(id, typ, status, reason string) awsfake.StackEvent {
		at = at.Add(time.Second)
		return awsfake.StackEvent{LogicalResourceID: id, ResourceType: typ, Status: status, Reason: reason, Timestamp: at}
	}
	const stack = "app"
	fake.AddStackEvents(stack,
		ev(stack, stackevents.ResourceTypeStack, "UPDATE_IN_PROGRESS", "User Initiated"),
		ev("Old", "AWS::SNS::Topic", "UPDATE_FAILED", "an earlier failure"),
		ev(stack, stackevents.ResourceTypeStack, "UPDATE_IN_PROGRESS", "User Initiated"),
		ev("Function", "AWS::Lambda::Function", "UPDATE_FAILED", "bad zip"),
		ev("Queue", "AWS::SQS::Queue", "UPDATE_FAILED", "Resource update cancelled"),
		ev(stack, stackevents.ResourceTypeStack, "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Function]."),
		ev("Alias", "AWS::Lambda::Alias", "UPDATE_FAILED", "alias in use"),
		ev(stack, stackevents.ResourceTypeStack, "UPDATE_ROLLBACK_FAILED", ""),
	)
	op, complete, err := stackevents.Read(context.Background(), fake.Client(t), stack, time.Time{}, stackevents.DefaultMaxPages)
	if err != nil || !complete || len(op) != 6 {
		t.Fatalf("op of %d events, complete %v, err %v", len(op), complete, err)
	}
	if calls := fake.Calls(awsfake.OpDescribeStackEvents); calls != 3 {
		t.Errorf("%d pages read, want 3 (the operation's start is on the third)", calls)
	}
	cause := stackevents.Event(stackevents.RootCause(op), "eu-west-1")
	if cause == nil || cause.LogicalResourceID != "Function" || cause.Reason != "bad zip" || cause.ConsoleURL == "" {
		t.Errorf("root cause %+v", cause)
	}
	if last := stackevents.LastFailure(op); last == nil || *last.LogicalResourceId != "Alias" {
		t.Errorf("last failure %+v", last)
	}
	if _, complete, _ := stackevents.Read(context.Background(), fake.Client(t), stack, time.Time{}, 1); complete {
		t.Error("one page cannot hold the operation's start")
	}
}
