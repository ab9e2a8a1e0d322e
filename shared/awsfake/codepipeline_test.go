package awsfake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/smithy-go"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const pipelineName = "my-lambda-pipeline"

func start(t *testing.T, c *codepipeline.Client, token, commit string) (string, error) {
	t.Helper()
	out, err := c.StartPipelineExecution(context.Background(), &codepipeline.StartPipelineExecutionInput{
		Name:               aws.String(pipelineName),
		ClientRequestToken: aws.String(token),
		SourceRevisions: []types.SourceRevisionOverride{{
			ActionName: aws.String("Source"), RevisionType: types.SourceRevisionTypeCommitId, RevisionValue: aws.String(commit),
		}},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.PipelineExecutionId), nil
}

func TestStartPipelineExecutionRecordsAndDeduplicatesByToken(t *testing.T) {
	fake := awsfake.NewCodePipeline(t, pipelineName)
	c := fake.Client(t)

	first, err := start(t, c, "push-token-1", "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6")
	if err != nil {
		t.Fatal(err)
	}
	again, err := start(t, c, "push-token-1", "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6")
	if err != nil {
		t.Fatal(err)
	}
	other, err := start(t, c, "push-token-2", "a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0")
	if err != nil {
		t.Fatal(err)
	}
	if first == "" || again != first {
		t.Errorf("same token: execution ids %q then %q, want the same non-empty id", first, again)
	}
	if other == first {
		t.Errorf("another token answered the first execution %q", first)
	}
	starts := fake.Starts()
	if len(starts) != 3 {
		t.Fatalf("Starts() = %d calls, want 3", len(starts))
	}
	want := awsfake.StartCall{Pipeline: pipelineName, ClientRequestToken: "push-token-1", ExecutionID: first,
		SourceRevisions: []awsfake.SourceRevision{{ActionName: "Source", RevisionType: "COMMIT_ID", RevisionValue: "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"}}}
	if got := starts[0]; got.Pipeline != want.Pipeline || got.ClientRequestToken != want.ClientRequestToken ||
		got.ExecutionID != want.ExecutionID || got.Replayed || len(got.SourceRevisions) != 1 || got.SourceRevisions[0] != want.SourceRevisions[0] {
		t.Errorf("first call = %+v, want %+v", got, want)
	}
	if !starts[1].Replayed || starts[2].Replayed {
		t.Errorf("Replayed = %v, %v; want true for the repeated token only", starts[1].Replayed, starts[2].Replayed)
	}
	if n := len(fake.Started()); n != 2 {
		t.Errorf("Started() = %d executions, want 2", n)
	}

	// A started execution is visible, in progress, pinned to its commit.
	out, err := c.GetPipelineExecution(context.Background(), &codepipeline.GetPipelineExecutionInput{
		PipelineName: aws.String(pipelineName), PipelineExecutionId: aws.String(first)})
	if err != nil {
		t.Fatal(err)
	}
	pe := out.PipelineExecution
	if pe.Status != types.PipelineExecutionStatusInProgress || pe.Trigger == nil || pe.Trigger.TriggerType != types.TriggerTypeStartPipelineExecution {
		t.Errorf("started execution = status %q trigger %+v", pe.Status, pe.Trigger)
	}
	if len(pe.ArtifactRevisions) != 1 || aws.ToString(pe.ArtifactRevisions[0].RevisionId) != "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6" {
		t.Errorf("artifact revisions = %+v", pe.ArtifactRevisions)
	}
}

func TestStartPipelineExecutionErrorsAreTyped(t *testing.T) {
	fake := awsfake.NewCodePipeline(t, pipelineName)
	c := fake.Client(t)
	ctx := context.Background()

	_, err := c.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{Name: aws.String("no-such-pipeline")})
	var notFound *types.PipelineNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("unknown pipeline: err = %v, want PipelineNotFoundException", err)
	}

	_, err = start(t, c, "not_valid!", "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6")
	var invalid *types.ValidationException
	if !errors.As(err, &invalid) {
		t.Errorf("bad token: err = %v, want ValidationException", err)
	}
	_, err = start(t, c, strings.Repeat("a", 129), "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6")
	if !errors.As(err, &invalid) {
		t.Errorf("129-character token: err = %v, want ValidationException", err)
	}

	// The SDK fills in a token when the caller gives none (it is an idempotency token).
	out, err := c.StartPipelineExecution(ctx, &codepipeline.StartPipelineExecutionInput{Name: aws.String(pipelineName)})
	if err != nil {
		t.Fatalf("no token: %v", err)
	}
	starts := fake.Starts()
	if len(starts) != 1 || starts[0].ClientRequestToken == "" || starts[0].ExecutionID != aws.ToString(out.PipelineExecutionId) {
		t.Errorf("no token: starts = %+v", starts)
	}
	if len(fake.Started()) != 1 {
		t.Errorf("failed calls started executions: %+v", fake.Started())
	}
}

func TestInjectedErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("throttling once is retried by the SDK", func(t *testing.T) {
		fake := awsfake.NewCodePipeline(t, pipelineName)
		fake.FailNext(awsfake.OpStartPipelineExecution, awsfake.Throttling, 1)
		if _, err := start(t, fake.Client(t), "t1", "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"); err != nil {
			t.Fatal(err)
		}
		if n := fake.Calls(awsfake.OpStartPipelineExecution); n != 2 {
			t.Errorf("calls = %d, want 2 (throttled, then retried)", n)
		}
		if n := len(fake.Started()); n != 1 {
			t.Errorf("started %d executions, want 1", n)
		}
	})
	t.Run("throttling beyond the retries reaches the caller", func(t *testing.T) {
		fake := awsfake.NewCodePipeline(t, pipelineName)
		fake.FailNext(awsfake.OpStartPipelineExecution, awsfake.Throttling, 2)
		_, err := start(t, fake.Client(t, func(o *codepipeline.Options) { o.RetryMaxAttempts = 2 }), "t1", "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6")
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
			t.Fatalf("err = %v, want ThrottlingException", err)
		}
		if n := fake.Calls(awsfake.OpStartPipelineExecution); n != 2 {
			t.Errorf("calls = %d, want 2", n)
		}
		if len(fake.Started()) != 0 {
			t.Errorf("a throttled call started an execution")
		}
	})
	t.Run("a 5xx is retried", func(t *testing.T) {
		fake := awsfake.NewCodePipeline(t, pipelineName)
		fake.FailNext(awsfake.OpGetPipelineExecution, awsfake.ServiceUnavailable, 1)
		fake.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: "11111111-2222-4333-8444-555555555555"})
		_, err := fake.Client(t).GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{
			PipelineName: aws.String(pipelineName), PipelineExecutionId: aws.String("11111111-2222-4333-8444-555555555555")})
		if err != nil {
			t.Fatal(err)
		}
		if n := fake.Calls(awsfake.OpGetPipelineExecution); n != 2 {
			t.Errorf("calls = %d, want 2", n)
		}
	})
	t.Run("conflict is typed and not retried", func(t *testing.T) {
		fake := awsfake.NewCodePipeline(t, pipelineName)
		fake.FailNext(awsfake.OpStartPipelineExecution, awsfake.Conflict, 1)
		_, err := start(t, fake.Client(t), "t1", "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6")
		var conflict *types.ConflictException
		if !errors.As(err, &conflict) {
			t.Fatalf("err = %v, want ConflictException", err)
		}
		if n := fake.Calls(awsfake.OpStartPipelineExecution); n != 1 {
			t.Errorf("calls = %d, want 1", n)
		}
	})
}

func TestGetPipelineExecution(t *testing.T) {
	fake := awsfake.NewCodePipeline(t, pipelineName)
	c := fake.Client(t)
	ctx := context.Background()
	const id = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
	fake.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: id, Status: types.PipelineExecutionStatusFailed,
		StatusSummary: "Action BuildAndTest failed", Version: 3, TriggerType: types.TriggerTypeCreatePipeline, TriggerDetail: "arn:aws:iam::123456789012:role/x"})

	out, err := c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String(pipelineName), PipelineExecutionId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	pe := out.PipelineExecution
	if pe.Status != types.PipelineExecutionStatusFailed || aws.ToString(pe.StatusSummary) != "Action BuildAndTest failed" ||
		aws.ToInt32(pe.PipelineVersion) != 3 || pe.Trigger.TriggerType != types.TriggerTypeCreatePipeline ||
		aws.ToString(pe.PipelineName) != pipelineName || aws.ToString(pe.PipelineExecutionId) != id {
		t.Errorf("execution = %+v", pe)
	}

	fake.SetStatus(id, types.PipelineExecutionStatusSucceeded)
	out, err = c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String(pipelineName), PipelineExecutionId: aws.String(id)})
	if err != nil || out.PipelineExecution.Status != types.PipelineExecutionStatusSucceeded {
		t.Errorf("after SetStatus: %v, %v", out, err)
	}

	_, err = c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String(pipelineName),
		PipelineExecutionId: aws.String("99999999-9999-4999-8999-999999999999")})
	var missing *types.PipelineExecutionNotFoundException
	if !errors.As(err, &missing) {
		t.Errorf("unknown execution: err = %v, want PipelineExecutionNotFoundException", err)
	}
	_, err = c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String("other"), PipelineExecutionId: aws.String(id)})
	var noPipeline *types.PipelineNotFoundException
	if !errors.As(err, &noPipeline) {
		t.Errorf("unknown pipeline: err = %v, want PipelineNotFoundException", err)
	}
	_, err = c.GetPipelineExecution(ctx, &codepipeline.GetPipelineExecutionInput{PipelineName: aws.String(pipelineName), PipelineExecutionId: aws.String("exec-1")})
	var invalid *types.ValidationException
	if !errors.As(err, &invalid) {
		t.Errorf("malformed execution id: err = %v, want ValidationException", err)
	}
}

func TestListActionExecutionsPaginates(t *testing.T) {
	fake := awsfake.NewCodePipeline(t, pipelineName)
	c := fake.Client(t)
	ctx := context.Background()
	const id = "0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f"
	t0 := time.Date(2026, 11, 20, 10, 15, 5, 250_000_000, time.UTC)
	fake.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: id, Status: types.PipelineExecutionStatusFailed})
	actions := []awsfake.ActionExecution{
		{Stage: "Source", Action: "Source", ID: "a-1", Status: types.ActionExecutionStatusSucceeded, StartTime: t0, LastUpdateTime: t0.Add(time.Second),
			Category: "Source", Owner: "AWS", Provider: "CodeCommit", Version: "1", ExternalID: "b7e6f4c2", Summary: "Fix retries",
			OutputArtifacts: []awsfake.Artifact{{Name: "SourceArtifact", Bucket: "artifacts", Key: "my/SourceArti/abc.zip"}}},
		{Stage: "CreateUpdatePipeline", Action: "Deploy", ID: "a-2", Status: types.ActionExecutionStatusSucceeded, StartTime: t0.Add(2 * time.Second), LastUpdateTime: t0.Add(40 * time.Second)},
		{Stage: "BuildAndTest", Action: "Build", ID: "a-3", Status: types.ActionExecutionStatusFailed, StartTime: t0.Add(41 * time.Second), LastUpdateTime: t0.Add(200 * time.Second),
			Category: "Build", Owner: "AWS", Provider: "CodeBuild", Version: "1", Region: "eu-west-1",
			ExternalID: "build:1", Summary: "Build terminated with state: FAILED", URL: "https://console.aws.amazon.com/codebuild/x",
			ErrorCode: "JobFailed", ErrorMessage: "Build terminated with state: FAILED",
			OutputArtifacts: []awsfake.Artifact{{Name: "BuildOutput", Bucket: "artifacts", Key: "my/BuildOutpu/def.zip"}}},
		{Stage: "BuildAndTest", Action: "Lint", ID: "a-4", Status: types.ActionExecutionStatusAbandoned, StartTime: t0.Add(41 * time.Second), LastUpdateTime: t0.Add(200 * time.Second)},
		{Stage: "CreateUpdateLambda", Action: "Deploy", ID: "a-5", Status: types.ActionExecutionStatusInProgress, StartTime: t0.Add(201 * time.Second)},
	}
	fake.SetActionExecutions(id, actions...)

	p := codepipeline.NewListActionExecutionsPaginator(c, &codepipeline.ListActionExecutionsInput{
		PipelineName: aws.String(pipelineName), Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(id)}, MaxResults: aws.Int32(2)})
	var got []types.ActionExecutionDetail
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.ActionExecutionDetails) > 2 {
			t.Errorf("page of %d details with maxResults 2", len(out.ActionExecutionDetails))
		}
		got = append(got, out.ActionExecutionDetails...)
	}
	if pages != 3 || len(got) != 5 {
		t.Fatalf("%d pages, %d details; want 3 pages, 5 details", pages, len(got))
	}
	for i, d := range got {
		if aws.ToString(d.ActionExecutionId) != actions[i].ID || aws.ToString(d.StageName) != actions[i].Stage || d.Status != actions[i].Status {
			t.Errorf("detail %d = %s/%s %s, want %s", i, aws.ToString(d.StageName), aws.ToString(d.ActionExecutionId), d.Status, actions[i].ID)
		}
	}
	build := got[2]
	if !aws.ToTime(build.StartTime).Equal(t0.Add(41*time.Second)) || !aws.ToTime(build.LastUpdateTime).Equal(t0.Add(200*time.Second)) {
		t.Errorf("times = %v, %v", build.StartTime, build.LastUpdateTime)
	}
	res := build.Output.ExecutionResult
	if aws.ToString(res.ExternalExecutionId) != "build:1" || aws.ToString(res.ExternalExecutionUrl) != "https://console.aws.amazon.com/codebuild/x" ||
		res.ErrorDetails == nil || aws.ToString(res.ErrorDetails.Code) != "JobFailed" {
		t.Errorf("execution result = %+v", res)
	}
	if at := build.Input.ActionTypeId; at == nil || at.Category != types.ActionCategoryBuild || aws.ToString(at.Provider) != "CodeBuild" {
		t.Errorf("action type = %+v", build.Input.ActionTypeId)
	}
	if arts := build.Output.OutputArtifacts; len(arts) != 1 || aws.ToString(arts[0].Name) != "BuildOutput" ||
		aws.ToString(arts[0].S3location.Bucket) != "artifacts" || aws.ToString(arts[0].S3location.Key) != "my/BuildOutpu/def.zip" {
		t.Errorf("output artifacts = %+v", build.Output.OutputArtifacts)
	}
	if got[4].Output != nil {
		t.Errorf("in-progress action has output %+v", got[4].Output)
	}

	// Errors.
	_, err := c.ListActionExecutions(ctx, &codepipeline.ListActionExecutionsInput{PipelineName: aws.String(pipelineName),
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String(id)}, NextToken: aws.String("made-up")})
	var badToken *types.InvalidNextTokenException
	if !errors.As(err, &badToken) {
		t.Errorf("made-up token: err = %v, want InvalidNextTokenException", err)
	}
	_, err = c.ListActionExecutions(ctx, &codepipeline.ListActionExecutionsInput{PipelineName: aws.String(pipelineName),
		Filter: &types.ActionExecutionFilter{PipelineExecutionId: aws.String("99999999-9999-4999-8999-999999999999")}})
	var missing *types.PipelineExecutionNotFoundException
	if !errors.As(err, &missing) {
		t.Errorf("unknown execution: err = %v, want PipelineExecutionNotFoundException", err)
	}
	_, err = c.ListActionExecutions(ctx, &codepipeline.ListActionExecutionsInput{PipelineName: aws.String(pipelineName), MaxResults: aws.Int32(101)})
	var invalid *types.ValidationException
	if !errors.As(err, &invalid) {
		t.Errorf("maxResults 101: err = %v, want ValidationException", err)
	}
	// Without a filter: every execution of the pipeline.
	out, err := c.ListActionExecutions(ctx, &codepipeline.ListActionExecutionsInput{PipelineName: aws.String(pipelineName)})
	if err != nil || len(out.ActionExecutionDetails) != 5 || out.NextToken != nil {
		t.Errorf("unfiltered: %d details, next %v, err %v", len(out.ActionExecutionDetails), out.NextToken, err)
	}
}

func TestUnsignedRequestsAreRefused(t *testing.T) {
	fake := awsfake.NewCodePipeline(t, pipelineName)
	req, err := http.NewRequest(http.MethodPost, fake.URL(), strings.NewReader(`{"name":"my-lambda-pipeline"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "CodePipeline_20150709.StartPipelineExecution")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(fake.Starts()) != 0 {
		t.Errorf("unsigned request: status %d, %d starts", resp.StatusCode, len(fake.Starts()))
	}
}

// ListPipelineExecutions lists the most recent first, with the revisions each was pinned to,
// in pages.
func TestListPipelineExecutions(t *testing.T) {
	fake := awsfake.NewCodePipeline(t, pipelineName, "other-pipeline")
	c := fake.Client(t)
	commits := []string{strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)}
	var ids []string
	for i, cm := range commits {
		id, err := start(t, c, "token-"+string(rune('1'+i)), cm)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	fake.SetExecution(awsfake.Execution{Pipeline: "other-pipeline", ID: "5e7c0000-0000-4000-8000-0000000000ff"})
	list := func(max int32, next *string) *codepipeline.ListPipelineExecutionsOutput {
		t.Helper()
		out, err := c.ListPipelineExecutions(context.Background(), &codepipeline.ListPipelineExecutionsInput{
			PipelineName: aws.String(pipelineName), MaxResults: aws.Int32(max), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := list(2, nil)
	if len(first.PipelineExecutionSummaries) != 2 || first.NextToken == nil {
		t.Fatalf("first page = %+v", first)
	}
	s := first.PipelineExecutionSummaries[0]
	if aws.ToString(s.PipelineExecutionId) != ids[2] || s.Status != types.PipelineExecutionStatusInProgress ||
		len(s.SourceRevisions) != 1 || aws.ToString(s.SourceRevisions[0].RevisionId) != commits[2] ||
		s.Trigger == nil || s.Trigger.TriggerType != types.TriggerTypeStartPipelineExecution {
		t.Errorf("newest = %+v", s)
	}
	rest := list(2, first.NextToken)
	if len(rest.PipelineExecutionSummaries) != 1 || aws.ToString(rest.PipelineExecutionSummaries[0].PipelineExecutionId) != ids[0] || rest.NextToken != nil {
		t.Errorf("second page = %+v", rest)
	}
	_, err := c.ListPipelineExecutions(context.Background(), &codepipeline.ListPipelineExecutionsInput{PipelineName: aws.String("missing-pipeline")})
	var missing *types.PipelineNotFoundException
	if !errors.As(err, &missing) {
		t.Errorf("unknown pipeline: err = %v, want PipelineNotFoundException", err)
	}
}
