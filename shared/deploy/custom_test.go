package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// crHarness runs the PipelineStack custom resource against the world's CloudFormation fake,
// with an httptest server as the presigned ResponseURL.
type crHarness struct {
	w   *world
	cr  *deploy.CustomResource
	url string

	mu      sync.Mutex
	puts    []recordedPut
	failing int // answer 500 to this many PUTs first
}

type recordedPut struct {
	method, contentType string
	body                []byte
}

// replyBody is the response as CloudFormation reads it.
type replyBody struct {
	Status             string
	Reason             string
	PhysicalResourceID string `json:"PhysicalResourceId"`
	StackID            string `json:"StackId"`
	RequestID          string `json:"RequestId"`
	LogicalResourceID  string `json:"LogicalResourceId"`
	Data               map[string]any
}

const signature = "X-Amz-Signature=c0ffee5ec2e7"

func (w *world) customResource() *crHarness {
	h := &crHarness{w: w}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.puts = append(h.puts, recordedPut{method: r.Method, contentType: r.Header.Get("Content-Type"), body: body})
		if h.failing > 0 {
			h.failing--
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
	}))
	w.t.Cleanup(srv.Close)
	h.url = srv.URL + "/arn%3Aaws%3Acloudformation/PipelineStack?X-Amz-Algorithm=AWS4-HMAC-SHA256&" + signature
	h.cr = &deploy.CustomResource{Engine: w.engine, Template: infrastructure.PipelineTemplate,
		Reply: deploy.HTTPReplier{Client: awsfake.HTTPClient()}, Poll: w.poller(),
		Log: slog.New(slog.NewJSONHandler(w.logs, nil))}
	return h
}

// event is the sample request of requestType (events/custom-resource-*.json) with a fresh
// request id, answered at the harness; mutate edits its properties.
func (h *crHarness) event(requestType string, mutate func(props map[string]any)) cfn.Event {
	h.w.t.Helper()
	data, err := os.ReadFile("../../events/custom-resource-" + strings.ToLower(requestType) + ".json")
	require.NoError(h.w.t, err)
	ev, err := deploy.DecodeCustomResource(data)
	require.NoError(h.w.t, err)
	ev.RequestID, ev.ResponseURL = h.w.jobID(), h.url
	if mutate != nil {
		mutate(ev.ResourceProperties)
	}
	return ev
}

func (h *crHarness) handle(t *testing.T, ev cfn.Event) (deploy.CustomReply, replyBody) {
	t.Helper()
	reply, err := h.cr.Handle(context.Background(), ev)
	require.NoError(t, err)
	return reply, h.last(t)
}

func (h *crHarness) last(t *testing.T) replyBody {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.puts, "no answer reached CloudFormation")
	p := h.puts[len(h.puts)-1]
	assert.Equal(t, http.MethodPut, p.method)
	assert.Empty(t, p.contentType, "the presigned PUT carries no Content-Type")
	assert.LessOrEqual(t, len(p.body), deploy.MaxReplyBody)
	var b replyBody
	require.NoError(t, json.Unmarshal(p.body, &b))
	return b
}

func TestCustomResourceCreateUpdateDelete(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()

	create := h.event("Create", nil)
	_, body := h.handle(t, create)
	assert.Equal(t, "SUCCESS", body.Status, body.Reason)
	assert.Equal(t, pipelineStack, body.PhysicalResourceID)
	assert.Equal(t, create.RequestID, body.RequestID)
	assert.Equal(t, create.StackID, body.StackID)
	assert.Equal(t, "PipelineStack", body.LogicalResourceID)
	assert.Equal(t, "my-lambda-pipeline-PipelineName", body.Data["PipelineName"], "the stack's outputs are the resource's attributes")
	st := w.stack(pipelineStack)
	assert.Equal(t, "CREATE_COMPLETE", st.Status)
	assert.Equal(t, pipeRoleARN, st.RoleARN)
	assert.Equal(t, map[string]string{"ProjectName": "my-lambda", "TrackedBranch": "main", "ArtifactsBucket": bucket,
		"DeployerFunctionName": "lambda-pipeline-my-lambda-deployer", "PipelineStackRoleArn": pipeRoleARN,
		"AppStackRoleArn": appRoleARN, "RetentionDays": "90", "PermissionsBoundaryArn": noBoundary}, st.Parameters)
	assert.Equal(t, string(infrastructure.PipelineTemplate), st.Template)
	assert.Equal(t, body.Data["StackId"], st.StackID)

	_, body = h.handle(t, h.event("Update", func(p map[string]any) { p["TrackedBranch"] = "release" }))
	assert.Equal(t, "SUCCESS", body.Status, body.Reason)
	assert.Equal(t, pipelineStack, body.PhysicalResourceID)
	st = w.stack(pipelineStack)
	assert.Equal(t, "UPDATE_COMPLETE", st.Status)
	assert.Equal(t, "release", st.Parameters["TrackedBranch"])

	_, body = h.handle(t, h.event("Update", func(p map[string]any) { p["TrackedBranch"] = "release" }))
	assert.Equal(t, "SUCCESS", body.Status)
	assert.Contains(t, body.Reason, "no changes")

	_, body = h.handle(t, h.event("Delete", nil))
	assert.Equal(t, "SUCCESS", body.Status, body.Reason)
	assert.Equal(t, pipelineStack, body.PhysicalResourceID)
	_, ok := w.cfn.Stack(pipelineStack)
	assert.False(t, ok, "the pipeline stack is gone")

	// A stack that is already gone deletes successfully.
	_, body = h.handle(t, h.event("Delete", nil))
	assert.Equal(t, "SUCCESS", body.Status)
	assert.NotContains(t, w.logs.String(), signature, "the response URL's signature is never logged")
}

func TestCustomResourceRenameReplacesTheStack(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	_, body := h.handle(t, h.event("Create", nil))
	require.Equal(t, "SUCCESS", body.Status)

	_, body = h.handle(t, h.event("Update", func(p map[string]any) { p["StackName"] = "my-lambda-pipeline-v2" }))
	assert.Equal(t, "SUCCESS", body.Status, body.Reason)
	assert.Equal(t, "my-lambda-pipeline-v2", body.PhysicalResourceID, "a new physical id: CloudFormation deletes the old one")
	assert.Equal(t, "CREATE_COMPLETE", w.stack("my-lambda-pipeline-v2").Status)
	assert.Equal(t, "CREATE_COMPLETE", w.stack(pipelineStack).Status, "the old stack waits for CloudFormation's Delete")
}

func TestCustomResourceFailedCreateAnswersFailedAndIsCleanedUp(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	w.cfn.FailNextDeploy(pipelineStack, awsfake.DeployFailure{Resource: "BuildProject", Reason: "Resource handler returned message: \"Invalid image\""})
	_, body := h.handle(t, h.event("Create", nil))
	assert.Equal(t, "FAILED", body.Status)
	assert.Contains(t, body.Reason, "Root cause: BuildProject (AWS::CodeBuild::Project) CREATE_FAILED: Resource handler returned message: \"Invalid image\"")
	assert.Equal(t, pipelineStack, body.PhysicalResourceID, "the rollback's Delete will name the half-created stack")

	_, body = h.handle(t, h.event("Delete", nil))
	assert.Equal(t, "SUCCESS", body.Status, body.Reason)
	_, ok := w.cfn.Stack(pipelineStack)
	assert.False(t, ok)
}

func TestCustomResourceFailedCreateNeverDeletesAStackItDidNotCreate(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	// The stack exists already (an earlier control plane's): Create takes it over, and fails.
	_, body := h.handle(t, h.event("Create", nil))
	require.Equal(t, "SUCCESS", body.Status)
	w.cfn.FailNextChangeSet(pipelineStack, "Template error: something")
	create := h.event("Create", func(p map[string]any) { p["TrackedBranch"] = "release" })
	_, body = h.handle(t, create)
	assert.Equal(t, "FAILED", body.Status)
	assert.Equal(t, "not-created:"+create.RequestID, body.PhysicalResourceID, "the rollback's Delete must not name the existing stack")
}

func TestCustomResourceReplyStaysWithin4096Bytes(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	w.cfn.FailNextDeploy(pipelineStack, awsfake.DeployFailure{Resource: "Pipeline", Reason: strings.Repeat(`"quoted" <reason> `, 600)})
	reply, body := h.handle(t, h.event("Create", nil))
	assert.Equal(t, "FAILED", body.Status)
	assert.True(t, strings.HasSuffix(body.Reason, "…"), "the reason is shortened: %q", body.Reason)
	assert.Equal(t, reply.Reason, body.Reason)
	assert.Contains(t, body.Reason, "Root cause: Pipeline")
}

func TestCustomResourceBadPropertiesFailAndDeleteNothing(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	create := h.event("Create", func(p map[string]any) { p["RoleARN"] = "not-an-arn" })
	_, body := h.handle(t, create)
	assert.Equal(t, "FAILED", body.Status)
	assert.Contains(t, body.Reason, "RoleARN")
	assert.Equal(t, "not-created:"+create.RequestID, body.PhysicalResourceID)

	del := h.event("Delete", nil)
	del.PhysicalResourceID = body.PhysicalResourceID
	_, body = h.handle(t, del)
	assert.Equal(t, "SUCCESS", body.Status)
	assert.Zero(t, w.cfn.Calls(awsfake.OpDescribeStacks)+w.cfn.Calls(awsfake.OpDeleteStack), "nothing was asked of CloudFormation")
}

func TestCustomResourceDeleteFailureAnswersFailed(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	_, body := h.handle(t, h.event("Create", nil))
	require.Equal(t, "SUCCESS", body.Status)
	w.cfn.FailNextDelete(pipelineStack, "BuildLogGroup", "Resource handler returned message: \"Access denied for logs:DeleteLogGroup\"")
	_, body = h.handle(t, h.event("Delete", nil))
	assert.Equal(t, "FAILED", body.Status)
	assert.Contains(t, body.Reason, "DELETE_FAILED")
	assert.Contains(t, body.Reason, "Access denied for logs:DeleteLogGroup")
	assert.Equal(t, pipelineStack, body.PhysicalResourceID)
}

func TestCustomResourceOutOfTimeAnswersFailed(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	h.cr.Poll.Budget = 1 // one step only
	_, body := h.handle(t, h.event("Create", nil))
	assert.Equal(t, "FAILED", body.Status)
	assert.Contains(t, body.Reason, "stopped waiting")
	assert.Contains(t, body.Reason, "my-lambda-pipeline")
}

func TestCustomResourceReplyIsRetried(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	h.failing = 2
	_, body := h.handle(t, h.event("Create", nil))
	assert.Equal(t, "SUCCESS", body.Status)
	assert.Len(t, h.puts, 3)

	h.failing = 3
	_, err := h.cr.Handle(context.Background(), h.event("Update", nil))
	assert.ErrorContains(t, err, "status 500", "an answer that never arrives is an error: Lambda retries")
	assert.NotContains(t, err.Error(), signature)
}

func TestCustomResourcePanicAnswersFailed(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	h.cr.Engine = &deploy.Engine{} // no CloudFormation client: the step panics
	_, body := h.handle(t, h.event("Create", nil))
	assert.Equal(t, "FAILED", body.Status)
	assert.Equal(t, "Function panicked, see log stream for details", body.Reason)
}

func TestCustomResourceDryRunCallsNothing(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	h.cr.DryRun, h.cr.Engine = true, nil
	reply, err := h.cr.Handle(context.Background(), h.event("Create", nil))
	require.NoError(t, err)
	assert.Equal(t, cfn.StatusSuccess, reply.Status)
	assert.Contains(t, reply.Reason, "would deploy stack my-lambda-pipeline")
	assert.Empty(t, h.puts)
}

// Issue 9, defect 12: a `sam deploy` of the control plane that changes a parameter updates the
// pipeline stack's parameters only; it does not put back the pipeline template built into the
// deployer over the one the pipeline updated itself to from the repository.
func TestCustomResourceUpdateKeepsTheTemplateThePipelineUpdatedItselfTo(t *testing.T) {
	w := newWorld(t)
	h := w.customResource()
	_, body := h.handle(t, h.event("Create", nil))
	require.Equal(t, "SUCCESS", body.Status, body.Reason)

	// The pipeline's SelfUpdate stage deploys the repository's newer pipeline.yml.
	selfUpdated := strings.Replace(string(infrastructure.PipelineTemplate), "lambda-pipeline: the pipeline", "lambda-pipeline (from the repository): the pipeline", 1)
	require.NotEqual(t, string(infrastructure.PipelineTemplate), selfUpdated)
	w.steps(deploy.Request{StackName: pipelineStack, TemplateBody: selfUpdated, Parameters: w.stack(pipelineStack).Parameters,
		Capabilities: []string{"CAPABILITY_IAM"}, RoleARN: pipeRoleARN, Token: "self-update"})
	require.Equal(t, selfUpdated, w.stack(pipelineStack).Template)

	_, body = h.handle(t, h.event("Update", func(p map[string]any) { p["RetentionDays"] = "30" }))
	assert.Equal(t, "SUCCESS", body.Status, body.Reason)
	st := w.stack(pipelineStack)
	assert.Equal(t, selfUpdated, st.Template, "the control plane's deploy kept the self-updated template")
	assert.Equal(t, "30", st.Parameters["RetentionDays"], "and changed the parameter")
	assert.Equal(t, "UPDATE_COMPLETE", st.Status)

	// An Update that changes nothing the stack uses changes nothing.
	_, body = h.handle(t, h.event("Update", func(p map[string]any) { p["RetentionDays"] = "30" }))
	assert.Equal(t, "SUCCESS", body.Status)
	assert.Contains(t, body.Reason, "no changes")
	assert.Equal(t, selfUpdated, w.stack(pipelineStack).Template)
}

// noBoundary is the templates' placeholder boundary ARN, which names no policy: a stack deployed
// without the real boundary fails (infrastructure/pipeline.yml, lambda.yml).
const noBoundary = "arn:aws:iam::000000000000:policy/lambda-pipeline/no-boundary-given"
