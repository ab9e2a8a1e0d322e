package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// The sample jobs' pipeline and execution (events/job-*.json).
const (
	samplePipeline  = "my-lambda-pipeline"
	sampleExecution = "3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11"
	approver        = "arn:aws:iam::123456789012:user/alice"
)

// appApproval is the key of the approval the app deploy that job started asks for.
func appApproval(job events.CodePipelineJob) pipeline.ApprovalKey {
	return pipeline.ApprovalKey{Pipeline: samplePipeline, ExecutionID: sampleExecution, Stack: appStack, Deploy: job.ID}
}

// uploads is a widening of lambda.yml: the function's role may now write objects to a bucket.
func uploads(t *testing.T) []byte {
	t.Helper()
	const anchor = "                Resource: !GetAtt FunctionLogGroup.Arn\n"
	s := string(infrastructure.LambdaTemplate)
	require.Contains(t, s, anchor)
	return []byte(strings.Replace(s, anchor, anchor+`              - Effect: Allow
                Action: s3:PutObject
                Resource: arn:aws:s3:::my-lambda-uploads/*
`, 1))
}

// approvals is the runs table in dynalite, on the world's clock: where the deployer asks and
// lp approve decides (runstore.Dynamo, the same code for both).
func (w *world) approvals() *runstore.Dynamo {
	w.t.Helper()
	db := dynalitetest.Start(w.t).Client(w.t)
	table := dynalitetest.CreateTable(w.t, db, runstore.TableInput(""))
	return runstore.NewDynamo(db, table, pipeline.ClockFunc(w.clock.Now))
}

// deployed puts the shipped lambda.yml in place the way an earlier, approved run left it.
func (w *world) deployed() {
	w.t.Helper()
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b0"))
	require.True(w.t, res.Succeeded, res.FailureMessage)
}

func (w *world) push(lambdaTemplate []byte) {
	w.putSource(sourceKey, map[string][]byte{"infrastructure/lambda.yml": lambdaTemplate, "infrastructure/pipeline.yml": infrastructure.PipelineTemplate})
}

// next is the continuation of job that CodePipeline sends after res, after delay.
func (w *world) next(job events.CodePipelineJob, res awsfake.JobResult, delay time.Duration) events.CodePipelineJob {
	w.t.Helper()
	require.NotEmpty(w.t, res.ContinuationToken, "the job did not continue: %+v", res)
	_ = w.clock.Sleep(context.Background(), delay)
	job.ID, job.Data.ContinuationToken = res.NextJobID, res.ContinuationToken
	return job
}

// A widening waits for a person: the action stays in progress, each job answering with a
// continuation (which restarts CodePipeline's 20-minute clock) and showing the widening; no
// change set exists until someone approves with lp approve's code. Then the deploy goes on
// and the stack gets the new template.
func TestWideningWaitsIsApprovedThenDeploys(t *testing.T) {
	w := newWorld(t)
	w.deployed()
	store := w.approvals()
	w.gated(store)
	created := w.cfn.Calls(awsfake.OpCreateChangeSet)
	w.push(uploads(t))

	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	key := appApproval(job)
	deadline := w.clock.Now().Add(deploy.DefaultApprovalExpiry).UTC().Format(time.RFC3339)
	var res awsfake.JobResult
	for range 3 { // an hour of waiting, in jobs 20 minutes apart
		_, res = w.run(job)
		require.True(t, res.Succeeded, res.FailureMessage)
		assert.Contains(t, res.Summary, "stack my-lambda-app waits for approval until "+deadline+": lp approve --deploy-stack my-lambda-app "+sampleExecution)
		assert.Contains(t, res.Summary, "FunctionRole: added-action: s3:PutObject")
		assert.Contains(t, res.Summary, "FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*")
		assert.Equal(t, appStack, res.ExternalExecutionID)
		job = w.next(job, res, 20*time.Minute)
	}
	assert.Equal(t, created, w.cfn.Calls(awsfake.OpCreateChangeSet), "a change set was created before the approval")
	assert.NotContains(t, w.stack(appStack).Template, "s3:PutObject")

	a, err := store.Approval(context.Background(), key)
	require.NoError(t, err)
	assert.Equal(t, pipeline.ApprovalPending, a.Status)
	assert.Equal(t, []string{"FunctionRole: added-action: s3:PutObject", "FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*"}, a.Widening)
	assert.Equal(t, "SourceArtifact::infrastructure/lambda.yml", a.TemplatePath)
	assert.NotEmpty(t, a.BaseSHA256, "the widening is against the deployed template")

	decided, err := store.DecideApproval(context.Background(), key, pipeline.Decision{Approve: true, By: approver, At: w.clock.Now()})
	require.NoError(t, err)
	assert.Equal(t, pipeline.ApprovalApproved, decided.Status)

	final, _ := w.runToEnd(job)
	require.True(t, final.Succeeded, final.FailureMessage)
	assert.Contains(t, final.Summary, "UPDATE_COMPLETE")
	assert.Contains(t, w.stack(appStack).Template, "s3:PutObject")
	assert.Equal(t, created+1, w.cfn.Calls(awsfake.OpCreateChangeSet), "one change set, after the approval")
	w.assertNoSecretsLogged()
}

// A deploy that grants nothing new goes straight through: no approval is asked for.
func TestNonWideningDeployDoesNotWait(t *testing.T) {
	w := newWorld(t)
	w.deployed()
	store := w.approvals()
	w.gated(store)
	// A new build and a narrower role (the log statement's actions, one fewer) widen nothing.
	w.push([]byte(strings.Replace(string(infrastructure.LambdaTemplate), "[logs:CreateLogStream, logs:PutLogEvents]", "[logs:PutLogEvents]", 1)))

	res, invocations := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	require.True(t, res.Succeeded, res.FailureMessage)
	assert.Equal(t, 1, invocations)
	assert.Contains(t, res.Summary, "UPDATE_COMPLETE")
	list, err := store.Approvals(context.Background(), samplePipeline, sampleExecution)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// Nobody decides: once the deadline passes, the next job fails the action, saying so.
func TestExpiredApprovalFailsClearly(t *testing.T) {
	w := newWorld(t)
	w.deployed()
	store := w.approvals()
	w.gated(store).Expiry = 2 * time.Hour
	w.push(uploads(t))

	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	key := appApproval(job)
	_, res := w.run(job)
	require.NotEmpty(t, res.ContinuationToken)
	job = w.next(job, res, time.Hour)
	_, res = w.run(job)
	require.NotEmpty(t, res.ContinuationToken, "still within the deadline")
	job = w.next(job, res, time.Hour)
	_, res = w.run(job)

	require.False(t, res.Succeeded)
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Contains(t, res.FailureMessage, "stack my-lambda-app: approval expired: nobody approved the IAM widening within 2h0m0s")
	assert.Contains(t, res.FailureMessage, "FunctionRole: added-action: s3:PutObject")
	assert.Contains(t, res.FailureMessage, "Retry the stage to ask again")
	assert.Zero(t, w.cfn.Calls(awsfake.OpExecuteChangeSet)-1, "only the first deploy executed")

	// And a late decision is refused.
	_, err := store.DecideApproval(context.Background(), key, pipeline.Decision{Approve: true, By: approver, At: w.clock.Now()})
	assert.ErrorIs(t, err, pipeline.ErrApprovalExpired)
}

// A rejection fails the action with who rejected it and why.
func TestRejectedWideningFailsWithTheReason(t *testing.T) {
	w := newWorld(t)
	w.deployed()
	store := w.approvals()
	w.gated(store)
	w.push(uploads(t))

	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	key := appApproval(job)
	_, res := w.run(job)
	job = w.next(job, res, time.Minute)
	decidedAt := w.clock.Now()
	_, err := store.DecideApproval(context.Background(), key, pipeline.Decision{By: approver, At: decidedAt, Reason: "uploads bucket is not ours"})
	require.NoError(t, err)

	_, res = w.run(job)
	require.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "stack my-lambda-app: the IAM widening was rejected by "+approver+" at "+decidedAt.UTC().Format(time.RFC3339))
	assert.Contains(t, res.FailureMessage, "uploads bucket is not ours")
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet), "only the first deploy executed")
	assert.NotContains(t, w.stack(appStack).Template, "s3:PutObject")

	// Retrying the stage is a new deploy (a new first job): it asks again, and the rejection
	// stays on record.
	retry := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	_, res = w.run(retry)
	require.True(t, res.Succeeded, res.FailureMessage)
	assert.Contains(t, res.Summary, "waits for approval")
	list, err := store.Approvals(context.Background(), samplePipeline, sampleExecution)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, pipeline.ApprovalRejected, list[0].Status)
	assert.Equal(t, pipeline.ApprovalPending, list[1].Status)
}

// A first deploy has no current template: every role it creates is new, so it waits too
// (as CDK Pipelines' security check asks on the first deploy).
func TestFirstCreateWithRolesWaits(t *testing.T) {
	w := newWorld(t)
	store := w.approvals()
	w.gated(store)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	key := appApproval(job)
	_, res := w.run(job)
	require.True(t, res.Succeeded)
	assert.Contains(t, res.Summary, "FunctionRole: new-role")
	assert.Contains(t, res.Summary, "FunctionRole: added-principal: Service:lambda.amazonaws.com")
	_, exists := w.cfn.Stack(appStack)
	assert.False(t, exists, "nothing was created before the approval")

	_, err := store.DecideApproval(context.Background(), key, pipeline.Decision{Approve: true, By: approver, At: w.clock.Now()})
	require.NoError(t, err)
	final, _ := w.runToEnd(w.next(job, res, 30*time.Second))
	require.True(t, final.Succeeded, final.FailureMessage)
	assert.Equal(t, "CREATE_COMPLETE", w.stack(appStack).Status)
}

// The approval vouches for one change only: a job of the same execution that brings another
// template (a forged invocation, say) cannot ride on it.
func TestApprovalCoversOnlyTheTemplateApproved(t *testing.T) {
	w := newWorld(t)
	w.deployed()
	store := w.approvals()
	w.gated(store)
	w.push(uploads(t))
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	key := appApproval(job)
	_, res := w.run(job)
	require.NotEmpty(t, res.ContinuationToken)
	_, err := store.DecideApproval(context.Background(), key, pipeline.Decision{Approve: true, By: approver, At: w.clock.Now()})
	require.NoError(t, err)

	w.push([]byte(strings.Replace(string(uploads(t)), "my-lambda-uploads/*", "my-lambda-other/*", 1)))
	_, res = w.run(w.next(job, res, 30*time.Second))
	require.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "is for another change")
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet))
}

// Approvals are keyed by where CodePipeline says the job runs: UserParameters without
// "pipeline" and "execution" still wait for lp approve of the job's own execution. Without an
// approval store a widening fails (fail closed).
func TestWideningThatCannotBeApprovedFails(t *testing.T) {
	w := newWorld(t)
	w.deployed()
	store := w.approvals()
	w.gated(store)
	w.push(uploads(t))
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	p, err := deploy.ParseUserParameters(job.Data.ActionConfiguration.Configuration.UserParameters)
	require.NoError(t, err)
	job.Data.ActionConfiguration.Configuration.UserParameters = strings.NewReplacer(
		`"pipeline": "`+p.Pipeline+`", `, "", `"execution": "`+p.Execution+`", `, "").Replace(job.Data.ActionConfiguration.Configuration.UserParameters)
	_, res := w.run(job)
	require.NotEmpty(t, res.ContinuationToken, "the widening waits: %+v", res)
	assert.Contains(t, res.Summary, "lp approve")
	_, err = store.DecideApproval(context.Background(), appApproval(job), pipeline.Decision{Approve: false, By: approver, At: w.clock.Now(), Reason: "no"})
	require.NoError(t, err, "the approval is keyed by the job's pipeline and execution")

	w.gated(nil)
	_, res = w.run(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Contains(t, res.FailureMessage, "no approval store")
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet))
}
