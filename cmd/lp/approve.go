package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// approveCmd runs `lp approve` and `lp reject`: the decision on a deploy that widens IAM and
// waits for a person (docs/security.md, "Approval"). It finds the execution's pending
// approval in the runs table, records the decision once (a conditional update: a second
// decision, or one after the deadline, is refused) with the caller's ARN from
// sts:GetCallerIdentity, and prints what was decided. The deployer picks it up at its next job.
func approveCmd(ctx context.Context, approve bool, args []string, stdout io.Writer, getenv func(string) string) error {
	name := "reject"
	if approve {
		name = "approve"
	}
	h := help{name: name, synopsis: "[--pipeline P] [--deploy-stack S] [--json] EXECUTION_ID",
		summary: "let a deploy that widens IAM go on", example: "lp approve a1f0c2d4-1111-4a5b-8c6d-000000000003"}
	if !approve {
		h.synopsis = "[--pipeline P] [--deploy-stack S] [--json] [--reason TEXT] EXECUTION_ID"
		h.summary = "fail a deploy that widens IAM"
		h.example = `lp reject a1f0c2d4-1111-4a5b-8c6d-000000000003 --reason "grants s3:* on every bucket"`
	}
	fs := newFlags(name)
	pipelineName := fs.String("pipeline", "", "the execution's pipeline (found through its run when omitted)")
	stack := fs.String("deploy-stack", "", "the stack whose deploy to decide, when both of the execution's deploys wait")
	asJSON := fs.Bool("json", false, "print the decided approval as JSON")
	reason := ""
	if !approve {
		fs.StringVar(&reason, "reason", "", "why (shown in the failed action's message)")
	}
	db := dbFlags(fs, getenv)
	// Flags may follow the execution id: lp reject ID --reason "…", as the deployer's message
	// and docs/security.md write it.
	if err := parse(fs, h, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"usage: lp " + name + " " + h.synopsis}
	}
	execution := fs.Arg(0)
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	if *pipelineName == "" {
		run, err := store.FindExecution(ctx, execution)
		if err != nil {
			return fmt.Errorf("execution %s: %w (give --pipeline if its run is not recorded)", execution, err)
		}
		*pipelineName = run.Pipeline
	}
	now := time.Now()
	a, err := pendingApproval(ctx, store, *pipelineName, execution, *stack, now)
	if err != nil {
		return err
	}
	caller, err := callerARN(ctx, db.region, getenv)
	if err != nil {
		return fmt.Errorf("who is deciding: %w", err)
	}
	decided, err := store.DecideApproval(ctx, a.Key, pipeline.Decision{Approve: approve, By: caller, At: now, Reason: reason})
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, decided)
	}
	verb := map[bool]string{true: "approved", false: "rejected"}[approve]
	fmt.Fprintf(stdout, "%s the deploy of stack %s in %s %s, as %s at %s\n", verb, decided.Key.Stack, decided.Key.Pipeline, decided.Key.ExecutionID,
		decided.DecidedBy, decided.DecidedAt.Local().Format(time.RFC3339))
	printWidening(stdout, decided)
	if approve {
		fmt.Fprintln(stdout, "The deployer goes on at its next job (CodePipeline sends one shortly after each answer).")
	} else {
		fmt.Fprintln(stdout, "The deployer fails the action at its next job, with your reason.")
	}
	return nil
}

// pendingApproval is the one approval of the execution that waits: the stack's when given.
func pendingApproval(ctx context.Context, store *runstore.Dynamo, pipelineName, execution, stack string, now time.Time) (pipeline.Approval, error) {
	all, err := store.Approvals(ctx, pipelineName, execution)
	if err != nil {
		return pipeline.Approval{}, err
	}
	var pending []pipeline.Approval
	var others []string
	for _, a := range all {
		if stack != "" && a.Key.Stack != stack {
			continue
		}
		if a.State(now) == pipeline.ApprovalPending {
			pending = append(pending, a)
		} else {
			others = append(others, fmt.Sprintf("%s %s", a.Key.Stack, a.State(now)))
		}
	}
	switch {
	case len(pending) == 1:
		return pending[0], nil
	case len(pending) > 1:
		var stacks []string
		for _, a := range pending {
			stacks = append(stacks, a.Key.Stack)
		}
		return pipeline.Approval{}, usageError{fmt.Sprintf("execution %s has %d deploys waiting (%s): choose one with --deploy-stack", execution, len(pending), strings.Join(stacks, ", "))}
	case len(others) > 0:
		return pipeline.Approval{}, fmt.Errorf("execution %s of %s: nothing waits for a decision (%s)", execution, pipelineName, strings.Join(others, "; "))
	}
	return pipeline.Approval{}, fmt.Errorf("execution %s of %s: %w", execution, pipelineName, pipeline.ErrApprovalNotFound)
}

// printWidening lists what a deploy widens, one change a line.
func printWidening(w io.Writer, a pipeline.Approval) {
	fmt.Fprintf(w, "IAM widening of %s (template %s, sha256 %s):\n", a.Key.Stack, cmp.Or(a.TemplatePath, "?"), short(a.TemplateSHA256, 12))
	for _, c := range a.Widening {
		fmt.Fprintf(w, "  + %s\n", c)
	}
}

// printApprovals is `lp show`'s part: the approvals the run's deploys asked for.
func printApprovals(ctx context.Context, w io.Writer, store *runstore.Dynamo, r pipeline.Run, now time.Time) {
	all, err := store.Approvals(ctx, r.Pipeline, r.ExecutionID)
	if err != nil {
		fmt.Fprintf(w, "\napprovals: %v\n", err)
		return
	}
	for _, a := range all {
		fmt.Fprintln(w)
		switch st := a.State(now); st {
		case pipeline.ApprovalPending:
			fmt.Fprintf(w, "approval  %[1]s: PENDING until %[2]s — lp approve --deploy-stack %[1]s %[3]s (or lp reject --deploy-stack %[1]s --reason WHY %[3]s)\n",
				a.Key.Stack, a.Deadline.Local().Format(time.RFC3339), a.Key.ExecutionID)
		case pipeline.ApprovalExpired:
			fmt.Fprintf(w, "approval  %s: EXPIRED at %s (nobody decided)\n", a.Key.Stack, a.Deadline.Local().Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "approval  %s: %s by %s at %s", a.Key.Stack, st, a.DecidedBy, a.DecidedAt.Local().Format(time.RFC3339))
			if a.Reason != "" {
				fmt.Fprintf(w, ": %s", a.Reason)
			}
			fmt.Fprintln(w)
		}
		printWidening(w, a)
	}
}

// callerARN is who runs lp: sts:GetCallerIdentity with the caller's credentials (any identity
// may call it). AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL) points it at a stand-in.
func callerARN(ctx context.Context, region string, getenv func(string) string) (string, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return "", fmt.Errorf("load AWS configuration: %w", err)
	}
	var opts []func(*sts.Options)
	if endpoint := cmp.Or(getenv("AWS_ENDPOINT_URL_STS"), getenv("AWS_ENDPOINT_URL")); endpoint != "" {
		opts = append(opts, func(o *sts.Options) { o.BaseEndpoint = aws.String(endpoint) })
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			cfg.Credentials = staticLocal{}
		}
	}
	out, err := sts.NewFromConfig(cfg, opts...).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts:GetCallerIdentity: %w", err)
	}
	if arn := aws.ToString(out.Arn); arn != "" {
		return arn, nil
	}
	return "", errors.New("sts:GetCallerIdentity answered no ARN")
}
