package awsfake_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const jobID = "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"

func TestJobResultsAreRecordedOnce(t *testing.T) {
	fake := awsfake.NewJobs(t)
	c := fake.Client(t)
	ctx := context.Background()
	_, err := c.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{JobId: aws.String(jobID), ContinuationToken: aws.String(`{"v":1}`),
		ExecutionDetails: &types.ExecutionDetails{Summary: aws.String("stack s: executing"), ExternalExecutionId: aws.String("s")}})
	if err != nil {
		t.Fatal(err)
	}
	res, ok := fake.Result(jobID)
	if !ok || !res.Succeeded || res.ContinuationToken != `{"v":1}` || res.ExternalExecutionID != "s" || res.NextJobID == "" {
		t.Fatalf("result: %+v", res)
	}
	// A job takes one result.
	_, err = c.PutJobFailureResult(ctx, &codepipeline.PutJobFailureResultInput{JobId: aws.String(jobID),
		FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String("x")}})
	var invalid *types.InvalidJobStateException
	if !errors.As(err, &invalid) {
		t.Errorf("second result: %v", err)
	}
	// The continuation job takes its own.
	_, err = c.PutJobFailureResult(ctx, &codepipeline.PutJobFailureResultInput{JobId: aws.String(res.NextJobID),
		FailureDetails: &types.FailureDetails{Type: types.FailureTypeConfigurationError, Message: aws.String("bad"), ExternalExecutionId: aws.String("s")}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := fake.Result(res.NextJobID); r.Succeeded || r.FailureType != "ConfigurationError" || r.FailureMessage != "bad" {
		t.Errorf("failure: %+v", r)
	}
}

func TestCancelledJobRefusesResults(t *testing.T) {
	fake := awsfake.NewJobs(t)
	fake.Cancel(jobID)
	_, err := fake.Client(t).PutJobSuccessResult(context.Background(), &codepipeline.PutJobSuccessResultInput{JobId: aws.String(jobID)})
	var invalid *types.InvalidJobStateException
	if !errors.As(err, &invalid) {
		t.Errorf("cancelled job: %v", err)
	}
	if len(fake.Results()) != 0 {
		t.Error("a refused result was recorded")
	}
}

func TestJobResultLimits(t *testing.T) {
	fake := awsfake.NewJobs(t)
	c := fake.Client(t)
	ctx := context.Background()
	var validation *types.ValidationException
	for name, call := range map[string]func() error{
		"long token": func() error {
			_, err := c.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{JobId: aws.String(jobID), ContinuationToken: aws.String(strings.Repeat("x", 2049))})
			return err
		},
		"variables with a token": func() error {
			_, err := c.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{JobId: aws.String(jobID), ContinuationToken: aws.String("t"), OutputVariables: map[string]string{"a": "b"}})
			return err
		},
		"long message": func() error {
			_, err := c.PutJobFailureResult(ctx, &codepipeline.PutJobFailureResultInput{JobId: aws.String(jobID),
				FailureDetails: &types.FailureDetails{Type: types.FailureTypeJobFailed, Message: aws.String(strings.Repeat("x", 5001))}})
			return err
		},
		"not a job id": func() error {
			_, err := c.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{JobId: aws.String("job-1")})
			return err
		},
	} {
		if err := call(); !errors.As(err, &validation) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(fake.Results()) != 0 {
		t.Error("an invalid result was recorded")
	}
}

func TestGetJobDetailsAnswersRegisteredJobs(t *testing.T) {
	fake := awsfake.NewJobs(t)
	c := fake.Client(t)
	ctx := context.Background()
	want := awsfake.JobContext{Pipeline: "a-pipeline", ExecutionID: "3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11", Stage: "CreateUpdateLambda", Action: "DeployFunction"}
	fake.Register(jobID, want)
	out, err := c.GetJobDetails(ctx, &codepipeline.GetJobDetailsInput{JobId: aws.String(jobID)})
	if err != nil {
		t.Fatal(err)
	}
	pc := out.JobDetails.Data.PipelineContext
	if aws.ToString(out.JobDetails.Id) != jobID || aws.ToString(pc.PipelineName) != want.Pipeline || aws.ToString(pc.PipelineExecutionId) != want.ExecutionID ||
		aws.ToString(pc.Stage.Name) != want.Stage || aws.ToString(pc.Action.Name) != want.Action || !strings.HasSuffix(aws.ToString(pc.PipelineArn), ":a-pipeline") {
		t.Errorf("pipeline context: %+v", pc)
	}
	// A continuation job runs in its first job's context.
	if _, err := c.PutJobSuccessResult(ctx, &codepipeline.PutJobSuccessResultInput{JobId: aws.String(jobID), ContinuationToken: aws.String("t")}); err != nil {
		t.Fatal(err)
	}
	res, _ := fake.Result(jobID)
	out, err = c.GetJobDetails(ctx, &codepipeline.GetJobDetailsInput{JobId: aws.String(res.NextJobID)})
	if err != nil || aws.ToString(out.JobDetails.Data.PipelineContext.PipelineName) != want.Pipeline {
		t.Errorf("continuation: %+v, %v", out, err)
	}
	// An unknown job, as CodePipeline answers it.
	_, err = c.GetJobDetails(ctx, &codepipeline.GetJobDetailsInput{JobId: aws.String("00000000-0000-4000-8000-000000000000")})
	var notFound *types.JobNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("unknown job: %v", err)
	}
}
