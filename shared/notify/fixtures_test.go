package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// The fixtures are the cases the golden files (and docs/notifications.md) show. They read like
// real runs: the ids, texts and links have the shapes AWS gives them (docs/aws-behaviour.md,
// sections CodeBuild, CloudWatch Logs and S3 presigned URLs).

const (
	fxPipeline = "my-lambda-pipeline"
	fxRegion   = "eu-west-1"
	fxExec     = "3f6c2a1b-8d4e-4c7a-9b2f-5e1d0a7c9b84"
	fxCommitID = "4f2a9c1e7b3d5a8f0c6e2b4d9a1f3c5e7b8d0a2c"
	fxBuildID  = "my-lambda-pipeline-build:9b0ac37f-d19e-4254-9079-f47e9a389eEX"
)

var fxFailedAt = time.Date(2026, 11, 6, 14, 2, 37, 0, time.UTC)

func fxCommit() pipeline.Commit {
	return pipeline.Commit{
		ID: fxCommitID,
		Message: "Return 404 for unknown routes\n\n" +
			"The router panicked on a nil route when a path matched no handler.\n" +
			"Add a NotFound handler and a table test for it.\n",
		Author:   "Ana Lima <ana@example.com>",
		PushedAt: fxFailedAt.Add(-6 * time.Minute),
	}
}

// fxRun is a run that failed at stage/action on attempt 1.
func fxRun(stage, action string, typ pipeline.ActionType, res pipeline.ExecutionResult, commit pipeline.Commit) pipeline.Run {
	return pipeline.Run{
		Pipeline:    fxPipeline,
		ExecutionID: fxExec,
		Progress:    pipeline.Progress{Status: pipeline.StatusFailed, Attempt: 1, At: fxFailedAt},
		Commit:      commit,
		StartedAt:   fxFailedAt.Add(-5 * time.Minute),
		EndedAt:     fxFailedAt,
		Failures: []pipeline.Failure{{
			Stage: stage, Action: action, Attempt: 1, Result: res, Type: typ, At: fxFailedAt,
		}},
	}
}

var (
	codeBuild = pipeline.ActionType{Owner: "AWS", Category: "Build", Provider: "CodeBuild", Version: "1"}
	lambdaAct = pipeline.ActionType{Owner: "AWS", Category: "Invoke", Provider: "Lambda", Version: "1"}
	ccSource  = pipeline.ActionType{Owner: "AWS", Category: "Source", Provider: "CodeCommit", Version: "1"}
)

func fxFailed() pipeline.Notification {
	return pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: fxPipeline, ExecutionID: fxExec, Attempt: 1, At: fxFailedAt}
}

const fxApprovalExec = "7b2e9d41-5c3a-4f8e-b1d6-2a9c0e4f7d13"

// fxAskedAt is when the deployer asked for the approval; the deadline is 20 hours later.
var fxAskedAt = time.Date(2026, 11, 20, 10, 4, 12, 0, time.UTC)

// fxApproval is the request of a deploy of the application stack that widens its function's
// role, as the deployer writes it (pipeline.Approval) and the notifier reads it.
func fxApproval() pipeline.Notification {
	return pipeline.ApprovalNotification(pipeline.Approval{
		Key: pipeline.ApprovalKey{Pipeline: fxPipeline, ExecutionID: fxApprovalExec, Stack: "my-lambda-app",
			Deploy: "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"},
		Status: pipeline.ApprovalPending, TemplatePath: "SourceArtifact::infrastructure/lambda.yml",
		TemplateSHA256: "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a0c2e4f6a8b0d2f4e6a8c0b",
		Widening: []string{
			"FunctionRole: added-action: s3:PutObject",
			"FunctionRole: added-resource: arn:aws:s3:::my-lambda-uploads/*",
			"FunctionRole: added-managed-policy: arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
		},
		RequestedAt: fxAskedAt, Deadline: fxAskedAt.Add(20 * time.Hour),
	})
}

func fxBuildResult() pipeline.ExecutionResult {
	return pipeline.ExecutionResult{
		ExternalID: fxBuildID,
		Summary:    "Build terminated with state: FAILED",
		URL:        "https://console.aws.amazon.com/codebuild/home?region=eu-west-1#/builds/" + fxBuildID + "/view/new",
		ErrorCode:  "JobFailed",
	}
}

func fxArtifact() *pipeline.ArtifactLinks {
	key := "my-lambda-pipeline/BuildOutpu/Xk3L9aQ"
	return &pipeline.ArtifactLinks{
		Bucket: "my-lambda-pipeline-artifacts-123456789012",
		Key:    key,
		PresignedURL: "https://my-lambda-pipeline-artifacts-123456789012.s3.eu-west-1.amazonaws.com/" + key +
			"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261106%2Feu-west-1%2Fs3%2Faws4_request" +
			"&X-Amz-Date=20261106T140240Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		Expires:    fxFailedAt.Add(24 * time.Hour),
		ConsoleURL: "https://s3.console.aws.amazon.com/s3/object/my-lambda-pipeline-artifacts-123456789012?region=eu-west-1&prefix=" + key,
	}
}

func fxBuild(tail []string, trimmed bool) *pipeline.BuildDetails {
	return &pipeline.BuildDetails{
		ID:             fxBuildID,
		Status:         "FAILED",
		FailedPhase:    "BUILD",
		PhaseReason:    "COMMAND_EXECUTION_ERROR: Error while executing command: go test ./.... Reason: exit status 1",
		LogGroup:       "/aws/codebuild/my-lambda-pipeline-build",
		LogStream:      "9b0ac37f-d19e-4254-9079-f47e9a389eEX",
		LogURL:         "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logEvent:group=/aws/codebuild/my-lambda-pipeline-build;stream=9b0ac37f-d19e-4254-9079-f47e9a389eEX",
		LogTail:        tail,
		LogTailTrimmed: trimmed,
	}
}

var goTestTail = []string{
	"[Container] 2026/11/06 14:02:11.204719 Running command go test ./...",
	"ok  \tgithub.com/example/my-lambda/internal/config\t0.012s",
	"--- FAIL: TestRouter (0.00s)",
	"    --- FAIL: TestRouter/unknown_route (0.00s)",
	"        router_test.go:48: GET /nope: got status 500, want 404",
	"panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
	"\tpanic: runtime error: invalid memory address or nil pointer dereference",
	"[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x5d3a1c]",
	"FAIL\tgithub.com/example/my-lambda/functions/app\t0.031s",
	"FAIL",
	"",
	"[Container] 2026/11/06 14:02:14.882166 Command did not exit successfully go test ./... exit status 1",
	"[Container] 2026/11/06 14:02:14.886270 Phase complete: BUILD State: FAILED",
	"[Container] 2026/11/06 14:02:14.886291 Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: go test ./.... Reason: exit status 1",
}

// goldenCase is one message the golden files pin.
type goldenCase struct {
	name string
	n    pipeline.Notification
	run  pipeline.Run
	d    pipeline.Details
}

func goldenCases() []goldenCase {
	buildFailed := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit())

	deployRes := pipeline.ExecutionResult{
		ExternalID: "my-lambda-app",
		Summary:    "Stack my-lambda-app: UPDATE_ROLLBACK_COMPLETE. Function (AWS::Lambda::Function) UPDATE_FAILED",
		ErrorCode:  "JobFailed",
	}
	deployFailed := fxRun("CreateUpdateLambda", "Deploy", lambdaAct, deployRes, fxCommit())

	recoveredAt := fxFailedAt.Add(time.Hour + 42*time.Minute)
	recovered := pipeline.Run{
		Pipeline: fxPipeline, ExecutionID: "c81e728d-9d4c-4f63-a8b0-2f1e6d5c4b3a",
		Progress: pipeline.Progress{Status: pipeline.StatusSucceeded, Attempt: 1, At: recoveredAt},
		Commit: pipeline.Commit{ID: "9d5ed678fe57bcca610140957afab571c0a7f3e2",
			Message: "Guard the router against nil routes\n\nFollow-up to 4f2a9c1e: the NotFound handler is now registered first.",
			Author:  "Ben Okafor <ben@example.com>"},
	}

	var longTail []string
	for i := 1; i <= 20; i++ {
		line := fmt.Sprintf("=== RUN   TestIntegration/case_%02d payload=", i)
		longTail = append(longTail, line+strings.Repeat(string(rune('a'+i%26)), 400-len(line)))
		if i == 15 {
			longTail = append(longTail, "DEBUG response body: {\"items\":["+strings.Repeat("{\"id\":1,\"name\":\"x\"},", 2500)+"]}")
		}
	}
	longTail = append(longTail, "--- FAIL: TestIntegration (12.40s)", "FAIL\tgithub.com/example/my-lambda/integration\t12.412s")

	pushRun := pipeline.Run{
		Pipeline: fxPipeline, ExecutionID: "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
		Progress: pipeline.Progress{Status: pipeline.StatusFailed, Attempt: 1, At: fxFailedAt},
		Trigger:  pipeline.Trigger{Type: pipeline.TriggerCreatePipeline},
		Failures: []pipeline.Failure{{Stage: "Source", Action: "Source", Attempt: 1, Type: ccSource, At: fxFailedAt,
			Result: pipeline.ExecutionResult{
				Summary: "The action failed because no branch named main was found in the selected AWS CodeCommit repository my-lambda. " +
					"Make sure you are using the correct branch name, and then try again. Error: null",
				ErrorCode: "ConfigurationError",
			}}},
	}

	degraded := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), pipeline.Commit{ID: fxCommitID})

	waiting := pipeline.Run{
		Pipeline: fxPipeline, ExecutionID: fxApprovalExec,
		Progress:  pipeline.Progress{Status: pipeline.StatusInProgress, Attempt: 1, At: fxAskedAt},
		Commit:    fxCommit(),
		StartedAt: fxAskedAt.Add(-3 * time.Minute),
	}

	return []goldenCase{
		{"build-failure", fxFailed(), buildFailed, pipeline.Details{
			Region: fxRegion, AccountID: "123456789012",
			Build: fxBuild(goTestTail, false), Artifact: fxArtifact(),
		}},
		{"deploy-failure", fxFailed(), deployFailed, pipeline.Details{
			Region: fxRegion, AccountID: "123456789012",
			RootCause: &pipeline.StackEvent{
				StackName: "my-lambda-app", LogicalResourceID: "Function", ResourceType: "AWS::Lambda::Function",
				Status: "UPDATE_FAILED",
				Reason: "Resource handler returned message: \"Uploaded file must be a non-empty zip (Service: Lambda, Status Code: 400, " +
					"Request ID: 5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f)\" (RequestToken: 7e8f9a0b-1c2d-4e3f-a4b5-c6d7e8f9a0b1, HandlerErrorCode: InvalidRequest)",
				Timestamp:  fxFailedAt.Add(-40 * time.Second),
				ConsoleURL: "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/events?stackId=my-lambda-app",
			},
			Artifact: fxArtifact(),
		}},
		{"recovered", pipeline.Notification{Type: pipeline.NotifyRecovered, Pipeline: fxPipeline, ExecutionID: recovered.ExecutionID,
			Attempt: 1, At: recoveredAt, BrokenSince: fxFailedAt, FirstFailedExecID: fxExec}, recovered, pipeline.Details{Region: fxRegion}},
		{"trimmed-log", fxFailed(), buildFailed, pipeline.Details{
			Region: fxRegion, Build: fxBuild(longTail, true), Artifact: fxArtifact(),
		}},
		{"push-to-start", pipeline.Notification{Type: pipeline.NotifyPushToStart, Pipeline: fxPipeline, ExecutionID: pushRun.ExecutionID,
			Attempt: 1, At: fxFailedAt}, pushRun, pipeline.Details{Region: fxRegion}},
		{"approval", fxApproval(), waiting, pipeline.Details{Region: fxRegion}},
		{"degraded", fxFailed(), degraded, pipeline.Details{
			Region: fxRegion,
			Degraded: []string{
				"commit: AccessDeniedException: not authorized to perform codecommit:GetCommit",
				"build: ThrottlingException: Rate exceeded",
				"build log: AccessDeniedException",
				"artifact link: no BuildOutput artifact recorded",
			},
		}},
	}
}
