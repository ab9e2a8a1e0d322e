// Package stackevents reads CloudFormation stack events: the paginated read of the latest
// operation, which event is the root cause of its failure, and the console link to them. Both
// the deployer (shared/deploy, for PutJobFailureResult) and the notifier's enrichment
// (shared/enrich) need the same answer.
package stackevents

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// DefaultMaxPages bounds a Read: a page is up to 1 MB of events, and the latest operation's
// start is normally on the first.
const DefaultMaxPages = 5

// Read reads the stack's events ("DescribeStackEvents", newest first,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html)
// page by page, at most maxPages, until the start of the latest operation that started no
// later than cutoff (any, when cutoff is zero) is among them, and returns that operation's
// events as LastOperation does. A read that fails on a later page returns the events read so
// far (complete false) with the error.
func Read(ctx context.Context, api cloudformation.DescribeStackEventsAPIClient, stack string, cutoff time.Time, maxPages int) (op []cftypes.StackEvent, complete bool, err error) {
	p := cloudformation.NewDescribeStackEventsPaginator(api, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack)})
	var events []cftypes.StackEvent
	for page := 0; p.HasMorePages() && page < maxPages; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			op, _ := LastOperation(events, cutoff)
			return op, false, fmt.Errorf("describe stack events of %s: %w", stack, err)
		}
		events = append(events, out.StackEvents...)
		if op, complete := LastOperation(events, cutoff); complete {
			return op, true, nil
		}
	}
	op, _ = LastOperation(events, cutoff)
	return op, false, nil
}

// LastFailure returns the operation's latest resource failure with a reason that is not
// cascade noise (events newest first): when a rollback or a delete failed after the root
// cause, it is what keeps the stack stuck. Nil when there is none.
func LastFailure(op []cftypes.StackEvent) *cftypes.StackEvent {
	for i, ev := range op {
		if strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") && !IsStackEvent(ev) &&
			aws.ToString(ev.ResourceStatusReason) != "" && !IsNoise(aws.ToString(ev.ResourceStatusReason)) {
			return &op[i]
		}
	}
	return nil
}

// Event is ev in the domain's terms, with the console link to its stack's events in region
// (none without a region). Nil for nil.
func Event(ev *cftypes.StackEvent, region string) *pipeline.StackEvent {
	if ev == nil {
		return nil
	}
	return &pipeline.StackEvent{
		StackName: aws.ToString(ev.StackName), LogicalResourceID: aws.ToString(ev.LogicalResourceId),
		ResourceType: aws.ToString(ev.ResourceType), Status: string(ev.ResourceStatus),
		Reason: aws.ToString(ev.ResourceStatusReason), Timestamp: aws.ToTime(ev.Timestamp),
		ConsoleURL: console.StackEventsURL(region, aws.ToString(ev.StackId)),
	}
}

// ResourceTypeStack is the resource type of the stack's own events (and of nested stacks).
const ResourceTypeStack = "AWS::CloudFormation::Stack"

// IsStackEvent reports whether ev is about the stack itself rather than one of its resources
// (a nested stack is a resource of type AWS::CloudFormation::Stack with another logical id).
func IsStackEvent(ev cftypes.StackEvent) bool {
	return aws.ToString(ev.ResourceType) == ResourceTypeStack &&
		(aws.ToString(ev.LogicalResourceId) == aws.ToString(ev.StackName) || aws.ToString(ev.PhysicalResourceId) == aws.ToString(ev.StackId))
}

// IsOperationStart reports whether ev starts a user-initiated stack operation. Rollbacks and
// cleanups (ROLLBACK_IN_PROGRESS, UPDATE_ROLLBACK_IN_PROGRESS, *_CLEANUP_IN_PROGRESS) belong
// to the operation they follow.
func IsOperationStart(ev cftypes.StackEvent) bool {
	if !IsStackEvent(ev) {
		return false
	}
	switch ev.ResourceStatus {
	case cftypes.ResourceStatusCreateInProgress, cftypes.ResourceStatusUpdateInProgress,
		cftypes.ResourceStatusDeleteInProgress, cftypes.ResourceStatusImportInProgress:
		return true
	}
	return false
}

// LastOperation returns the events (newest first, as DescribeStackEvents lists them) of the
// latest operation that started no later than cutoff (any, when cutoff is zero), its start
// included. complete is false when the start is not among events: then every event from the
// newest eligible one on is returned.
func LastOperation(events []cftypes.StackEvent, cutoff time.Time) (op []cftypes.StackEvent, complete bool) {
	from := 0
	for i, ev := range events {
		if !IsOperationStart(ev) {
			continue
		}
		if !cutoff.IsZero() && aws.ToTime(ev.Timestamp).After(cutoff) {
			// A later operation: this one's events are not the failure's.
			from = i + 1
			continue
		}
		return events[from : i+1], true
	}
	return events[from:], false
}

// IsNoise reports whether a failure reason only echoes another failure: the resources
// CloudFormation cancelled because another failed ("Resource creation cancelled", "Resource
// update cancelled"), and the stack's summary "The following resource(s) failed to create:
// [A, B]." ("Troubleshooting CloudFormation",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html).
func IsNoise(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "cancelled") || strings.Contains(r, "canceled") ||
		strings.HasPrefix(r, "the following resource(s) failed to")
}

// RootCause returns the event that explains why the operation failed, from its events in
// DescribeStackEvents' order (newest first): the earliest *_FAILED event with a reason that is
// not cascade noise, which is the failure that made CloudFormation cancel the rest and roll
// back. Failing that, the stack's own reason (its summary of the failed resources, or why it
// rolled back). Nil when the events tell no failure.
func RootCause(op []cftypes.StackEvent) *cftypes.StackEvent {
	chrono := slices.Clone(op)
	slices.Reverse(chrono)
	// Equal timestamps keep the listing's order (reversed), which is CloudFormation's own.
	slices.SortStableFunc(chrono, func(a, b cftypes.StackEvent) int { return aws.ToTime(a.Timestamp).Compare(aws.ToTime(b.Timestamp)) })
	for i, ev := range chrono {
		if strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") && aws.ToString(ev.ResourceStatusReason) != "" &&
			!IsNoise(aws.ToString(ev.ResourceStatusReason)) {
			return &chrono[i]
		}
	}
	for i, ev := range chrono {
		st := string(ev.ResourceStatus)
		if IsStackEvent(ev) && aws.ToString(ev.ResourceStatusReason) != "" &&
			(strings.HasSuffix(st, "_FAILED") || strings.HasSuffix(st, "ROLLBACK_IN_PROGRESS")) {
			return &chrono[i]
		}
	}
	return nil
}
