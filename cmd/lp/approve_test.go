package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

const (
	approvalPipeline  = "my-lambda-pipeline"
	approvalExecution = "3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11"
)

// fakeSTS answers sts:GetCallerIdentity (awsQuery, XML) as arn, counting the calls.
func fakeSTS(t *testing.T, arn string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("Action") != "GetCallerIdentity" || !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, arn)
	}))
	t.Cleanup(srv.Close)
	return srv
}

type approvalWorld struct {
	t     *testing.T
	store *runstore.Dynamo
	db    []string
	env   map[string]string
}

// newApprovalWorld is a runs table in dynalite holding a run of the execution, whose app
// deploy asked for approval (as the deployer asks: runstore.Dynamo.RequestApproval), and an
// STS that says the caller is arn.
func newApprovalWorld(t *testing.T, arn string) *approvalWorld {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	srv := dynalitetest.Start(t)
	table := dynalitetest.UniqueTableName(t)
	w := &approvalWorld{t: t, db: []string{"--endpoint", srv.Endpoint(), "--table", table},
		env: map[string]string{"AWS_ENDPOINT_URL_STS": fakeSTS(t, arn).URL}}
	w.store = runstore.NewDynamo(srv.Client(t), table, pipeline.SystemClock{})
	require.NoError(t, w.store.EnsureTable(context.Background()))
	now := time.Now()
	_, err := w.store.Append(context.Background(), pipeline.Event{ID: "ev-1", Time: now.Add(-time.Hour), Level: pipeline.LevelPipeline,
		Pipeline: approvalPipeline, ExecutionID: approvalExecution, State: pipeline.StateStarted, Attempt: 1})
	require.NoError(t, err)
	w.ask("my-lambda-app", now.Add(19*time.Hour))
	return w
}

func (w *approvalWorld) ask(stack string, deadline time.Time) {
	w.t.Helper()
	_, err := w.store.RequestApproval(context.Background(), pipeline.Approval{
		Key:    pipeline.ApprovalKey{Pipeline: approvalPipeline, ExecutionID: approvalExecution, Stack: stack, Deploy: "job-" + stack},
		Status: pipeline.ApprovalPending, TemplatePath: "SourceArtifact::infrastructure/lambda.yml", TemplateSHA256: "0123456789abcdef0123",
		Widening:    []string{"FunctionRole: added-action: s3:PutObject", "FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*"},
		RequestedAt: deadline.Add(-20 * time.Hour), Deadline: deadline,
	})
	require.NoError(w.t, err)
}

func (w *approvalWorld) lp(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	status := run(context.Background(), append(args[:1:1], append(w.db, args[1:]...)...), &out, &errb, func(k string) string { return w.env[k] })
	return out.String(), errb.String(), status
}

// lp approve finds the execution's pending deploy through its run, records the decision with
// the caller's ARN, and shows the widening; a second decision is refused.
func TestApproveRecordsWhoAndWhen(t *testing.T) {
	const alice = "arn:aws:iam::123456789012:user/alice"
	w := newApprovalWorld(t, alice)

	stdout, stderr, status := w.lp("show", approvalExecution)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "approval  my-lambda-app: PENDING until")
	assert.Contains(t, stdout, "lp approve --deploy-stack my-lambda-app "+approvalExecution)
	assert.Contains(t, stdout, "  + FunctionRole: added-action: s3:PutObject")

	stdout, stderr, status = w.lp("approve", approvalExecution)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "approved the deploy of stack my-lambda-app in my-lambda-pipeline "+approvalExecution+", as "+alice)
	assert.Contains(t, stdout, "  + FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*")

	a, err := w.store.Approval(context.Background(), pipeline.ApprovalKey{Pipeline: approvalPipeline, ExecutionID: approvalExecution, Stack: "my-lambda-app", Deploy: "job-my-lambda-app"})
	require.NoError(t, err)
	assert.Equal(t, pipeline.ApprovalApproved, a.Status)
	assert.Equal(t, alice, a.DecidedBy)
	assert.WithinDuration(t, time.Now(), a.DecidedAt, time.Minute)

	_, stderr, status = w.lp("reject", "--reason", "too late", approvalExecution)
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "nothing waits for a decision (my-lambda-app APPROVED)")

	stdout, _, status = w.lp("show", approvalExecution)
	require.Equal(t, 0, status)
	assert.Contains(t, stdout, "approval  my-lambda-app: APPROVED by "+alice)
}

// lp reject records the reason; with --json it prints the decided approval.
func TestRejectWithReason(t *testing.T) {
	const bob = "arn:aws:sts::123456789012:assumed-role/Admin/bob"
	w := newApprovalWorld(t, bob)
	stdout, stderr, status := w.lp("reject", "--pipeline", approvalPipeline, "--reason", "uploads bucket is not ours", "--json", approvalExecution)
	require.Equal(t, 0, status, stderr)
	var a pipeline.Approval
	require.NoError(t, json.Unmarshal([]byte(stdout), &a))
	assert.Equal(t, pipeline.ApprovalRejected, a.Status)
	assert.Equal(t, bob, a.DecidedBy)
	assert.Equal(t, "uploads bucket is not ours", a.Reason)
}

// lp reject ID --reason "…", the form the deployer's waiting message and docs/security.md
// print: flags after the execution id are flags, not more operands.
func TestRejectAsTheWaitingMessageWritesIt(t *testing.T) {
	const bob = "arn:aws:sts::123456789012:assumed-role/Admin/bob"
	w := newApprovalWorld(t, bob)
	stdout, stderr, status := w.lp("reject", approvalExecution, "--reason", "uploads bucket is not ours", "--pipeline", approvalPipeline, "--json")
	require.Equal(t, 0, status, stderr)
	var a pipeline.Approval
	require.NoError(t, json.Unmarshal([]byte(stdout), &a))
	assert.Equal(t, pipeline.ApprovalRejected, a.Status)
	assert.Equal(t, "uploads bucket is not ours", a.Reason)
}

// Two deploys waiting need --stack; an expired one cannot be decided; an execution without
// approvals says so.
func TestApproveChoosesAndRefuses(t *testing.T) {
	w := newApprovalWorld(t, "arn:aws:iam::123456789012:user/alice")
	w.ask("my-lambda-pipeline", time.Now().Add(time.Hour))
	_, stderr, status := w.lp("approve", approvalExecution)
	assert.Equal(t, 2, status)
	assert.Contains(t, stderr, "2 deploys waiting (my-lambda-app, my-lambda-pipeline): choose one with --deploy-stack")

	_, stderr, status = w.lp("approve", "--deploy-stack", "my-lambda-pipeline", approvalExecution)
	require.Equal(t, 0, status, stderr)

	w2 := newApprovalWorld(t, "arn:aws:iam::123456789012:user/alice")
	_, err := w2.store.DecideApproval(context.Background(), pipeline.ApprovalKey{Pipeline: approvalPipeline, ExecutionID: approvalExecution, Stack: "my-lambda-app", Deploy: "job-my-lambda-app"},
		pipeline.Decision{Approve: false, By: "x", At: time.Now()})
	require.NoError(t, err)
	w2.ask("my-lambda-pipeline", time.Now().Add(-time.Minute))
	_, stderr, status = w2.lp("approve", approvalExecution)
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "my-lambda-app REJECTED; my-lambda-pipeline EXPIRED")

	_, stderr, status = w2.lp("approve", "--pipeline", approvalPipeline, "00000000-0000-4000-8000-000000000000")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "no approval request")

	_, _, status = w2.lp("approve")
	assert.Equal(t, 2, status)
}
