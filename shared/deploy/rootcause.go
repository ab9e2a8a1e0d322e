package deploy

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/stackevents"
)

// maxStackEventPages bounds DescribeStackEvents: a page is up to 1 MB of events, and the
// latest operation's start is normally on the first.
const maxStackEventPages = 5

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
		if _, complete := stackevents.LastOperation(events, time.Time{}); complete {
			break
		}
	}
	op, _ := stackevents.LastOperation(events, time.Time{})
	first = e.stackEvent(stackevents.RootCause(op))
	for i, ev := range op { // newest first
		if strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") && !stackevents.IsStackEvent(ev) &&
			aws.ToString(ev.ResourceStatusReason) != "" && !stackevents.IsNoise(aws.ToString(ev.ResourceStatusReason)) {
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
