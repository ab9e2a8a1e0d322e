package deploy

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// The root cause of a failed deploy, from the stack's events.
//
// This mirrors shared/enrich/stack.go (isStackEvent, isOperationStart, lastOperation, isNoise,
// rootCauseOf), which the notifier uses for the same purpose: adapters do not import each
// other (STYLE.md), and the logic works on the SDK's StackEvent, which shared/pipeline (the
// standard-library-only domain) cannot name. Keep the two in step; the deployer needs no
// cutoff time, because it reads the events right after its own operation ended.

// maxStackEventPages bounds DescribeStackEvents: a page is up to 1 MB of events, and the
// latest operation's start is normally on the first.
const maxStackEventPages = 5

const stackResourceType = "AWS::CloudFormation::Stack"

// isStackEvent reports whether ev is about the stack itself rather than one of its resources
// (a nested stack is a resource of type AWS::CloudFormation::Stack with another logical id).
func isStackEvent(ev cftypes.StackEvent) bool {
	return aws.ToString(ev.ResourceType) == stackResourceType &&
		(aws.ToString(ev.LogicalResourceId) == aws.ToString(ev.StackName) || aws.ToString(ev.PhysicalResourceId) == aws.ToString(ev.StackId))
}

// isOperationStart reports whether ev starts a user-initiated stack operation. Rollbacks and
// cleanups belong to the operation they follow.
func isOperationStart(ev cftypes.StackEvent) bool {
	if !isStackEvent(ev) {
		return false
	}
	switch ev.ResourceStatus {
	case cftypes.ResourceStatusCreateInProgress, cftypes.ResourceStatusUpdateInProgress,
		cftypes.ResourceStatusDeleteInProgress, cftypes.ResourceStatusImportInProgress:
		return true
	}
	return false
}

// lastOperation returns the events (newest first) of the latest operation, its start
// included; complete is false when the start is not among events.
func lastOperation(events []cftypes.StackEvent) (op []cftypes.StackEvent, complete bool) {
	for i, ev := range events {
		if isOperationStart(ev) {
			return events[:i+1], true
		}
	}
	return events, false
}

// isNoise reports whether a failure reason only echoes another failure: "Resource creation
// cancelled", "Resource update cancelled", and the stack's summary "The following resource(s)
// failed to create: [A, B]." (AWS-FACTS.md §1).
func isNoise(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "cancelled") || strings.Contains(r, "canceled") ||
		strings.HasPrefix(r, "the following resource(s) failed to")
}

// rootCauseOf returns the earliest *_FAILED event with a reason that is not cascade noise;
// failing that, the stack's own failure or rollback reason. Nil when the events tell no
// failure.
func rootCauseOf(op []cftypes.StackEvent) *cftypes.StackEvent {
	chrono := slices.Clone(op)
	slices.Reverse(chrono)
	slices.SortStableFunc(chrono, func(a, b cftypes.StackEvent) int { return aws.ToTime(a.Timestamp).Compare(aws.ToTime(b.Timestamp)) })
	for i, ev := range chrono {
		if strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") && aws.ToString(ev.ResourceStatusReason) != "" &&
			!isNoise(aws.ToString(ev.ResourceStatusReason)) {
			return &chrono[i]
		}
	}
	for i, ev := range chrono {
		st := string(ev.ResourceStatus)
		if isStackEvent(ev) && aws.ToString(ev.ResourceStatusReason) != "" &&
			(strings.HasSuffix(st, "_FAILED") || strings.HasSuffix(st, "ROLLBACK_IN_PROGRESS")) {
			return &chrono[i]
		}
	}
	return nil
}

// rootCause reads the stack's latest operation and returns why it failed (first) and its
// latest failure (last, which differs from first when a rollback failed too). Both are nil
// when the events do not say or cannot be read: the caller falls back on the stack's status
// reason.
func (e *Engine) rootCause(ctx context.Context, stack string) (first, last *pipeline.StackEvent) {
	p := cloudformation.NewDescribeStackEventsPaginator(e.Stacks, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack)})
	var events []cftypes.StackEvent
	for page := 0; p.HasMorePages() && page < maxStackEventPages; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			break
		}
		events = append(events, out.StackEvents...)
		if _, complete := lastOperation(events); complete {
			break
		}
	}
	op, _ := lastOperation(events)
	first = e.stackEvent(rootCauseOf(op))
	for i, ev := range op { // newest first
		if strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") && !isStackEvent(ev) &&
			aws.ToString(ev.ResourceStatusReason) != "" && !isNoise(aws.ToString(ev.ResourceStatusReason)) {
			last = e.stackEvent(&op[i])
			break
		}
	}
	return first, last
}

func (e *Engine) stackEvent(ev *cftypes.StackEvent) *pipeline.StackEvent {
	if ev == nil {
		return nil
	}
	return &pipeline.StackEvent{
		StackName: aws.ToString(ev.StackName), LogicalResourceID: aws.ToString(ev.LogicalResourceId),
		ResourceType: aws.ToString(ev.ResourceType), Status: string(ev.ResourceStatus),
		Reason: aws.ToString(ev.ResourceStatusReason), Timestamp: aws.ToTime(ev.Timestamp),
		ConsoleURL: stackEventsURL(e.Region, aws.ToString(ev.StackId)),
	}
}

// describeCause is the root cause in one line: "Function (AWS::Lambda::Function)
// UPDATE_FAILED: <reason>".
func describeCause(c *pipeline.StackEvent) string {
	return fmt.Sprintf("%s (%s) %s: %s", c.LogicalResourceID, c.ResourceType, c.Status, c.Reason)
}

// stackEventsURL is the console page of the stack's events ("" without a region or stack).
func stackEventsURL(region, stack string) string {
	if region == "" || stack == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/cloudformation/home?region=" + url.QueryEscape(region) +
		"#/stacks/events?stackId=" + url.QueryEscape(stack)
}
