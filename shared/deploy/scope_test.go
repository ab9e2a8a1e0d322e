package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// cfnCalls counts the requests that reached CloudFormation, of every operation.
func (w *world) cfnCalls() int {
	n := 0
	for _, op := range []string{awsfake.OpCreateChangeSet, awsfake.OpDescribeChangeSet, awsfake.OpExecuteChangeSet, awsfake.OpDeleteChangeSet,
		awsfake.OpDescribeStacks, awsfake.OpDeleteStack, awsfake.OpContinueUpdateRollback, awsfake.OpGetTemplateSummary,
		awsfake.OpGetTemplate, awsfake.OpDescribeStackEvents} {
		n += w.cfn.Calls(op)
	}
	return n
}

// rewrite replaces old by new in the job's UserParameters.
func rewrite(t *testing.T, job *events.CodePipelineJob, old, new string) {
	t.Helper()
	up := &job.Data.ActionConfiguration.Configuration.UserParameters
	require.Contains(t, *up, old)
	*up = strings.Replace(*up, old, new, 1)
}

// A pusher of project a writes infrastructure/pipeline.yml, and so the UserParameters of a's
// deploy actions; naming project b's stack there must not deploy over it. Where the job runs
// is CodePipeline's word (GetJobDetails), not the pusher's: the job fails at once, naming
// both, before the artifact is read or CloudFormation is asked anything.
func TestJobOfOnePipelineCannotDeployAnotherProjectsStack(t *testing.T) {
	w := newWorld(t)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	w.jobs.Register(job.ID, awsfake.JobContext{Pipeline: "a-pipeline", ExecutionID: sampleExecution, Stage: "CreateUpdateLambda", Action: "DeployFunction"})
	rewrite(t, &job, `"stackName": "my-lambda-app"`, `"stackName": "b-app"`)
	rewrite(t, &job, `"pipeline": "my-lambda-pipeline"`, `"pipeline": "a-pipeline"`)

	rep, res := w.run(job)
	require.False(t, res.Succeeded)
	assert.Equal(t, deploy.JobFailed, rep.Result)
	assert.Equal(t, "JobFailed", res.FailureType)
	for _, s := range []string{"stack b-app", "pipeline a-pipeline", "action DeployFunction", "a-pipeline and a-app", "nothing was deployed"} {
		assert.Contains(t, res.FailureMessage, s)
	}
	assert.Empty(t, res.ExternalExecutionID, "the failure names b-app as the action's stack")
	assert.Zero(t, w.cfnCalls(), "CloudFormation was called")
	assert.Empty(t, w.s3.auth, "the artifact was read")
	_, exists := w.cfn.Stack("b-app")
	assert.False(t, exists)
}

// The project's name is a prefix of another's: pipeline a-pipeline is project a's, and
// a-pipeline-app is project a-pipeline's stack.
func TestJobContextScope(t *testing.T) {
	jc := deploy.JobContext{Pipeline: "a-pipeline", Execution: sampleExecution}
	for stack, ok := range map[string]bool{"a-pipeline": true, "a-app": true, "b-app": false, "b-pipeline": false,
		"a-pipeline-app": false, "a-pipeline-pipeline": false, "a": false, "lambda-pipeline-control": false} {
		msg := jc.Scope(deploy.UserParameters{StackName: stack})
		assert.Equal(t, ok, msg == "", "stack %s: %q", stack, msg)
	}
	assert.NotEmpty(t, deploy.JobContext{Pipeline: "legacy", Execution: sampleExecution}.Scope(deploy.UserParameters{StackName: "legacy-app"}),
		"a pipeline that is not a project's deploys nothing")
	assert.Empty(t, jc.Scope(deploy.UserParameters{StackName: "a-app", Pipeline: "a-pipeline", Execution: sampleExecution}))
	assert.Contains(t, jc.Scope(deploy.UserParameters{StackName: "a-app", Pipeline: "b-pipeline"}), "UserParameters name pipeline b-pipeline")
}

// The approval of an IAM widening is keyed by pipeline and execution: a job whose
// UserParameters name another execution (or pipeline), to ride on that run's approval or to
// make a waiting request appear in it, fails before anything is deployed or asked.
func TestJobNamingAnotherExecutionOrPipelineFails(t *testing.T) {
	for name, forge := range map[string][2]string{
		"execution": {`"execution": "` + sampleExecution + `"`, `"execution": "0b6e1d2c-1111-4222-8333-944455566677"`},
		"pipeline":  {`"pipeline": "my-lambda-pipeline"`, `"pipeline": "other-pipeline"`},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.deployed()
			store := w.approvals()
			w.gated(store)
			w.push(uploads(t))
			before := w.cfnCalls()
			job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
			rewrite(t, &job, forge[0], forge[1])
			_, res := w.run(job)
			require.False(t, res.Succeeded)
			assert.Equal(t, "JobFailed", res.FailureType)
			assert.Contains(t, res.FailureMessage, "UserParameters name "+name)
			assert.Contains(t, res.FailureMessage, "pipeline my-lambda-pipeline")
			assert.Equal(t, before, w.cfnCalls(), "CloudFormation was called")
		})
	}
}

// The control plane's custom resource (not a CodePipeline job: nothing to scope) creates the
// project's pipeline stack; the sample jobs, which name their own pipeline and execution,
// deploy as before; so do jobs whose UserParameters omit them.
func TestJobOfItsOwnProjectDeploys(t *testing.T) {
	w := newWorld(t)
	cr := w.customResource()
	_, reply := cr.handle(t, cr.event("Create", nil))
	require.Equal(t, "SUCCESS", reply.Status, reply.Reason)
	assert.Zero(t, w.jobs.Calls(awsfake.OpGetJobDetails), "the custom resource asked CodePipeline about a job")

	res, _ := w.runToEnd(w.job("job-create-update-pipeline.json", ""))
	require.True(t, res.Succeeded, "%+v", res)
	assert.Equal(t, pipelineStack, res.ExternalExecutionID)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	rewrite(t, &job, `"pipeline": "my-lambda-pipeline", `, "")
	rewrite(t, &job, `"execution": "`+sampleExecution+`", `, "")
	res, _ = w.runToEnd(job)
	require.True(t, res.Succeeded, "%+v", res)
	assert.Equal(t, appStack, res.ExternalExecutionID)
	assert.GreaterOrEqual(t, w.jobs.Calls(awsfake.OpGetJobDetails), 2)
}

// CodePipeline not answering where the job runs is like CloudFormation not answering: the job
// continues and the next one asks again, MaxTransientContinuations times in a row at most.
func TestGetJobDetailsThrottledContinues(t *testing.T) {
	w := newWorld(t)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	// The SDK's three attempts, all throttled.
	w.jobs.FailNext(awsfake.OpGetJobDetails, awsfake.Throttling, 3)
	_, res := w.run(job)
	require.True(t, res.Succeeded, "%+v", res)
	require.NotEmpty(t, res.ContinuationToken)
	assert.Contains(t, res.Summary, "CodePipeline did not say where the job runs (Rate exceeded)")
	assert.Zero(t, w.cfnCalls())
	final, _ := w.runToEnd(w.next(job, res, 30*time.Second))
	require.True(t, final.Succeeded, "%+v", final)
	assert.Equal(t, appStack, final.ExternalExecutionID)

	// Throttled every time: the job gives up after MaxTransientContinuations continuations.
	w2 := newWorld(t)
	w2.jobs.FailNext(awsfake.OpGetJobDetails, awsfake.Throttling, 3*(deploy.MaxTransientContinuations+1))
	final, n := w2.runToEnd(w2.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	assert.False(t, final.Succeeded)
	assert.Equal(t, deploy.MaxTransientContinuations+1, n)
	assert.Contains(t, final.FailureMessage, "GetJobDetails")
	assert.Zero(t, w2.cfnCalls())
}

// A job CodePipeline does not know (JobNotFoundException) or will not describe (access denied)
// deploys nothing.
func TestGetJobDetailsRefusedFails(t *testing.T) {
	w := newWorld(t)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	job.ID = w.jobID() // not registered
	_, res := w.run(job)
	require.False(t, res.Succeeded)
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Contains(t, res.FailureMessage, "JobNotFoundException")

	w.jobs.FailNext(awsfake.OpGetJobDetails, awsfake.Error{Code: "AccessDeniedException", Status: 400,
		Message: "User: arn:aws:sts::123456789012:assumed-role/deployer/x is not authorized to perform: codepipeline:GetJobDetails"}, 1)
	_, res = w.run(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	assert.Equal(t, "PermissionError", res.FailureType)
	assert.Zero(t, w.cfnCalls())
}
