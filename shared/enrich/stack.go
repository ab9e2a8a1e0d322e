package enrich

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// maxStackEventPages bounds DescribeStackEvents when the failed operation's start is not
// found: a page is up to 1 MB of events, and the notification must not wait on a stack's
// whole history.
const maxStackEventPages = 5

const stackResourceType = "AWS::CloudFormation::Stack"

var (
	stackNamePattern = regexp.MustCompile(`^[A-Za-z][-A-Za-z0-9]{0,127}$`)
	stackARNPattern  = regexp.MustCompile(`^arn:aws[-a-z]*:cloudformation:[-a-z0-9]+:\d{12}:stack/[A-Za-z][-A-Za-z0-9]*/[-A-Za-z0-9]+$`)
	uuidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// stackRef returns s when it names a stack (a stack name or stack ARN) and "" otherwise: a
// Lambda action's externalExecutionId is whatever the function reported, and a request id
// (a UUID, which may also read as a stack name) is not a stack.
func stackRef(s string) string {
	if stackARNPattern.MatchString(s) || (stackNamePattern.MatchString(s) && !uuidPattern.MatchString(s)) {
		return s
	}
	return ""
}

// stackOf returns the stack the failed action deploys, and whether the failure is a deploy at
// all: the seed's deploy stages always are; another Lambda action is when its result names a
// stack or StackNames maps its stage. The deployer reports the stack as externalExecutionId;
// StackNames covers a result that does not say.
func (e *Enricher) stackOf(f pipeline.Failure) (stack string, deploy bool) {
	fromResult := stackRef(f.Result.ExternalID)
	mapped := e.StackNames[f.Stage]
	deploy = f.Stage == StageCreateUpdateLambda || f.Stage == StageCreateUpdatePipeline ||
		(f.Type.Provider == "Lambda" && (fromResult != "" || mapped != ""))
	if fromResult != "" {
		return fromResult, deploy
	}
	return mapped, deploy
}

// clockSlack allows for the clocks of CodePipeline and CloudFormation when comparing their times.
const clockSlack = time.Minute

// rootCause finds why the failed deploy failed, from cloudformation:DescribeStackEvents. Nil
// when the failure is not a deploy, or when the stack's latest operation is older than the
// deploy action (the deploy failed before it changed the stack, e.g. its change set was
// refused: an older failure must not be told as this one's cause).
func (e *Enricher) rootCause(ctx context.Context, n pipeline.Notification, run pipeline.Run, f pipeline.Failure, ns *notes) *pipeline.StackEvent {
	stack, deploy := e.stackOf(f)
	if !deploy || e.Stacks == nil {
		return nil
	}
	if stack == "" {
		ns.add(slotStack, degraded("deploy root cause", "stack name unknown for stage "+f.Stage, "cloudformation:DescribeStackEvents"))
		return nil
	}
	// The failed operation started before the action failed; an operation that started after
	// (a retry already under way) is not this failure's.
	cutoff := f.At
	if cutoff.IsZero() {
		cutoff = n.At
	}
	actionStart := run.Stages[f.Stage].Actions[f.Action].StartedAt
	var cause *cftypes.StackEvent
	why := e.lookup(ctx, func(ctx context.Context) error {
		p := cloudformation.NewDescribeStackEventsPaginator(e.Stacks, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack)})
		var events []cftypes.StackEvent
		for page := 0; p.HasMorePages() && page < maxStackEventPages; page++ {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("describe stack events of %s: %w", stack, err)
			}
			events = append(events, out.StackEvents...)
			if op, complete := lastOperation(events, cutoff); complete {
				if start := aws.ToTime(op[len(op)-1].Timestamp); !actionStart.IsZero() && start.Before(actionStart.Add(-clockSlack)) {
					return nil
				}
				cause = rootCauseOf(op)
				return nil
			}
		}
		// No operation start within the bound: the events read are the best there is.
		op, _ := lastOperation(events, cutoff)
		cause = rootCauseOf(op)
		return nil
	})
	if why != "" {
		ns.add(slotStack, degraded("deploy root cause", why, "cloudformation:DescribeStackEvents"))
		return nil
	}
	if cause == nil {
		return nil
	}
	id := aws.ToString(cause.StackId)
	if id == "" {
		id = stack
	}
	return &pipeline.StackEvent{
		StackName: aws.ToString(cause.StackName), LogicalResourceID: aws.ToString(cause.LogicalResourceId),
		ResourceType: aws.ToString(cause.ResourceType), Status: string(cause.ResourceStatus),
		Reason: aws.ToString(cause.ResourceStatusReason), Timestamp: aws.ToTime(cause.Timestamp),
		ConsoleURL: stackEventsURL(e.Region, id),
	}
}

// isStackEvent reports whether ev is about the stack itself rather than one of its resources
// (a nested stack is a resource of type AWS::CloudFormation::Stack with another logical id).
func isStackEvent(ev cftypes.StackEvent) bool {
	return aws.ToString(ev.ResourceType) == stackResourceType &&
		(aws.ToString(ev.LogicalResourceId) == aws.ToString(ev.StackName) || aws.ToString(ev.PhysicalResourceId) == aws.ToString(ev.StackId))
}

// isOperationStart reports whether ev starts a user-initiated stack operation. Rollbacks and
// cleanups (ROLLBACK_IN_PROGRESS, UPDATE_ROLLBACK_IN_PROGRESS, *_CLEANUP_IN_PROGRESS) belong
// to the operation they follow.
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

// lastOperation returns the events (newest first, as DescribeStackEvents lists them) of the
// latest operation that started no later than cutoff (any, when cutoff is zero), its start
// included. complete is false when the start is not among events: then every event from the
// newest eligible one on is returned.
func lastOperation(events []cftypes.StackEvent, cutoff time.Time) (op []cftypes.StackEvent, complete bool) {
	from := 0
	for i, ev := range events {
		if !isOperationStart(ev) {
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

// isNoise reports whether a failure reason only echoes another failure: the resources
// CloudFormation cancelled because another failed ("Resource creation cancelled", "Resource
// update cancelled"), and the stack's summary "The following resource(s) failed to create:
// [A, B]." (AWS-FACTS.md §1).
func isNoise(reason string) bool {
	r := strings.ToLower(reason)
	return strings.Contains(r, "cancelled") || strings.Contains(r, "canceled") ||
		strings.HasPrefix(r, "the following resource(s) failed to")
}

// rootCauseOf returns the event that explains why the operation failed, from its events in
// DescribeStackEvents' order (newest first): the earliest *_FAILED event with a reason that is
// not cascade noise, which is the failure that made CloudFormation cancel the rest and roll
// back. Failing that, the stack's own reason (its summary of the failed resources, or why it
// rolled back). Nil when the events tell no failure.
func rootCauseOf(op []cftypes.StackEvent) *cftypes.StackEvent {
	chrono := slices.Clone(op)
	slices.Reverse(chrono)
	// Equal timestamps keep the listing's order (reversed), which is CloudFormation's own.
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
