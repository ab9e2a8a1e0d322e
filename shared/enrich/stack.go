package enrich

import (
	"context"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/stackevents"
)

// maxStackEventPages bounds DescribeStackEvents when the failed operation's start is not
// found: a page is up to 1 MB of events, and the notification must not wait on a stack's
// whole history.
const maxStackEventPages = 5

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

// stackOf returns the stack the failed action of pipelineName deploys, and whether the
// failure is a deploy at all: the seed's deploy stages always are; another Lambda action is
// when its result names a stack or a stack is known for its stage. The deployer reports the
// stack as externalExecutionId; for a result that does not say, the stage's stack is the
// project's by the naming rule (P-pipeline deploys P-pipeline and P-app, shared/pipeline),
// and StackNames (the per-project deployment's PIPELINE_STACK_NAME / APP_STACK_NAME) is the
// fallback for a pipeline whose name follows no project.
func (e *Enricher) stackOf(pipelineName string, f pipeline.Failure) (stack string, deploy bool) {
	fromResult := stackRef(f.Result.ExternalID)
	mapped := projectStack(pipelineName, f.Stage)
	if mapped == "" {
		mapped = e.StackNames[f.Stage]
	}
	deploy = f.Stage == StageCreateUpdateLambda || f.Stage == StageCreateUpdatePipeline ||
		(f.Type.Provider == "Lambda" && (fromResult != "" || mapped != ""))
	if fromResult != "" {
		return fromResult, deploy
	}
	return mapped, deploy
}

// projectStack is the stack a deploy stage of a project's pipeline deploys, or "" when the
// pipeline follows no project or the stage is not one of the seed's deploy stages.
func projectStack(pipelineName, stage string) string {
	p := pipeline.ProjectOfPipeline(pipelineName)
	switch {
	case p == "":
		return ""
	case stage == StageCreateUpdateLambda:
		return pipeline.AppStackOf(p)
	case stage == StageCreateUpdatePipeline:
		return pipeline.PipelineStackOf(p)
	}
	return ""
}

// clockSlack allows for the clocks of CodePipeline and CloudFormation when comparing their times.
const clockSlack = time.Minute

// rootCause finds why the failed deploy failed, from cloudformation:DescribeStackEvents. Nil
// when the failure is not a deploy, or when the stack's latest operation is older than the
// deploy action (the deploy failed before it changed the stack, e.g. its change set was
// refused: an older failure must not be told as this one's cause).
func (e *Enricher) rootCause(ctx context.Context, n pipeline.Notification, run pipeline.Run, f pipeline.Failure, ns *notes) *pipeline.StackEvent {
	name := n.Pipeline
	if name == "" {
		name = run.Pipeline
	}
	stack, deploy := e.stackOf(name, f)
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
		op, complete, err := stackevents.Read(ctx, e.Stacks, stack, cutoff, maxStackEventPages)
		if err != nil {
			return err
		}
		if complete {
			if start := aws.ToTime(op[len(op)-1].Timestamp); !actionStart.IsZero() && start.Before(actionStart.Add(-clockSlack)) {
				return nil
			}
		}
		// Without the operation's start within the bound, the events read are the best there is.
		cause = stackevents.RootCause(op)
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
	ev := stackevents.Event(cause, e.Region)
	ev.ConsoleURL = console.StackEventsURL(e.Region, id)
	return ev
}
