// Package deploy is lambda-pipeline's CloudFormation engine and the two protocols that drive
// it: CodePipeline's Lambda Invoke jobs (job.go) and the control plane's Custom::PipelineStack
// resource (custom.go). See docs/deployer.md.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// StacksAPI is what the engine calls of CloudFormation (cloudformation.Client satisfies it).
// The deployer's role must allow each of these actions on the stacks it deploys, and
// GetTemplateSummary on "*" (it is called with a template body, or with the stack's name when
// the request keeps the stack's template).
type StacksAPI interface {
	CreateChangeSet(ctx context.Context, in *cloudformation.CreateChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.CreateChangeSetOutput, error)
	DescribeChangeSet(ctx context.Context, in *cloudformation.DescribeChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeChangeSetOutput, error)
	ExecuteChangeSet(ctx context.Context, in *cloudformation.ExecuteChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ExecuteChangeSetOutput, error)
	DeleteChangeSet(ctx context.Context, in *cloudformation.DeleteChangeSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DeleteChangeSetOutput, error)
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackEvents(ctx context.Context, in *cloudformation.DescribeStackEventsInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	DeleteStack(ctx context.Context, in *cloudformation.DeleteStackInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DeleteStackOutput, error)
	ContinueUpdateRollback(ctx context.Context, in *cloudformation.ContinueUpdateRollbackInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ContinueUpdateRollbackOutput, error)
	GetTemplateSummary(ctx context.Context, in *cloudformation.GetTemplateSummaryInput, optFns ...func(*cloudformation.Options)) (*cloudformation.GetTemplateSummaryOutput, error)
	// GetTemplate is the policy gate's (Gate.Stacks): the stack's current template, to
	// compute what a new one widens.
	GetTemplate(ctx context.Context, in *cloudformation.GetTemplateInput, optFns ...func(*cloudformation.Options)) (*cloudformation.GetTemplateOutput, error)
}

var _ StacksAPI = (*cloudformation.Client)(nil)

// MaxTemplateBody is CloudFormation's limit on an inline template (TemplateBody), in bytes. The
// deployer passes templates inline only (it has no bucket of its own to stage a TemplateURL).
const MaxTemplateBody = 51200

// Engine deploys CloudFormation stacks through change sets, one observation at a time.
//
// Step and StepDelete are level-based, like a Kubernetes reconcile: each call observes the
// stack and the deploy's change set, takes at most one action towards the goal, and says
// whether to call again. Names and tokens derive from Request.Token, so a repeated call (a
// Lambda retry, a re-invoked job) finds what the earlier one started instead of starting it
// again. What the stack alone cannot show (that this deploy already executed its change set,
// deleted a failed stack, or continued a rollback) travels in Progress, from one Outcome to
// the next Request.
type Engine struct {
	Stacks StacksAPI
	// Region, when set, adds a console link to the root cause.
	Region string
}

// Request is one step of a deploy.
type Request struct {
	StackName    string
	TemplateBody string
	// Parameters are the overrides, resolved to literal values (UserParameters.ResolveOverrides
	// or the custom resource's properties). Every other parameter of the template keeps its
	// Default, or else the stack's previous value (docs/templates.md).
	Parameters   map[string]string
	Capabilities []string
	// RoleARN is the CloudFormation service role of the change set (and of a delete or a
	// continued rollback); empty uses the caller's credentials.
	RoleARN string
	// Token identifies the deploy across steps: the first job's id, or the custom resource's
	// request id. It names the change set and the client request tokens.
	Token string
	// Progress is the previous step's Outcome.Progress (zero on the first step).
	Progress Progress
	// KeepTemplate makes an update keep the stack's current template (CreateChangeSet's
	// UsePreviousTemplate) and change only the parameters; TemplateBody then serves only to
	// create the stack when it does not exist. The custom resource's Update uses it, so that
	// a control-plane deploy does not replace the template the pipeline updated itself to.
	KeepTemplate bool
}

// Progress is what a deploy did that the stack does not show. It is small and JSON-encodable
// (it rides in CodePipeline's continuation token).
type Progress struct {
	StackID string `json:"stackId,omitempty"`
	// Executed: this deploy executed its change set; its result is the stack's.
	Executed bool `json:"executed,omitempty"`
	// Created: this deploy created the stack (its CREATE change set was accepted).
	Created bool `json:"created,omitempty"`
	// Deleted: this deploy deleted the stack (a failed create in ROLLBACK_COMPLETE, or the
	// stack a delete request named).
	Deleted bool `json:"deleted,omitempty"`
	// Continued: this deploy continued an update rollback (UPDATE_ROLLBACK_FAILED). If the
	// stack is stuck there again, the deploy fails instead of trying forever.
	Continued bool `json:"continued,omitempty"`
}

// Status is where a deploy stands after a step.
type Status string

const (
	StatusInProgress Status = "IN_PROGRESS" // call Step again later
	StatusDone       Status = "DONE"        // the stack is deployed (or deleted)
	StatusFailed     Status = "FAILED"      // the deploy failed; Reason says why
)

// Phase names what an in-progress deploy waits for, in words for logs and summaries.
type Phase string

const (
	PhaseWaiting            Phase = "waiting for another operation on the stack"
	PhaseCreatingChangeSet  Phase = "creating the change set"
	PhaseExecuting          Phase = "executing the change set"
	PhaseDeletingFailed     Phase = "deleting the stack left by a failed create"
	PhaseContinuingRollback Phase = "continuing the failed update rollback"
	PhaseDeleting           Phase = "deleting the stack"
)

// Outcome is the result of a step.
type Outcome struct {
	Status      Status
	Phase       Phase // for StatusInProgress
	StackName   string
	StackID     string
	StackStatus string // as last observed; "" when the stack does not exist
	ChangeSet   string
	// NoChanges: done, because the template and parameters change nothing.
	NoChanges bool
	// Outputs are the stack's outputs when done.
	Outputs map[string]string
	// Reason says why the deploy failed (the root cause first), or what it waits for.
	Reason string
	// RootCause is the stack event that explains a failure, when the events tell one.
	RootCause *pipeline.StackEvent
	// Misconfigured: the request itself is wrong (a parameter without a value, a missing
	// capability, a template too large); retrying cannot help, the configuration must change.
	Misconfigured bool
	Progress      Progress
}

// Done reports whether the deploy ended (succeeded or failed).
func (o Outcome) Done() bool { return o.Status != StatusInProgress }

func (o Outcome) inProgress(phase Phase) Outcome {
	o.Status, o.Phase = StatusInProgress, phase
	if o.StackStatus != "" {
		o.Reason = fmt.Sprintf("stack %s is %s: %s", o.StackName, o.StackStatus, phase)
	} else {
		o.Reason = fmt.Sprintf("stack %s: %s", o.StackName, phase)
	}
	return o
}

func (o Outcome) failed(reason string) Outcome {
	o.Status, o.Reason = StatusFailed, reason
	return o
}

func (o Outcome) misconfigured(reason string) Outcome {
	o.Misconfigured = true
	return o.failed(reason)
}

// stackBusy reports whether an operation runs on a stack in status. REVIEW_IN_PROGRESS is a
// stack that only has an unexecuted CREATE change set: nothing runs.
func stackBusy(status string) bool {
	return strings.HasSuffix(status, "_IN_PROGRESS") && status != string(cftypes.StackStatusReviewInProgress)
}

// Step takes the deploy one step further. It returns an error only for a call that failed
// without an answer about the deploy (throttled past the SDK's retries, a network error,
// access denied); every answer about the deploy itself, failures included, is the Outcome.
func (e *Engine) Step(ctx context.Context, req Request) (Outcome, error) {
	if req.StackName == "" || req.Token == "" {
		return Outcome{}, errors.New("deploy step: stack name and token are required")
	}
	out := Outcome{StackName: req.StackName, ChangeSet: ChangeSetName(req.Token), Progress: req.Progress}
	if n := len(req.TemplateBody); n > MaxTemplateBody {
		return out.misconfigured(fmt.Sprintf("the template is %d bytes; CloudFormation takes at most %d bytes inline, and the deployer does not stage templates in S3", n, MaxTemplateBody)), nil
	}
	stack, err := e.describeStack(ctx, req.StackName)
	if err != nil {
		return out, err
	}
	status := ""
	if stack != nil {
		status = string(stack.StackStatus)
		out.StackID, out.StackStatus, out.Progress.StackID = aws.ToString(stack.StackId), status, aws.ToString(stack.StackId)
	}
	if stackBusy(status) {
		switch {
		case out.Progress.Executed:
			return out.inProgress(PhaseExecuting), nil
		case out.Progress.Deleted && status == string(cftypes.StackStatusDeleteInProgress):
			return out.inProgress(PhaseDeletingFailed), nil
		case out.Progress.Continued && strings.HasPrefix(status, "UPDATE_ROLLBACK_"):
			return out.inProgress(PhaseContinuingRollback), nil
		}
		return out.inProgress(PhaseWaiting), nil
	}

	var cs *cloudformation.DescribeChangeSetOutput
	if stack != nil {
		if cs, err = e.describeChangeSet(ctx, req.StackName, out.ChangeSet); err != nil {
			return out, err
		}
	}
	if cs != nil {
		switch cs.ExecutionStatus {
		case cftypes.ExecutionStatusExecuteInProgress, cftypes.ExecutionStatusExecuteComplete, cftypes.ExecutionStatusExecuteFailed:
			out.Progress.Executed = true
			return e.judge(ctx, out, stack), nil
		case cftypes.ExecutionStatusAvailable:
			return e.execute(ctx, out, req)
		case cftypes.ExecutionStatusObsolete:
			e.deleteChangeSet(ctx, req.StackName, out.ChangeSet)
			return out.failed(fmt.Sprintf("change set %s of stack %s became obsolete: another deployment updated the stack after it was created; retry the action", out.ChangeSet, req.StackName)), nil
		}
		switch cs.Status {
		case cftypes.ChangeSetStatusCreatePending, cftypes.ChangeSetStatusCreateInProgress,
			cftypes.ChangeSetStatusDeletePending, cftypes.ChangeSetStatusDeleteInProgress:
			return out.inProgress(PhaseCreatingChangeSet), nil
		case cftypes.ChangeSetStatusFailed:
			reason := aws.ToString(cs.StatusReason)
			// A failed change set is only information: remove it so that the stack's list
			// stays short (CloudFormation keeps them otherwise). A re-invocation that no
			// longer finds it creates it again and gets the same answer.
			e.deleteChangeSet(ctx, req.StackName, out.ChangeSet)
			if isNoChanges(reason) {
				out.Status, out.NoChanges, out.Outputs = StatusDone, true, outputs(stack)
				out.Reason = fmt.Sprintf("stack %s: no changes", req.StackName)
				return out, nil
			}
			return out.failed(fmt.Sprintf("change set %s of stack %s failed: %s", out.ChangeSet, req.StackName, reason)), nil
		case cftypes.ChangeSetStatusDeleteFailed:
			return out.failed(fmt.Sprintf("change set %s of stack %s could not be deleted: %s", out.ChangeSet, req.StackName, aws.ToString(cs.StatusReason))), nil
		}
		// CREATE_COMPLETE with an execution status not listed above, or DELETE_COMPLETE:
		// treat as absent.
	}

	if out.Progress.Executed {
		// Executed, and the change set is gone (the stack was replaced or the change set
		// deleted): the stack's state is the answer.
		return e.judge(ctx, out, stack), nil
	}
	switch cftypes.StackStatus(status) {
	case "", cftypes.StackStatusReviewInProgress, cftypes.StackStatusDeleteComplete:
		// Missing, or only an unexecuted CREATE change set of an earlier deploy: create.
		return e.createChangeSet(ctx, out, req, stack, cftypes.ChangeSetTypeCreate)
	case cftypes.StackStatusRollbackComplete:
		// A failed create: the stack can only be deleted ("Stack status codes",
		// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
		// Delete it, then
		// create it again on a later step.
		if out.Progress.Deleted {
			return e.fail(ctx, out, stack, "it is in ROLLBACK_COMPLETE again after the deployer deleted it"), nil
		}
		return e.deleteStack(ctx, out, req.StackName, req.RoleARN, deleteToken(req.Token), PhaseDeletingFailed)
	case cftypes.StackStatusUpdateRollbackFailed:
		// No change set can be created now; continue the rollback, then update on a later step.
		if out.Progress.Continued {
			return e.fail(ctx, out, stack, "its update rollback failed again after the deployer continued it; fix the resource that cannot roll back (or skip it with ContinueUpdateRollback's ResourcesToSkip), then retry"), nil
		}
		return e.continueRollback(ctx, out, req)
	case cftypes.StackStatusDeleteFailed, cftypes.StackStatusRollbackFailed, cftypes.StackStatusImportRollbackFailed, cftypes.StackStatusCreateFailed:
		return e.fail(ctx, out, stack, "the deployer cannot recover it by itself: delete the stack (with RetainResources for the resources it could not delete), then retry"), nil
	}
	return e.createChangeSet(ctx, out, req, stack, cftypes.ChangeSetTypeUpdate)
}

// judge reads the outcome of this deploy's execution from the stack.
func (e *Engine) judge(ctx context.Context, out Outcome, stack *cftypes.Stack) Outcome {
	if stack == nil {
		return out.failed(fmt.Sprintf("stack %s no longer exists: it was deleted while this deploy ran", out.StackName))
	}
	switch stack.StackStatus {
	case cftypes.StackStatusCreateComplete, cftypes.StackStatusUpdateComplete, cftypes.StackStatusImportComplete:
		out.Status, out.Outputs = StatusDone, outputs(stack)
		out.Reason = fmt.Sprintf("stack %s is %s", out.StackName, stack.StackStatus)
		return out
	}
	if stackBusy(string(stack.StackStatus)) {
		return out.inProgress(PhaseExecuting)
	}
	return e.fail(ctx, out, stack, "")
}

// fail ends the deploy with the stack's root cause.
func (e *Engine) fail(ctx context.Context, out Outcome, stack *cftypes.Stack, advice string) Outcome {
	var b strings.Builder
	fmt.Fprintf(&b, "stack %s is %s", out.StackName, stack.StackStatus)
	ref := aws.ToString(stack.StackId)
	if ref == "" {
		ref = out.StackName
	}
	first, last := e.rootCause(ctx, ref)
	if first != nil {
		out.RootCause = first
		fmt.Fprintf(&b, ". Root cause: %s", describeCause(first))
	} else if r := aws.ToString(stack.StackStatusReason); r != "" {
		fmt.Fprintf(&b, ": %s", r)
	}
	// A failed rollback (or delete) has a failure of its own, after the root cause: it is
	// what keeps the stack stuck.
	if last != nil && (first == nil || *last != *first) && strings.HasSuffix(string(stack.StackStatus), "_FAILED") {
		fmt.Fprintf(&b, ". Then: %s", describeCause(last))
	}
	if advice != "" {
		fmt.Fprintf(&b, ". %s%s", strings.ToUpper(advice[:1]), advice[1:])
	}
	if out.RootCause != nil && out.RootCause.ConsoleURL != "" {
		fmt.Fprintf(&b, ". Events: %s", out.RootCause.ConsoleURL)
	}
	return out.failed(b.String())
}

func (e *Engine) createChangeSet(ctx context.Context, out Outcome, req Request, stack *cftypes.Stack, typ cftypes.ChangeSetType) (Outcome, error) {
	params, problem, err := e.parameters(ctx, req, stack, typ)
	if err != nil {
		return out, err
	}
	if problem != "" {
		return out.misconfigured(problem), nil
	}
	in := &cloudformation.CreateChangeSetInput{
		StackName:     aws.String(req.StackName),
		ChangeSetName: aws.String(out.ChangeSet),
		ChangeSetType: typ,
		ClientToken:   aws.String(out.ChangeSet),
		Parameters:    params,
		Description:   aws.String("lambda-pipeline deploy " + truncate(req.Token, 100)),
	}
	if keepTemplate(req, typ) {
		in.UsePreviousTemplate = aws.Bool(true)
	} else {
		in.TemplateBody = aws.String(req.TemplateBody)
	}
	for _, c := range req.Capabilities {
		in.Capabilities = append(in.Capabilities, cftypes.Capability(c))
	}
	if req.RoleARN != "" {
		in.RoleARN = aws.String(req.RoleARN)
	}
	res, err := e.Stacks.CreateChangeSet(ctx, in)
	var insufficient *cftypes.InsufficientCapabilitiesException
	var exists *cftypes.AlreadyExistsException
	var limit *cftypes.LimitExceededException
	switch {
	case err == nil:
		out.Progress.StackID = aws.ToString(res.StackId)
		if out.StackID == "" {
			out.StackID = out.Progress.StackID
		}
		out.Progress.Created = out.Progress.Created || typ == cftypes.ChangeSetTypeCreate
		return out.inProgress(PhaseCreatingChangeSet), nil
	case errors.As(err, &exists):
		// Created by an earlier call of this deploy that did not see its answer.
		out.Progress.Created = out.Progress.Created || typ == cftypes.ChangeSetTypeCreate
		return out.inProgress(PhaseCreatingChangeSet), nil
	case errors.As(err, &insufficient):
		return out.misconfigured(fmt.Sprintf("stack %s: %s; add it to capabilities", req.StackName, apiMessage(err))), nil
	case errors.As(err, &limit):
		return out.failed(fmt.Sprintf("stack %s: %s", req.StackName, apiMessage(err))), nil
	case raced(err, req.StackName, out.StackID):
		// The stack changed between the observation and this call (another operation
		// started, or the stack appeared or vanished): observe again.
		return out.inProgress(PhaseWaiting), nil
	case apiCode(err) == "ValidationError":
		// Anything else is CloudFormation's answer about this change set ("Parameter
		// validation failed: … does not exist", a template error): no retry changes it.
		return out.failed(fmt.Sprintf("stack %s: CloudFormation refused the change set: %s", req.StackName, apiMessage(err))), nil
	}
	return out, fmt.Errorf("create change set %s for %s: %w", out.ChangeSet, req.StackName, err)
}

// parameters applies the rule of docs/templates.md to the template's parameters: the
// override; else nothing, when the template has a Default; else UsePreviousValue, when the
// stack has the parameter; else a misconfiguration, naming the parameters.
func (e *Engine) parameters(ctx context.Context, req Request, stack *cftypes.Stack, typ cftypes.ChangeSetType) ([]cftypes.Parameter, string, error) {
	in := &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String(req.TemplateBody)}
	if keepTemplate(req, typ) {
		in = &cloudformation.GetTemplateSummaryInput{StackName: aws.String(req.StackName)}
	}
	create := typ == cftypes.ChangeSetTypeCreate
	summary, err := e.Stacks.GetTemplateSummary(ctx, in)
	if err != nil {
		if apiCode(err) == "ValidationError" {
			return nil, "the template is invalid: " + apiMessage(err), nil
		}
		return nil, "", fmt.Errorf("read the parameters of the template for %s: %w", req.StackName, err)
	}
	declared := map[string]bool{} // name → has a Default
	for _, p := range summary.Parameters {
		declared[aws.ToString(p.ParameterKey)] = p.DefaultValue != nil
	}
	var unknown []string
	for _, name := range slices.Sorted(maps.Keys(req.Parameters)) {
		if _, ok := declared[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Sprintf("parameter overrides %s: the template does not declare them (it declares: %s)",
			strings.Join(unknown, ", "), listOrNone(slices.Sorted(maps.Keys(declared)))), nil
	}
	previous := map[string]bool{}
	if stack != nil && !create {
		for _, p := range stack.Parameters {
			previous[aws.ToString(p.ParameterKey)] = true
		}
	}
	var params []cftypes.Parameter
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		switch v, ok := req.Parameters[name]; {
		case ok:
			params = append(params, cftypes.Parameter{ParameterKey: aws.String(name), ParameterValue: aws.String(v)})
		case declared[name]:
			// CloudFormation uses the template's Default.
		case previous[name]:
			params = append(params, cftypes.Parameter{ParameterKey: aws.String(name), UsePreviousValue: aws.Bool(true)})
		default:
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Sprintf("template parameters %s have no value: the template gives them no Default, the stack has no previous value, and no override sets them",
			strings.Join(missing, ", ")), nil
	}
	return params, "", nil
}

// keepTemplate reports whether the change set keeps the stack's template: an update of a
// request that asks for it.
func keepTemplate(req Request, typ cftypes.ChangeSetType) bool {
	return req.KeepTemplate && typ == cftypes.ChangeSetTypeUpdate
}

func (e *Engine) execute(ctx context.Context, out Outcome, req Request) (Outcome, error) {
	_, err := e.Stacks.ExecuteChangeSet(ctx, &cloudformation.ExecuteChangeSetInput{
		StackName:          aws.String(req.StackName),
		ChangeSetName:      aws.String(out.ChangeSet),
		ClientRequestToken: aws.String(executeToken(req.Token)),
		// The API model documents a default of true for ExecuteChangeSet's DisableRollback
		// ("ExecuteChangeSet",
		// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html,
		// unverified); the engine's recovery relies on CloudFormation rolling back.
		DisableRollback: aws.Bool(false),
	})
	var invalid *cftypes.InvalidChangeSetStatusException
	var token *cftypes.TokenAlreadyExistsException
	var notFound *cftypes.ChangeSetNotFoundException
	var insufficient *cftypes.InsufficientCapabilitiesException
	switch {
	case err == nil, errors.As(err, &token):
		// Executed now, or by an earlier call that did not see its answer.
		out.Progress.Executed = true
		return out.inProgress(PhaseExecuting), nil
	case errors.As(err, &invalid), errors.As(err, &notFound):
		// The change set or the stack moved on since the observation: observe again.
		return out.inProgress(PhaseExecuting), nil
	case errors.As(err, &insufficient):
		return out.misconfigured(fmt.Sprintf("stack %s: %s; add it to capabilities", req.StackName, apiMessage(err))), nil
	}
	return out, fmt.Errorf("execute change set %s of %s: %w", out.ChangeSet, req.StackName, err)
}

func (e *Engine) continueRollback(ctx context.Context, out Outcome, req Request) (Outcome, error) {
	in := &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String(req.StackName), ClientRequestToken: aws.String(continueToken(req.Token))}
	if req.RoleARN != "" {
		in.RoleARN = aws.String(req.RoleARN)
	}
	_, err := e.Stacks.ContinueUpdateRollback(ctx, in)
	var token *cftypes.TokenAlreadyExistsException
	switch {
	case err == nil:
		out.Progress.Continued = true
		return out.inProgress(PhaseContinuingRollback), nil
	case errors.As(err, &token):
		// This deploy continued the rollback before (and lost track of it): the stack is
		// stuck again.
		out.Progress.Continued = true
		stack, derr := e.describeStack(ctx, req.StackName)
		if derr != nil || stack == nil {
			return out.inProgress(PhaseContinuingRollback), nil
		}
		return e.fail(ctx, out, stack, "its update rollback failed again after the deployer continued it; fix the resource that cannot roll back, then retry"), nil
	case apiCode(err) == "ValidationError":
		// A race only if the stack left UPDATE_ROLLBACK_FAILED since the observation; else
		// a refusal ("Role … is invalid or cannot be assumed") that no retry mends.
		if moved, derr := e.moved(ctx, req.StackName, out.StackStatus); derr != nil || moved {
			return out.inProgress(PhaseWaiting), nil
		}
		return out.failed(fmt.Sprintf("stack %s is %s: CloudFormation refused to continue the update rollback: %s", req.StackName, out.StackStatus, apiMessage(err))), nil
	}
	return out, fmt.Errorf("continue the update rollback of %s: %w", req.StackName, err)
}

func (e *Engine) deleteStack(ctx context.Context, out Outcome, stack, roleARN, token string, phase Phase) (Outcome, error) {
	in := &cloudformation.DeleteStackInput{StackName: aws.String(stack), ClientRequestToken: aws.String(token)}
	if roleARN != "" {
		in.RoleARN = aws.String(roleARN)
	}
	_, err := e.Stacks.DeleteStack(ctx, in)
	var dup *cftypes.TokenAlreadyExistsException
	switch {
	case err == nil, errors.As(err, &dup):
		out.Progress.Deleted = true
		return out.inProgress(phase), nil
	case apiCode(err) == "ValidationError":
		// A race only if the stack moved since the observation ("cannot be deleted while in
		// status …"); else a refusal, such as termination protection ("cannot be deleted
		// while TerminationProtection is enabled"), that no retry mends.
		if moved, derr := e.moved(ctx, stack, out.StackStatus); derr != nil || moved {
			return out.inProgress(PhaseWaiting), nil
		}
		return out.failed(fmt.Sprintf("stack %s is %s: CloudFormation refused to delete it: %s", stack, out.StackStatus, apiMessage(err))), nil
	}
	return out, fmt.Errorf("delete stack %s: %w", stack, err)
}

// moved reports whether the stack is no longer in the status observed (it is gone, or another
// operation changed it), which makes a refusal a race rather than an answer.
func (e *Engine) moved(ctx context.Context, name, observed string) (bool, error) {
	stack, err := e.describeStack(ctx, name)
	if err != nil {
		return false, err
	}
	return stack == nil || string(stack.StackStatus) != observed, nil
}

// DeleteRequest is one step of deleting a stack.
type DeleteRequest struct {
	StackName string
	RoleARN   string
	Token     string
	Progress  Progress
}

// StepDelete takes the deletion of a stack one step further: done once the stack no longer
// exists (a stack that never existed is done at once), failed when it ends DELETE_FAILED after
// this deletion asked for it. It waits for an operation under way to end before deleting.
func (e *Engine) StepDelete(ctx context.Context, req DeleteRequest) (Outcome, error) {
	if req.StackName == "" || req.Token == "" {
		return Outcome{}, errors.New("delete step: stack name and token are required")
	}
	out := Outcome{StackName: req.StackName, Progress: req.Progress}
	stack, err := e.describeStack(ctx, req.StackName)
	if err != nil {
		return out, err
	}
	if stack == nil || stack.StackStatus == cftypes.StackStatusDeleteComplete {
		out.Status, out.Reason = StatusDone, fmt.Sprintf("stack %s does not exist", req.StackName)
		if out.Progress.Deleted {
			out.Reason = fmt.Sprintf("stack %s deleted", req.StackName)
		}
		return out, nil
	}
	status := string(stack.StackStatus)
	out.StackID, out.StackStatus, out.Progress.StackID = aws.ToString(stack.StackId), status, aws.ToString(stack.StackId)
	switch {
	case status == string(cftypes.StackStatusDeleteInProgress):
		return out.inProgress(PhaseDeleting), nil
	case stackBusy(status):
		return out.inProgress(PhaseWaiting), nil
	case status == string(cftypes.StackStatusDeleteFailed) && out.Progress.Deleted:
		return e.fail(ctx, out, stack, "delete the resources it could not delete by hand, or retry the delete retaining them"), nil
	}
	return e.deleteStack(ctx, out, req.StackName, req.RoleARN, deleteToken(req.Token), PhaseDeleting)
}

// describeStack returns the stack, or nil when it does not exist.
func (e *Engine) describeStack(ctx context.Context, name string) (*cftypes.Stack, error) {
	res, err := e.Stacks.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		if stackAbsent(err, name, "") {
			return nil, nil
		}
		return nil, fmt.Errorf("describe stack %s: %w", name, err)
	}
	if len(res.Stacks) == 0 {
		return nil, nil
	}
	return &res.Stacks[0], nil
}

// describeChangeSet returns the change set, or nil when it (or its stack) does not exist.
func (e *Engine) describeChangeSet(ctx context.Context, stack, name string) (*cloudformation.DescribeChangeSetOutput, error) {
	res, err := e.Stacks.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{StackName: aws.String(stack), ChangeSetName: aws.String(name)})
	if err != nil {
		if changeSetAbsent(err, stack, "") {
			return nil, nil
		}
		return nil, fmt.Errorf("describe change set %s of %s: %w", name, stack, err)
	}
	return res, nil
}

// deleteChangeSet removes a change set that is no longer of use. Best effort: a leftover
// change set costs nothing, and a later step of the same deploy reads it the same way.
func (e *Engine) deleteChangeSet(ctx context.Context, stack, name string) {
	_, _ = e.Stacks.DeleteChangeSet(ctx, &cloudformation.DeleteChangeSetInput{StackName: aws.String(stack), ChangeSetName: aws.String(name)})
}

// isNoChanges reports whether a FAILED change set's reason means "nothing to change"
// ("The submitted information didn't contain changes…", or "No updates are to be
// performed."; the AWS CLI's "deploy" takes both as no changes,
// https://docs.aws.amazon.com/cli/latest/reference/cloudformation/deploy/).
func isNoChanges(reason string) bool {
	return strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed")
}

func outputs(stack *cftypes.Stack) map[string]string {
	if stack == nil || len(stack.Outputs) == 0 {
		return nil
	}
	out := make(map[string]string, len(stack.Outputs))
	for _, o := range stack.Outputs {
		out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:max(cut, 0)] + mark
}
