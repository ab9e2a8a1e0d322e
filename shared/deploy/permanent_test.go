package deploy_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// Permanent CloudFormation errors fail the deploy at once, with CloudFormation's own message;
// only the deploy's own stack being absent, or busy, means "look again" (issue 9, defect 1).

func validationError(msg string) awsfake.Error {
	return awsfake.Error{Code: "ValidationError", Status: http.StatusBadRequest, Message: msg}
}

// always is more failures than any scenario makes calls: the error does not go away.
const always = 10000

func TestJobFailsAtOnceWhenAParameterValueDoesNotExist(t *testing.T) {
	w := newWorld(t)
	const msg = "Parameter validation failed: parameter value my-key for parameter name KeyName does not exist"
	w.cfn.FailNext(awsfake.OpCreateChangeSet, validationError(msg), always)

	res, invocations := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	assert.Equal(t, 1, invocations, "no continuation: the error is permanent")
	assert.False(t, res.Succeeded)
	assert.Equal(t, "JobFailed", res.FailureType)
	assert.Contains(t, res.FailureMessage, msg)
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpCreateChangeSet), "asked once, not again and again")
}

func TestJobFailsAtOnceWhenTheRollbackCannotBeContinued(t *testing.T) {
	w := newWorld(t)
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.True(t, res.Succeeded)
	w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: functionFailure,
		RollbackResource: "Alias", RollbackReason: "Resource handler returned message: \"Alias live is in use\""})
	res, _ = w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	require.False(t, res.Succeeded)
	require.Equal(t, "UPDATE_ROLLBACK_FAILED", w.stack(appStack).Status)

	const msg = "Role " + appRoleARN + " is invalid or cannot be assumed"
	w.cfn.FailNext(awsfake.OpContinueUpdateRollback, validationError(msg), always)
	res, invocations := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b3"))
	assert.Equal(t, 1, invocations)
	assert.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, msg)
	assert.Equal(t, "UPDATE_ROLLBACK_FAILED", w.stack(appStack).Status)
}

func TestJobFailsAtOnceWhenAFailedCreateCannotBeDeleted(t *testing.T) {
	w := newWorld(t)
	w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: functionFailure})
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.False(t, res.Succeeded)
	require.Equal(t, "ROLLBACK_COMPLETE", w.stack(appStack).Status)
	w.cfn.ProtectFromDeletion(appStack)

	res, invocations := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b2"))
	assert.Equal(t, 1, invocations)
	assert.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "Stack [my-lambda-app] cannot be deleted while TerminationProtection is enabled")
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpDeleteStack))
}

func TestCustomResourceDeleteFailsAtOnceOnTerminationProtection(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	_, body := h.handle(t, h.event("Create", nil))
	require.Equal(t, "SUCCESS", body.Status)
	w.cfn.ProtectFromDeletion(pipelineStack)

	_, body = h.handle(t, h.event("Delete", nil))
	assert.Equal(t, "FAILED", body.Status)
	assert.Contains(t, body.Reason, "Stack [my-lambda-pipeline] cannot be deleted while TerminationProtection is enabled")
	assert.NotContains(t, body.Reason, "stopped waiting")
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpDeleteStack))
}

// Which CreateChangeSet refusals mean "observe again" and which end the deploy.
func TestStepTellsRacesFromPermanentRefusals(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want deploy.Status
	}{
		{"Stack [my-lambda-app] does not exist", deploy.StatusInProgress},
		{"Stack with id my-lambda-app does not exist", deploy.StatusInProgress},
		{"Stack:arn:aws:cloudformation:eu-west-1:123456789012:stack/my-lambda-app/5fa1c000 is in UPDATE_IN_PROGRESS state and can not be updated.", deploy.StatusInProgress},
		{"Stack [my-lambda-app] already exists and cannot be created again with the changeSet [lp-t].", deploy.StatusInProgress},
		{"Stack [some-other-stack] does not exist", deploy.StatusFailed},
		{"Parameter validation failed: parameter value my-key for parameter name KeyName does not exist", deploy.StatusFailed},
		{"No export named my-vpc-id found. Rollback requested by user.", deploy.StatusFailed},
		{"Template format error: Unresolved resource dependencies [Nope] in the Resources block of the template", deploy.StatusFailed},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			w := newWorld(t)
			w.cfn.FailNext(awsfake.OpCreateChangeSet, validationError(tc.msg), 1)
			out, err := w.engine.Step(context.Background(), appRequest("t", "k"))
			require.NoError(t, err)
			assert.Equal(t, tc.want, out.Status, out.Reason)
			if tc.want == deploy.StatusFailed {
				assert.Contains(t, out.Reason, tc.msg)
			}
		})
	}
}

// A throttle that outlasts the SDK's and the poller's retries is not the deploy's failure:
// the job continues, and the next job finishes the deploy.
func TestJobThrottledPastEveryRetryContinues(t *testing.T) {
	w := newWorld(t)
	// 3 attempts per call (the SDK) × 3 steps in a row (the poller).
	w.cfn.FailNext(awsfake.OpDescribeStacks, awsfake.QueryThrottling, 9)
	job := w.appJob("my-lambda-pipeline/BuildOutpu/b1")
	_, first := w.run(job)
	assert.True(t, first.Succeeded, "continued, not failed: %s", first.FailureMessage)
	require.NotEmpty(t, first.ContinuationToken)
	assert.Contains(t, first.Summary, "Rate exceeded")

	next := job
	next.ID, next.Data.ContinuationToken = first.NextJobID, first.ContinuationToken
	res, _ := w.runToEnd(next)
	assert.True(t, res.Succeeded, res.FailureMessage)
	assert.Equal(t, "CREATE_COMPLETE", w.stack(appStack).Status)
}

// A throttle that never ends fails the job after a few continuations, instead of holding the
// stage until CodePipeline's own limit.
func TestJobThrottledForeverFailsAfterAFewContinuations(t *testing.T) {
	w := newWorld(t)
	w.cfn.FailNext(awsfake.OpDescribeStacks, awsfake.QueryThrottling, always)
	res, invocations := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	assert.False(t, res.Succeeded)
	assert.Equal(t, deploy.MaxTransientContinuations+1, invocations)
	assert.Contains(t, res.FailureMessage, "Rate exceeded")
}
