package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
)

// ApprovalStore keeps the approvals of deploys that widen IAM (runstore.Dynamo implements it
// over the runs table; lp approve and lp reject decide them there).
type ApprovalStore interface {
	// RequestApproval stores a unless an approval with its key exists, and returns the stored
	// one (a's, or the earlier one).
	RequestApproval(ctx context.Context, a pipeline.Approval) (pipeline.Approval, error)
	// Approval reads one approval (a consistent read); pipeline.ErrApprovalNotFound when none.
	Approval(ctx context.Context, k pipeline.ApprovalKey) (pipeline.Approval, error)
}

// DefaultApprovalExpiry is how long a widening waits for a person. CodePipeline fails a Lambda
// Invoke action after 24 hours in all ("Quotas in AWS CodePipeline",
// https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html); the deploy itself
// needs time after the approval, so the approval expires well before that.
const DefaultApprovalExpiry = 20 * time.Hour

// MaxApprovalExpiry leaves an hour of CodePipeline's 24 for the deploy after a late approval.
const MaxApprovalExpiry = 23 * time.Hour

// Gate is the policy gate: before any change set of a pushed template, Check refuses a
// template that breaks the rules of shared/policy, and Admit makes a deploy that widens IAM
// (policy.Widening against the stack's current template) wait for a person's decision. Both
// run in the deployer, which no push can change.
type Gate struct {
	// Policy is what the rules allow (policy.DefaultConfig unless the control plane narrows it).
	Policy policy.Config
	// Approvals keeps the approval requests and decisions. Nil: a widening cannot be approved,
	// so it fails (fail closed).
	Approvals ApprovalStore
	// Stacks reads the stack's current template (GetTemplate).
	Stacks TemplateReader
	Clock  pipeline.Clock
	// Expiry is how long a request waits for a decision (DefaultApprovalExpiry when zero).
	Expiry time.Duration
}

// TemplateReader is what the gate reads of CloudFormation (cloudformation.Client has both).
type TemplateReader interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	GetTemplate(ctx context.Context, in *cloudformation.GetTemplateInput, optFns ...func(*cloudformation.Options)) (*cloudformation.GetTemplateOutput, error)
}

var _ TemplateReader = (*cloudformation.Client)(nil)

// Check runs the policy rules on a template about to be deployed to stack (source names it in
// the message). It returns "" when the template passes, else the refusal: every violation with
// its resource, statement and rule, the first ones first, within what a job failure message
// holds.
func (g *Gate) Check(stack, source, body string) string {
	t, err := policy.Parse([]byte(body))
	if err != nil {
		return fmt.Sprintf("policy gate: refused %s for stack %s before any change set: the gate cannot read it: %v", source, stack, err)
	}
	vs := policy.Check(t, g.Policy)
	if len(vs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "policy gate: refused %s for stack %s before any change set (%d violation", source, stack, len(vs))
	if len(vs) > 1 {
		b.WriteString("s")
	}
	b.WriteString("; check it locally with lp policy check): ")
	for i, v := range vs {
		line := v.String()
		if i > 0 {
			line = "; " + line
		}
		if b.Len()+len(line) > maxFailureMessage-100 {
			fmt.Fprintf(&b, "; … and %d more", len(vs)-i)
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// PhaseAwaitingApproval is what a deploy that widens IAM waits for.
const PhaseAwaitingApproval Phase = "waiting for approval of an IAM widening"

// admission is the gate's verdict on a deploy that passed Check.
type admission struct {
	// open: nothing widens, or the widening is approved; the deploy goes on.
	open bool
	// failure, when set, ends the deploy (rejected, expired, not approvable).
	failure *failure
	// pending: the approval request to watch while waiting.
	pending *pipeline.Approval
	changes []string
	sha     string
}

// ApprovalTarget says which execution a deploy belongs to, for the approval's key: the
// pipeline and execution CodePipeline reports for the job (JobContext), never UserParameters'
// own, which a push writes.
type ApprovalTarget struct {
	Pipeline, ExecutionID string
	// Deploy is the deploy's token (its first job's id): a retried stage asks again.
	Deploy       string
	TemplatePath string
}

// admit computes the deploy's IAM widening against the stack's current template and, when
// there is one, asks for (or finds) its approval. A stack that has no deployed template (new,
// REVIEW_IN_PROGRESS, ROLLBACK_COMPLETE after a failed create) counts as empty: every role of
// the template is new, so a first deploy that creates roles waits for a person too, as CDK
// Pipelines' security check does.
func (g *Gate) admit(ctx context.Context, stack string, body string, target ApprovalTarget) (admission, error) {
	newT, err := policy.Parse([]byte(body))
	if err != nil {
		// Check refused it already; keep the gate closed if called alone.
		return admission{failure: &failure{cptypes.FailureTypeJobFailed, err.Error()}}, nil
	}
	base, baseSHA, err := g.currentTemplate(ctx, stack)
	if err != nil {
		return admission{}, err
	}
	changes := policy.Widening(base, newT)
	if len(changes) == 0 {
		return admission{open: true}, nil
	}
	adm := admission{sha: digest(body)}
	for _, c := range changes {
		adm.changes = append(adm.changes, c.String())
	}
	switch {
	case g.Approvals == nil:
		adm.failure = &failure{cptypes.FailureTypeJobFailed, fmt.Sprintf("stack %s: the deploy widens IAM (%s) and the deployer has no approval store to wait for a person's decision; nothing was deployed",
			stack, summarizeChanges(adm.changes, 1000))}
		return adm, nil
	case target.Pipeline == "" || target.ExecutionID == "":
		// A job's context always names both (JobHandler.Handle); kept to fail closed.
		adm.failure = &failure{cptypes.FailureTypeConfigurationError, fmt.Sprintf("stack %s: the deploy widens IAM (%s), which waits for lp approve, but UserParameters name no pipeline and execution to approve it by: add \"pipeline\" and \"execution\": \"#{codepipeline.PipelineExecutionId}\"; nothing was deployed",
			stack, summarizeChanges(adm.changes, 1000))}
		return adm, nil
	}
	now := g.now()
	req := pipeline.Approval{
		Key:    pipeline.ApprovalKey{Pipeline: target.Pipeline, ExecutionID: target.ExecutionID, Stack: stack, Deploy: target.Deploy},
		Status: pipeline.ApprovalPending, TemplatePath: target.TemplatePath, TemplateSHA256: adm.sha, BaseSHA256: baseSHA,
		Widening: adm.changes, RequestedAt: now, Deadline: now.Add(g.expiry()),
	}
	stored, err := g.Approvals.RequestApproval(ctx, req)
	if err != nil {
		return admission{}, fmt.Errorf("request the approval of %s: %w", req.Key, err)
	}
	return g.judge(stored, adm, now), nil
}

// judge reads a stored approval for the deploy adm describes.
func (g *Gate) judge(a pipeline.Approval, adm admission, now time.Time) admission {
	adm.pending = nil
	if !a.Covers(adm.sha, adm.changes) {
		adm.failure = &failure{cptypes.FailureTypeJobFailed, fmt.Sprintf("stack %s: the approval request of execution %s is for another change (template %s, %d change(s)) than this deploy's (template %s: %s); nothing was deployed. Retry the stage once the stack is settled",
			a.Key.Stack, a.Key.ExecutionID, short(a.TemplateSHA256), len(a.Widening), short(adm.sha), summarizeChanges(adm.changes, 1000))}
		return adm
	}
	switch a.State(now) {
	case pipeline.ApprovalApproved:
		adm.open = true
	case pipeline.ApprovalRejected:
		reason := a.Reason
		if reason == "" {
			reason = "no reason given"
		}
		adm.failure = &failure{cptypes.FailureTypeJobFailed, fmt.Sprintf("stack %s: the IAM widening was rejected by %s at %s: %s; nothing was deployed",
			a.Key.Stack, a.DecidedBy, a.DecidedAt.UTC().Format(time.RFC3339), reason)}
	case pipeline.ApprovalExpired:
		adm.failure = &failure{cptypes.FailureTypeJobFailed, fmt.Sprintf("stack %s: approval expired: nobody approved the IAM widening within %s (requested %s, deadline %s); nothing was deployed. Retry the stage to ask again. Widening: %s",
			a.Key.Stack, a.Deadline.Sub(a.RequestedAt).Round(time.Minute), a.RequestedAt.UTC().Format(time.RFC3339), a.Deadline.UTC().Format(time.RFC3339), summarizeChanges(a.Widening, 3000))}
	default:
		adm.pending = &a
	}
	return adm
}

// waiting is the in-progress outcome of a deploy that waits for its approval: the summary a
// person sees on the action says what widens and how to decide.
func waiting(out Outcome, a pipeline.Approval) Outcome {
	out.Status, out.Phase = StatusInProgress, PhaseAwaitingApproval
	out.Reason = fmt.Sprintf("stack %[1]s waits for approval until %[2]s: lp approve --deploy-stack %[1]s %[3]s (or lp reject --deploy-stack %[1]s --reason WHY %[3]s). IAM widening: %[4]s",
		a.Key.Stack, a.Deadline.UTC().Format(time.RFC3339), a.Key.ExecutionID, summarizeChanges(a.Widening, 1500))
	return out
}

// currentTemplate returns the stack's deployed template and its digest; nil when the stack has
// none (missing, REVIEW_IN_PROGRESS, ROLLBACK_COMPLETE, DELETE_COMPLETE) or when it cannot be
// read as a template (then everything counts as new).
func (g *Gate) currentTemplate(ctx context.Context, stack string) (*policy.Template, string, error) {
	if g.Stacks == nil {
		return nil, "", errors.New("policy gate: no CloudFormation client to read the current template")
	}
	res, err := g.Stacks.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		if stackAbsent(err, stack, "") {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("describe stack %s: %w", stack, err)
	}
	if len(res.Stacks) == 0 {
		return nil, "", nil
	}
	switch res.Stacks[0].StackStatus {
	case cftypes.StackStatusReviewInProgress, cftypes.StackStatusRollbackComplete, cftypes.StackStatusDeleteComplete:
		return nil, "", nil
	}
	tpl, err := g.Stacks.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(stack), TemplateStage: cftypes.TemplateStageOriginal})
	if err != nil {
		if stackAbsent(err, stack, "") {
			return nil, "", nil
		}
		return nil, "", fmt.Errorf("get the template of stack %s: %w", stack, err)
	}
	body := aws.ToString(tpl.TemplateBody)
	t, err := policy.Parse([]byte(body))
	if err != nil {
		return nil, digest(body), nil
	}
	return t, digest(body), nil
}

func (g *Gate) now() time.Time {
	if g.Clock != nil {
		return g.Clock.Now()
	}
	return time.Now()
}

func (g *Gate) expiry() time.Duration {
	if g.Expiry <= 0 {
		return DefaultApprovalExpiry
	}
	return min(g.Expiry, MaxApprovalExpiry)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// summarizeChanges joins changes within about n bytes, counting what it leaves out.
func summarizeChanges(changes []string, n int) string {
	var b strings.Builder
	for i, c := range changes {
		sep := ""
		if i > 0 {
			sep = "; "
		}
		if b.Len()+len(sep)+len(c) > n {
			fmt.Fprintf(&b, "%s… and %d more (lp show)", sep, len(changes)-i)
			break
		}
		b.WriteString(sep + c)
	}
	return b.String()
}
