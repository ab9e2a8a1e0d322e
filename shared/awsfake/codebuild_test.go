package awsfake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codebuild/types"
	"github.com/aws/smithy-go"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const buildID = "my-lambda-build:9b0ac37f-d19e-4254-9079-f47e9a389eb0"

func getBuilds(c *codebuild.Client, ctx context.Context, ids ...string) (*codebuild.BatchGetBuildsOutput, error) {
	return c.BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: ids})
}

func TestBatchGetBuildsFailedBuild(t *testing.T) {
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	fake := awsfake.NewCodeBuild(t, awsfake.FailedBuild(buildID, start, "BUILD", "COMMAND_EXECUTION_ERROR",
		"Error while executing command: go test ./.... Reason: exit status 1"))

	out, err := getBuilds(fake.Client(t), context.Background(), buildID, "my-lambda-build:00000000-0000-4000-8000-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Builds) != 1 || len(out.BuildsNotFound) != 1 || out.BuildsNotFound[0] != "my-lambda-build:00000000-0000-4000-8000-000000000000" {
		t.Fatalf("builds = %d, not found = %v; want the known one and the unknown one listed", len(out.Builds), out.BuildsNotFound)
	}
	b := out.Builds[0]
	if b.BuildStatus != types.StatusTypeFailed || aws.ToString(b.ProjectName) != "my-lambda-build" || !b.BuildComplete ||
		aws.ToString(b.CurrentPhase) != "COMPLETED" || !aws.ToTime(b.StartTime).Equal(start) {
		t.Errorf("build = status %s project %q complete %v phase %q start %v", b.BuildStatus, aws.ToString(b.ProjectName),
			b.BuildComplete, aws.ToString(b.CurrentPhase), aws.ToTime(b.StartTime))
	}
	var phases []string
	for _, ph := range b.Phases {
		phases = append(phases, string(ph.PhaseType)+"="+string(ph.PhaseStatus))
	}
	want := []string{"SUBMITTED=SUCCEEDED", "QUEUED=SUCCEEDED", "PROVISIONING=SUCCEEDED", "DOWNLOAD_SOURCE=SUCCEEDED",
		"INSTALL=SUCCEEDED", "PRE_BUILD=SUCCEEDED", "BUILD=FAILED", "POST_BUILD=SUCCEEDED", "UPLOAD_ARTIFACTS=SUCCEEDED",
		"FINALIZING=SUCCEEDED", "COMPLETED="}
	if len(phases) != len(want) {
		t.Fatalf("phases = %v, want %v", phases, want)
	}
	for i := range want {
		if phases[i] != want[i] {
			t.Fatalf("phases = %v, want %v", phases, want)
		}
	}
	build := b.Phases[6]
	if len(build.Contexts) != 1 || aws.ToString(build.Contexts[0].StatusCode) != "COMMAND_EXECUTION_ERROR" ||
		aws.ToInt64(build.DurationInSeconds) != 10 {
		t.Errorf("BUILD phase = %+v", build)
	}
	// CodeBuild's default log location ("LogsLocation",
	// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_LogsLocation.html).
	if l := b.Logs; aws.ToString(l.GroupName) != "/aws/codebuild/my-lambda-build" || aws.ToString(l.StreamName) != "9b0ac37f-d19e-4254-9079-f47e9a389eb0" ||
		aws.ToString(l.DeepLink) != "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:group=/aws/codebuild/my-lambda-build;stream=9b0ac37f-d19e-4254-9079-f47e9a389eb0" {
		t.Errorf("logs = group %q stream %q link %q", aws.ToString(l.GroupName), aws.ToString(l.StreamName), aws.ToString(l.DeepLink))
	}
}

func TestBatchGetBuildsWithoutCloudWatchLogs(t *testing.T) {
	b := awsfake.FailedBuild(buildID, time.Now(), "INSTALL", "COMMAND_EXECUTION_ERROR", "exit status 2")
	b.NoCloudWatchLogs = true
	fake := awsfake.NewCodeBuild(t, b)
	out, err := getBuilds(fake.Client(t), context.Background(), buildID)
	if err != nil {
		t.Fatal(err)
	}
	got := out.Builds[0]
	if aws.ToString(got.Logs.GroupName) != "" || aws.ToString(got.Logs.DeepLink) != "" {
		t.Errorf("logs = %+v, want no CloudWatch location", got.Logs)
	}
	// An INSTALL failure skips to FINALIZING.
	if n := len(got.Phases); n != 7 || got.Phases[5].PhaseType != types.BuildPhaseTypeFinalizing {
		t.Errorf("phases = %d, want SUBMITTED…INSTALL, FINALIZING, COMPLETED", n)
	}
}

func TestBatchGetBuildsErrors(t *testing.T) {
	fake := awsfake.NewCodeBuild(t, awsfake.FailedBuild(buildID, time.Now(), "BUILD", "", ""))
	c := fake.Client(t)

	ids := make([]string, 101)
	for i := range ids {
		ids[i] = buildID
	}
	_, err := getBuilds(c, context.Background(), ids...)
	var invalid *types.InvalidInputException
	if !errors.As(err, &invalid) {
		t.Errorf("101 ids: err = %v, want InvalidInputException", err)
	}

	fake.FailNext(awsfake.OpBatchGetBuilds, awsfake.AccessDeniedFor("codebuild:BatchGetBuilds"), 1)
	_, err = getBuilds(c, context.Background(), buildID)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" {
		t.Errorf("denied: err = %v, want AccessDeniedException", err)
	}

	// The SDK retries a throttle; three in a row exhaust its attempts.
	fake.FailNext(awsfake.OpBatchGetBuilds, awsfake.Throttling, 3)
	before := fake.Calls(awsfake.OpBatchGetBuilds)
	_, err = getBuilds(c, context.Background(), buildID)
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
		t.Errorf("throttled: err = %v, want ThrottlingException", err)
	}
	if n := fake.Calls(awsfake.OpBatchGetBuilds) - before; n != 3 {
		t.Errorf("throttled: %d attempts, want the SDK's 3", n)
	}
}

func TestBatchGetBuildsHangsUntilTheCallerGivesUp(t *testing.T) {
	fake := awsfake.NewCodeBuild(t, awsfake.FailedBuild(buildID, time.Now(), "BUILD", "", ""))
	fake.Hang(awsfake.OpBatchGetBuilds, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := getBuilds(fake.Client(t), ctx, buildID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
	if fake.Hung(awsfake.OpBatchGetBuilds) != 1 || fake.Calls(awsfake.OpBatchGetBuilds) != 0 {
		t.Errorf("hung %d, served %d; want 1 and 0", fake.Hung(awsfake.OpBatchGetBuilds), fake.Calls(awsfake.OpBatchGetBuilds))
	}
	// The next call is answered.
	if _, err := getBuilds(fake.Client(t), context.Background(), buildID); err != nil {
		t.Errorf("after the hang: %v", err)
	}
}
