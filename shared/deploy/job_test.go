package deploy_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

const functionFailure = `Resource handler returned message: "Unzipped size must be smaller than 262144000 bytes (Service: Lambda, Status Code: 400)"`

func TestFirstDeployCreatesTheStack(t *testing.T) {
	w := newWorld(t)
	w.cfn.SetOutputs(appStack, map[string]string{"FunctionName": "my-lambda_function"})
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	res, invocations := w.runToEnd(job)

	assert.Equal(t, 1, invocations, "a quick deploy ends within one invocation")
	assert.True(t, res.Succeeded)
	assert.Equal(t, appStack, res.ExternalExecutionID, "the notifier reads the stack from externalExecutionId")
	assert.Contains(t, res.Summary, "CREATE_COMPLETE")
	assert.Contains(t, res.Summary, "lp-"+job.ID)
	assert.Equal(t, "my-lambda_function", res.OutputVariables["FunctionName"], "stack outputs become output variables")

	st := w.stack(appStack)
	assert.Equal(t, "CREATE_COMPLETE", st.Status)
	assert.Equal(t, map[string]string{
		"ArtifactsBucket": bucket, "ArtifactKey": "my-lambda-pipeline/BuildOutpu/b1", "FunctionName": "my-lambda_function",
		"AliasName": "live", "LogRetentionDays": "30", "ProjectName": "my-lambda", "PermissionsBoundaryArn": noBoundary,
	}, st.Parameters)
	assert.Equal(t, appRoleARN, st.RoleARN)
	assert.Equal(t, []string{"CAPABILITY_IAM"}, st.Capabilities)
	require.Len(t, st.ChangeSets, 1)
	cs := st.ChangeSets[0]
	assert.Equal(t, "lp-"+job.ID, cs.Name)
	assert.Equal(t, "CREATE", cs.Type)
	assert.Equal(t, "lp-"+job.ID, cs.ClientToken)
	assert.Equal(t, "lp-"+job.ID+"-execute", cs.ExecuteClientRequestToken)
	w.assertNoSecretsLogged()

	// The artifact was read with the job's credentials, not the function's.
	require.NotEmpty(t, w.s3.auth)
	assert.Contains(t, w.s3.auth[0], "Credential="+accessKey+"/")
	assert.Equal(t, sessionToken, w.s3.tok[0])
}

func TestSecondDeployWithoutChangesSucceedsWithNoChanges(t *testing.T) {
	w := newWorld(t)
	first, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.True(t, first.Succeeded)

	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	res, _ := w.runToEnd(job)
	assert.True(t, res.Succeeded)
	assert.Contains(t, res.Summary, "no changes")
	assert.Equal(t, appStack, res.ExternalExecutionID)
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet), "nothing to execute the second time")
	for _, cs := range w.stack(appStack).ChangeSets {
		assert.NotEqual(t, "lp-"+job.ID, cs.Name, "the empty change set is deleted")
	}
}

func TestFailedCreateIsDeletedAndCreatedAgainByTheNextJob(t *testing.T) {
	w := newWorld(t)
	w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: functionFailure})

	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.False(t, res.Succeeded)
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Equal(t, appStack, res.ExternalExecutionID)
	assert.Contains(t, res.FailureMessage, "ROLLBACK_COMPLETE")
	assert.Contains(t, res.FailureMessage, "Function (AWS::Lambda::Function) CREATE_FAILED: "+functionFailure)
	failed := w.stack(appStack)
	assert.Equal(t, "ROLLBACK_COMPLETE", failed.Status)

	res, _ = w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	assert.True(t, res.Succeeded, res.FailureMessage)
	st := w.stack(appStack)
	assert.Equal(t, "CREATE_COMPLETE", st.Status)
	assert.NotEqual(t, failed.StackID, st.StackID, "a new stack replaced the failed one")
	gone, ok := w.cfn.Stack(failed.StackID)
	assert.True(t, ok && gone.Deleted && gone.Status == "DELETE_COMPLETE", "the failed stack was deleted: %+v", gone)
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpDeleteStack))
}

func TestFailingUpdateReportsTheRootCauseNotTheNoise(t *testing.T) {
	w := newWorld(t)
	// A resource that the update changes beside the function, and that takes longer: when the
	// function fails, CloudFormation cancels it (the noise).
	w.putSource(sourceKey, map[string][]byte{
		"infrastructure/lambda.yml": []byte(strings.Replace(string(infrastructure.LambdaTemplate), "\nOutputs:", `
  DeployMarker:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      Description: !Sub "deployed ${ArtifactKey}"
      PolicyDocument: { Version: "2012-10-17", Statement: [] }
`+"\nOutputs:", 1)),
	})
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.True(t, res.Succeeded)

	w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: functionFailure})
	res, _ = w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	require.False(t, res.Succeeded)
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Equal(t, appStack, res.ExternalExecutionID)
	assert.True(t, strings.HasPrefix(res.FailureMessage, "stack my-lambda-app is UPDATE_ROLLBACK_COMPLETE. Root cause: Function (AWS::Lambda::Function) UPDATE_FAILED: "+functionFailure),
		res.FailureMessage)
	assert.NotContains(t, res.FailureMessage, awsfake.ResourceUpdateCancelled)
	assert.Contains(t, res.FailureMessage, "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/events?stackId=")
	assert.Equal(t, "UPDATE_ROLLBACK_COMPLETE", w.stack(appStack).Status)
	// The events do hold the noise the message skipped.
	noise := 0
	for _, ev := range w.cfn.Events(appStack) {
		if ev.Reason == awsfake.ResourceUpdateCancelled {
			noise++
		}
	}
	assert.Positive(t, noise)
	w.assertNoSecretsLogged()
}

func TestUpdateRollbackFailedIsContinuedThenUpdated(t *testing.T) {
	w := newWorld(t)
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.True(t, res.Succeeded)
	w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: functionFailure,
		RollbackResource: "Alias", RollbackReason: "Resource handler returned message: \"Alias live is in use\""})
	res, _ = w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	require.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "UPDATE_ROLLBACK_FAILED")
	assert.Contains(t, res.FailureMessage, "Root cause: Function (AWS::Lambda::Function) UPDATE_FAILED: "+functionFailure, "the update's failure is the root cause")
	assert.Contains(t, res.FailureMessage, "Then: Alias (AWS::Lambda::Alias) UPDATE_FAILED: Resource handler returned message: \"Alias live is in use\"", "and the rollback's failure follows")
	require.Equal(t, "UPDATE_ROLLBACK_FAILED", w.stack(appStack).Status)

	job := w.appJob("my-lambda-pipeline/BuildOutpu/b3")
	res, _ = w.runToEnd(job)
	assert.True(t, res.Succeeded, res.FailureMessage)
	st := w.stack(appStack)
	assert.Equal(t, "UPDATE_COMPLETE", st.Status)
	assert.Equal(t, "my-lambda-pipeline/BuildOutpu/b3", st.Parameters["ArtifactKey"])
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpContinueUpdateRollback))
	var continued bool
	for _, ev := range w.cfn.Events(appStack) {
		continued = continued || ev.ClientRequestToken == "lp-"+job.ID+"-continue"
	}
	assert.True(t, continued, "the continued rollback carries the job's token")
}

func TestRollbackThatFailsAgainFailsTheJob(t *testing.T) {
	w := newWorld(t)
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.True(t, res.Succeeded)
	w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: functionFailure, RollbackResource: "Alias", RollbackReason: "still in use"})
	res, _ = w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	require.False(t, res.Succeeded)
	w.cfn.FailNextContinue(appStack, "Alias", "Alias live is still in use")

	res, _ = w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b3"))
	require.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "failed again")
	assert.Contains(t, res.FailureMessage, "Alias live is still in use")
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpContinueUpdateRollback), "continued once, not in a loop")
}

func TestContinuationTokensRoundTrip(t *testing.T) {
	w := newWorld(t)
	// No time for a second step in one invocation: every step ends with a continuation.
	w.handler.Poll.Budget = 1
	first := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	res, invocations := w.runToEnd(first)
	require.True(t, res.Succeeded, res.FailureMessage)
	assert.Greater(t, invocations, 2)

	results := w.jobs.Results()
	require.Len(t, results, invocations)
	for i, r := range results[:len(results)-1] {
		assert.LessOrEqual(t, len(r.ContinuationToken), awsfake.MaxContinuationToken)
		assert.Equal(t, appStack, r.ExternalExecutionID, "invocation %d", i)
		var tok map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.ContinuationToken), &tok), r.ContinuationToken)
		assert.Equal(t, "lp-"+first.ID, tok["changeSet"], "every continuation carries the first job's change set")
		assert.Equal(t, first.ID, tok["token"])
		assert.NotEmpty(t, r.Summary)
	}
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpCreateChangeSet))
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet))
	st := w.stack(appStack)
	require.Len(t, st.ChangeSets, 1)
	assert.Equal(t, "lp-"+first.ID, st.ChangeSets[0].Name)
}

func TestReinvokedJobNeverCreatesASecondChangeSet(t *testing.T) {
	w := newWorld(t)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	// The first invocation deploys but cannot report (CodePipeline fails): Lambda retries it.
	w.jobs.FailNext(awsfake.OpPutJobSuccessResult, awsfake.InternalFailure, 3)
	_, err := w.handler.Handle(context.Background(), job)
	require.Error(t, err, "an unreported result is an error, so that Lambda retries")

	rep, res := w.run(job)
	assert.Equal(t, deploy.JobSucceeded, rep.Result)
	assert.True(t, res.Succeeded)
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpCreateChangeSet))
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet))
	assert.Len(t, w.stack(appStack).ChangeSets, 1)
}

func TestBadUserParametersAreAConfigurationError(t *testing.T) {
	w := newWorld(t)
	job := w.appJob("k")
	job.Data.ActionConfiguration.Configuration.UserParameters = `{"stackName": "my-lambda-app", "templatePath": "SourceArtifact::infrastructure/lambda.yml", "capabilites": ["CAPABILITY_IAM"]}`
	rep, res := w.run(job)
	assert.Equal(t, deploy.JobFailed, rep.Result)
	assert.Equal(t, "ConfigurationError", res.FailureType)
	assert.Contains(t, res.FailureMessage, `unknown key "capabilites"`)
	assert.Zero(t, w.cfn.Calls(awsfake.OpDescribeStacks), "nothing deployed")
}

func TestConfigurationErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		params string
		want   string
	}{
		"template not in the artifact": {`{"stackName": "my-lambda-app", "templatePath": "SourceArtifact::infra/lambda.yml", "capabilities": ["CAPABILITY_IAM"]}`,
			"the artifact has no file infra/lambda.yml"},
		"artifact not an input": {`{"stackName": "my-lambda-app", "templatePath": "Other::infrastructure/lambda.yml"}`,
			`"Other" is not an input artifact of this action (inputs: SourceArtifact, BuildOutput)`},
		"parameters without a value": {`{"stackName": "my-lambda-app", "templatePath": "SourceArtifact::infrastructure/lambda.yml", "capabilities": ["CAPABILITY_IAM"]}`,
			"template parameters ArtifactKey, ArtifactsBucket have no value"},
		"override the template lacks": {`{"stackName": "my-lambda-app", "templatePath": "SourceArtifact::infrastructure/lambda.yml", "capabilities": ["CAPABILITY_IAM"], "parameterOverrides": {"Nope": "x"}}`,
			"parameter overrides Nope: the template does not declare them"},
		"missing capability": {`{"stackName": "my-lambda-app", "templatePath": "SourceArtifact::infrastructure/lambda.yml", "parameterOverrides": {"ArtifactsBucket": "b", "ArtifactKey": "k"}}`,
			"Requires capabilities : [CAPABILITY_IAM]"},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			job := w.appJob("k")
			job.Data.ActionConfiguration.Configuration.UserParameters = tc.params
			_, res := w.run(job)
			assert.Equal(t, "ConfigurationError", res.FailureType)
			assert.Contains(t, res.FailureMessage, tc.want)
			assert.Equal(t, appStack, res.ExternalExecutionID)
			assert.Zero(t, w.cfn.Calls(awsfake.OpExecuteChangeSet))
		})
	}
}

func TestArtifactAccessDeniedIsAPermissionError(t *testing.T) {
	w := newWorld(t)
	w.s3.deny["/"+bucket+"/"+sourceKey] = true
	_, res := w.run(w.appJob("k"))
	assert.Equal(t, "PermissionError", res.FailureType)
	assert.Contains(t, res.FailureMessage, "AccessDenied")
	w.assertNoSecretsLogged()
}

func TestCancelledJobIsDropped(t *testing.T) {
	w := newWorld(t)
	job := w.job("job-create-update-pipeline.json", "")
	w.cfn.FailNextDeploy(pipelineStack, awsfake.DeployFailure{Resource: "Pipeline", Reason: "boom"}) // any outcome will do
	// The self-update restarted the execution: CodePipeline refuses the cancelled job's result.
	w.jobs.Cancel(job.ID)
	rep, err := w.handler.Handle(context.Background(), job)
	require.NoError(t, err, "a job that takes no result is dropped, not retried")
	assert.Equal(t, deploy.JobDropped, rep.Result)
	assert.Contains(t, w.logs.String(), "dropped")
	assert.Empty(t, w.jobs.Results())
}

func TestPipelineSelfUpdateKeepsPreviousParameterValues(t *testing.T) {
	w := newWorld(t)
	// The pipeline stack as the custom resource created it, with every parameter set.
	cr := w.customResource()
	_, reply := cr.handle(t, cr.event("Create", nil))
	require.Equal(t, "SUCCESS", reply.Status, reply.Reason)

	// SelfUpdate overrides nothing: each parameter keeps its value (pipeline.yml has no
	// defaults). Same template, same values: nothing to change.
	res, _ := w.runToEnd(w.job("job-create-update-pipeline.json", ""))
	assert.True(t, res.Succeeded, res.FailureMessage)
	assert.Contains(t, res.Summary, "no changes")
	assert.Equal(t, pipelineStack, res.ExternalExecutionID)
	assert.Equal(t, "main", w.stack(pipelineStack).Parameters["TrackedBranch"])
}

func TestGarbledContinuationTokenFailsTheJob(t *testing.T) {
	w := newWorld(t)
	job := w.appJob("k")
	job.Data.ContinuationToken = `{"v":1,"stack":"my-lambda-app","token":"abc","changeSet":"lp-other"}`
	_, res := w.run(job)
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Contains(t, res.FailureMessage, "continuation token")
	assert.Zero(t, w.cfn.Calls(awsfake.OpCreateChangeSet))
}
