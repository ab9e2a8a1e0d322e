package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

func appRequest(token, key string) deploy.Request {
	return deploy.Request{StackName: appStack, TemplateBody: string(infrastructure.LambdaTemplate),
		Parameters: map[string]string{"ArtifactsBucket": bucket, "ArtifactKey": key}, Capabilities: []string{"CAPABILITY_IAM"},
		RoleARN: appRoleARN, Token: token}
}

// pollInterval is how much simulated time passes between two steps in these tests.
const pollInterval = 5 * time.Second

// step calls Step once, then lets pollInterval pass on the world's clock.
func (w *world) step(req deploy.Request) deploy.Outcome {
	w.t.Helper()
	out, err := w.engine.Step(context.Background(), req)
	require.NoError(w.t, err)
	_ = w.clock.Sleep(context.Background(), pollInterval)
	return out
}

// steps calls Step every pollInterval until the deploy ends, returning the outcomes. With
// forgetful, each step forgets the Progress of the one before.
func (w *world) stepAll(req deploy.Request, forgetful bool) []deploy.Outcome {
	w.t.Helper()
	var outs []deploy.Outcome
	for range 200 {
		out := w.step(req)
		outs = append(outs, out)
		if out.Done() {
			return outs
		}
		if !forgetful {
			req.Progress = out.Progress
		}
	}
	w.t.Fatalf("not done after 200 steps: %+v", outs[len(outs)-1])
	return nil
}

func TestStepsConvergeEvenWhenProgressIsLost(t *testing.T) {
	w := newWorld(t)
	// Every step forgets what the one before did (a Lambda retry of the first invocation): the
	// stack and the change set alone lead it.
	outs := w.stepAll(appRequest("4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702", "k1"), true)
	last := outs[len(outs)-1]
	assert.Equal(t, deploy.StatusDone, last.Status, last.Reason)
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpCreateChangeSet))
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet))
	var phases []deploy.Phase
	for _, o := range outs[:len(outs)-1] {
		phases = append(phases, o.Phase)
	}
	assert.Contains(t, phases, deploy.PhaseCreatingChangeSet)
	assert.Contains(t, phases, deploy.PhaseExecuting)
}

func TestStepWaitsForAnotherOperation(t *testing.T) {
	w := newWorld(t)
	w.stepAll(appRequest("first", "k1"), false)
	// Another deploy is executing its change set...
	other := appRequest("other", "k2")
	for !other.Progress.Executed {
		other.Progress = w.step(other).Progress
	}
	// ...so this one waits, and creates nothing meanwhile.
	out, err := w.engine.Step(context.Background(), appRequest("mine", "k3"))
	require.NoError(t, err)
	assert.Equal(t, deploy.StatusInProgress, out.Status)
	assert.Equal(t, deploy.PhaseWaiting, out.Phase)
	assert.Contains(t, out.Reason, "UPDATE_")
	assert.Equal(t, 2, w.cfn.Calls(awsfake.OpCreateChangeSet))
}

func TestStepCreatesOverAnAbandonedCreateChangeSet(t *testing.T) {
	w := newWorld(t)
	// An earlier deploy created a CREATE change set and never executed it: REVIEW_IN_PROGRESS.
	abandoned := appRequest("abandoned", "k1")
	for range 2 {
		abandoned.Progress = w.step(abandoned).Progress
	}
	require.Equal(t, "REVIEW_IN_PROGRESS", w.stack(appStack).Status)

	outs := w.stepAll(appRequest("next", "k2"), false)
	assert.Equal(t, deploy.StatusDone, outs[len(outs)-1].Status, outs[len(outs)-1].Reason)
	assert.Equal(t, "CREATE_COMPLETE", w.stack(appStack).Status)
}

func TestStepFailsOnStacksItCannotRecover(t *testing.T) {
	for name, script := range map[string]func(t *testing.T, w *world){
		"DELETE_FAILED": func(t *testing.T, w *world) {
			w.stepAll(appRequest("create", "k1"), false)
			w.cfn.FailNextDelete(appStack, "FunctionLogGroup", "log group is protected")
			outs := w.stepsDelete(deploy.DeleteRequest{StackName: appStack, Token: "del"})
			require.Equal(t, deploy.StatusFailed, outs[len(outs)-1].Status)
		},
		"ROLLBACK_FAILED": func(t *testing.T, w *world) {
			w.cfn.FailNextDeploy(appStack, awsfake.DeployFailure{Resource: "Function", Reason: "bad zip", RollbackResource: "FunctionLogGroup", RollbackReason: "log group is protected"})
			w.stepAll(appRequest("create", "k1"), false)
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			script(t, w)
			require.Equal(t, name, w.stack(appStack).Status)
			outs := w.stepAll(appRequest("next", "k2"), false)
			last := outs[len(outs)-1]
			assert.Equal(t, deploy.StatusFailed, last.Status)
			assert.Contains(t, last.Reason, "stack my-lambda-app is "+name)
			assert.Contains(t, last.Reason, "log group is protected")
			assert.Contains(t, last.Reason, "cannot recover it by itself")
			assert.False(t, last.Misconfigured)
		})
	}
}

func (w *world) stepsDelete(req deploy.DeleteRequest) []deploy.Outcome {
	w.t.Helper()
	var outs []deploy.Outcome
	for range 200 {
		out, err := w.engine.StepDelete(context.Background(), req)
		require.NoError(w.t, err)
		_ = w.clock.Sleep(context.Background(), pollInterval)
		outs = append(outs, out)
		if out.Done() {
			return outs
		}
		req.Progress = out.Progress
	}
	w.t.Fatal("delete not done after 200 steps")
	return nil
}

func TestStepDeleteWaitsThenDeletes(t *testing.T) {
	w := newWorld(t)
	outs := w.stepsDelete(deploy.DeleteRequest{StackName: appStack, Token: "del0"})
	assert.Equal(t, deploy.StatusDone, outs[0].Status, "a stack that does not exist is deleted")

	w.stepAll(appRequest("create", "k1"), false)
	update := appRequest("update", "k2")
	for !update.Progress.Executed {
		update.Progress = w.step(update).Progress
	}
	outs = w.stepsDelete(deploy.DeleteRequest{StackName: appStack, Token: "del1", RoleARN: appRoleARN})
	assert.Equal(t, deploy.PhaseWaiting, outs[0].Phase, "the update runs first")
	assert.Equal(t, deploy.StatusDone, outs[len(outs)-1].Status)
	assert.Equal(t, 1, w.cfn.Calls(awsfake.OpDeleteStack))
	_, ok := w.cfn.Stack(appStack)
	assert.False(t, ok)
}

func TestStepReportsARejectedChangeSet(t *testing.T) {
	w := newWorld(t)
	w.cfn.FailNextChangeSet(appStack, "Template error: instance of Fn::GetAtt references undefined resource Nope")
	outs := w.stepAll(appRequest("t", "k"), false)
	last := outs[len(outs)-1]
	assert.Equal(t, deploy.StatusFailed, last.Status)
	assert.Contains(t, last.Reason, "undefined resource Nope")
}

func TestStepRefusesATemplateTooLargeToSendInline(t *testing.T) {
	w := newWorld(t)
	req := appRequest("t", "k")
	req.TemplateBody += "\n# " + strings.Repeat("x", deploy.MaxTemplateBody)
	out, err := w.engine.Step(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, deploy.StatusFailed, out.Status)
	assert.True(t, out.Misconfigured)
	assert.Contains(t, out.Reason, "at most 51200 bytes")
	assert.Zero(t, w.cfn.Calls(awsfake.OpDescribeStacks))
}

func TestStepReturnsErrorsItCannotAnswer(t *testing.T) {
	w := newWorld(t)
	w.cfn.FailNext(awsfake.OpDescribeStacks, awsfake.QueryAccessDeniedFor("cloudformation:DescribeStacks"), 1)
	_, err := w.engine.Step(context.Background(), appRequest("t", "k"))
	require.Error(t, err)
	assert.True(t, deploy.IsPermissionError(err))
}

func TestChangeSetNamesAreValid(t *testing.T) {
	for _, token := range []string{"4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702", "x", strings.Repeat("a", 200), "job/with:odd chars", "-lead"} {
		name := deploy.ChangeSetName(token)
		assert.Regexp(t, `^[a-zA-Z][-a-zA-Z0-9]*$`, name)
		assert.LessOrEqual(t, len(name+"-continue"), 128, token)
		assert.Equal(t, name, deploy.ChangeSetName(token), "deterministic")
	}
	assert.NotEqual(t, deploy.ChangeSetName(strings.Repeat("a", 200)), deploy.ChangeSetName(strings.Repeat("a", 201)))
}

func TestPollerStopsBeforeTheDeadline(t *testing.T) {
	start := time.Now()
	c := &clock{t: start}
	p := deploy.Poller{Clock: c, Sleep: c.Sleep}
	// A Lambda invocation with 15 minutes left: polling stops 60 s (Reserve) before its end.
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(15*time.Minute))
	defer cancel()
	calls := 0
	out, err := p.Run(ctx, deploy.Progress{}, func(context.Context, deploy.Progress) (deploy.Outcome, error) {
		calls++
		return deploy.Outcome{Status: deploy.StatusInProgress, Progress: deploy.Progress{Executed: true}}, nil
	})
	require.NoError(t, err)
	assert.Equal(t, deploy.StatusInProgress, out.Status)
	assert.True(t, out.Progress.Executed, "the last outcome's progress comes back")
	assert.LessOrEqual(t, c.Now().Sub(start), 15*time.Minute-deploy.DefaultReserve)
	assert.Greater(t, c.Now().Sub(start), 15*time.Minute-deploy.DefaultReserve-deploy.DefaultMaxInterval)
	assert.Greater(t, calls, 10)

	// Without a deadline, the budget bounds it.
	c.t = start
	_, err = p.Run(context.Background(), deploy.Progress{}, func(context.Context, deploy.Progress) (deploy.Outcome, error) {
		return deploy.Outcome{Status: deploy.StatusInProgress}, nil
	})
	require.NoError(t, err)
	assert.LessOrEqual(t, c.Now().Sub(start), deploy.DefaultBudget)
}

func TestPollerRetriesErrorsThenGivesUp(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	p := deploy.Poller{Clock: c, Sleep: c.Sleep}
	transient := errors.New("connection reset")
	calls := 0
	out, err := p.Run(context.Background(), deploy.Progress{}, func(context.Context, deploy.Progress) (deploy.Outcome, error) {
		calls++
		if calls < 3 {
			return deploy.Outcome{}, transient
		}
		return deploy.Outcome{Status: deploy.StatusDone}, nil
	})
	require.NoError(t, err, "two errors in a row are retried")
	assert.Equal(t, deploy.StatusDone, out.Status)

	calls = 0
	_, err = p.Run(context.Background(), deploy.Progress{}, func(context.Context, deploy.Progress) (deploy.Outcome, error) {
		calls++
		return deploy.Outcome{}, transient
	})
	assert.ErrorIs(t, err, transient)
	assert.Equal(t, deploy.DefaultMaxErrors, calls)
}

// CloudFormation words "no changes" in two ways; both are a success without changes.
func TestNoChangesInEitherWordingIsSuccess(t *testing.T) {
	for _, reason := range []string{awsfake.NoChangesReason, awsfake.NoUpdatesReason} {
		t.Run(reason, func(t *testing.T) {
			w := newWorld(t)
			w.cfn.SetNoChangesReason(reason)
			w.stepAll(appRequest("first", "k1"), false)
			outs := w.stepAll(appRequest("second", "k1"), false)
			last := outs[len(outs)-1]
			assert.Equal(t, deploy.StatusDone, last.Status, last.Reason)
			assert.True(t, last.NoChanges)
			assert.Equal(t, 1, w.cfn.Calls(awsfake.OpExecuteChangeSet))
		})
	}
}
