package enrich_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/enrich"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

const (
	region       = "us-east-1"
	account      = "123456789012"
	pipelineName = "my-lambda-pipeline"
	executionID  = "5e7c0000-0000-4000-8000-000000000042"
	repository   = "my-lambda"
	commitID     = "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"
	project      = "my-lambda-build"
	buildUUID    = "9b0ac37f-d19e-4254-9079-f47e9a389eb0"
	buildID      = project + ":" + buildUUID
	bucket       = "my-lambda-artifacts"
	artifactKey  = "my-lambda-pipeline/BuildOutput/Xy12Abc"
	appStack     = "my-lambda-app"
)

// t0 is when the run started; now is when the notification is sent.
var (
	t0  = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	now = t0.Add(15 * time.Minute)
)

// world is every fake the enricher talks to, with a store of the artifact.
type world struct {
	builds  *awsfake.CodeBuild
	logs    *awsfake.Logs
	stacks  *awsfake.CloudFormation
	commits *awsfake.CodeCommit
	execs   *awsfake.CodePipeline
	s3URL   string
	e       *enrich.Enricher
}

var artifactBytes = []byte("PK\x03\x04 the BuildOutput zip")

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		builds:  awsfake.NewCodeBuild(t),
		logs:    awsfake.NewLogs(t),
		stacks:  awsfake.NewCloudFormation(t),
		commits: awsfake.NewCodeCommit(t, repository),
		execs:   awsfake.NewCodePipeline(t, pipelineName),
	}
	w.commits.AddCommit(repository, awsfake.Commit{ID: commitID, Message: "Retry with backoff\n", AuthorName: "Ana Lima", AuthorEmail: "ana@example.com", AuthorDate: t0})

	s3srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(s3srv.Close)
	w.s3URL = s3srv.URL
	creds := credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", "")
	s3c := s3.NewFromConfig(aws.Config{Region: region, Credentials: creds, BaseEndpoint: aws.String(s3srv.URL)},
		func(o *s3.Options) { o.UsePathStyle, o.HTTPClient = true, awsfake.HTTPClient() })
	ctx := context.Background()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(artifactKey), Body: bytes.NewReader(artifactBytes)}); err != nil {
		t.Fatal(err)
	}

	w.e = &enrich.Enricher{
		Builds: w.builds.Client(t), Logs: w.logs.Client(t), Stacks: w.stacks.Client(t),
		// The CodeCommit and CodePipeline fakes' own clients do not send through
		// awsfake.HTTPClient (see there for the race it closes).
		Commits:    w.commits.Client(t, func(o *codecommit.Options) { o.HTTPClient = awsfake.HTTPClient() }),
		Executions: codepipelineapi.Reader{API: w.execs.Client(t, func(o *codepipeline.Options) { o.HTTPClient = awsfake.HTTPClient() }), MaxActionPages: 5},
		Presign:    &enrich.S3Presigner{Credentials: creds, Region: region, Endpoint: s3srv.URL, Clock: pipeline.ClockFunc(func() time.Time { return now })},
		Region:     region, AccountID: account,
		Clock: pipeline.ClockFunc(func() time.Time { return now }),
	}
	return w
}

// scriptBuild makes the failed build and its 30-line log.
func (w *world) scriptBuild() {
	w.builds.AddBuild(awsfake.FailedBuild(buildID, t0.Add(time.Minute), "BUILD", "COMMAND_EXECUTION_ERROR",
		"Error while executing command: go test ./.... Reason: exit status 1"))
	var events []awsfake.LogEvent
	for i := range 30 {
		events = append(events, awsfake.LogEvent{Timestamp: t0.Add(2*time.Minute + time.Duration(i)*time.Second), Message: fmt.Sprintf("log line %02d\n", i)})
	}
	w.logs.PutLogEvents("/aws/codebuild/"+project, buildUUID, events...)
}

func progress(s pipeline.Status, at time.Time) pipeline.Progress {
	return pipeline.Progress{Status: s, Attempt: 1, At: at}
}

// sourceStage is a succeeded CodeCommit source, as the events record it.
func sourceStage() pipeline.Stage {
	return pipeline.Stage{Name: "Source", Progress: progress(pipeline.StatusSucceeded, t0.Add(30*time.Second)), StartedAt: t0,
		Actions: map[string]pipeline.Action{"Source": {Name: "Source", Progress: progress(pipeline.StatusSucceeded, t0.Add(30*time.Second)), StartedAt: t0,
			Type: pipeline.ActionType{Owner: "AWS", Category: "Source", Provider: "CodeCommit", Version: "1"},
			Result: pipeline.ExecutionResult{ExternalID: commitID,
				URL: "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/" + repository + "/commit/" + commitID + "?region=us-east-1"}}}}
}

func buildStage(status pipeline.Status) pipeline.Stage {
	a := pipeline.Action{Name: "Build", Progress: progress(status, t0.Add(5*time.Minute)), StartedAt: t0.Add(time.Minute),
		Type:            pipeline.ActionType{Owner: "AWS", Category: "Build", Provider: "CodeBuild", Version: "1"},
		Result:          pipeline.ExecutionResult{ExternalID: buildID},
		OutputArtifacts: []pipeline.Artifact{{Name: pipeline.ArtifactBuildOutput, Bucket: bucket, Key: artifactKey}}}
	if status == pipeline.StatusFailed {
		a.Result.Summary, a.Result.ErrorCode = "Build terminated with state: FAILED", "JobFailed"
	}
	return pipeline.Stage{Name: "BuildAndTest", Progress: a.Progress, StartedAt: a.StartedAt, Actions: map[string]pipeline.Action{"Build": a}}
}

func deployStage(externalID string) pipeline.Stage {
	a := pipeline.Action{Name: "Deploy", Progress: progress(pipeline.StatusFailed, t0.Add(12*time.Minute)), StartedAt: t0.Add(6 * time.Minute),
		Type:   pipeline.ActionType{Owner: "AWS", Category: "Invoke", Provider: "Lambda", Version: "1"},
		Result: pipeline.ExecutionResult{ExternalID: externalID, Summary: "Stack update failed", ErrorCode: "JobFailed"}}
	return pipeline.Stage{Name: enrich.StageCreateUpdateLambda, Progress: a.Progress, StartedAt: a.StartedAt, Actions: map[string]pipeline.Action{"Deploy": a}}
}

// runWith is a run of the pipeline with the given stages; its commit is known by id only
// (the push was not recorded).
func runWith(status pipeline.Status, stages ...pipeline.Stage) pipeline.Run {
	r := pipeline.Run{Pipeline: pipelineName, ExecutionID: executionID, Progress: progress(status, t0.Add(13*time.Minute)),
		Commit: pipeline.Commit{ID: commitID}, StartedAt: t0, Stages: map[string]pipeline.Stage{}}
	for _, s := range stages {
		r.Stages[s.Name] = s
	}
	return r
}

func failed() pipeline.Notification {
	return pipeline.Notification{Type: pipeline.NotifyFailed, Pipeline: pipelineName, ExecutionID: executionID, Attempt: 1, At: t0.Add(13 * time.Minute)}
}

func TestBuildFailure(t *testing.T) {
	w := newWorld(t)
	w.scriptBuild()
	run := runWith(pipeline.StatusFailed, sourceStage(), buildStage(pipeline.StatusFailed))

	d := w.e.Enrich(context.Background(), failed(), run)

	if len(d.Degraded) != 0 {
		t.Errorf("degraded: %q", d.Degraded)
	}
	if d.Region != region || d.AccountID != account ||
		d.ExecutionURL != "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/my-lambda-pipeline/executions/"+executionID+"/timeline?region=us-east-1" {
		t.Errorf("region %q account %q execution link %q", d.Region, d.AccountID, d.ExecutionURL)
	}
	if d.Commit.Author != "Ana Lima <ana@example.com>" || d.Commit.Message != "Retry with backoff" || d.Commit.ID != commitID ||
		d.Commit.URL != "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/my-lambda/commit/"+commitID+"?region=us-east-1" {
		t.Errorf("commit = %+v", d.Commit)
	}
	if d.Failure != nil {
		t.Errorf("failure looked up although the record has it: %+v", d.Failure)
	}
	b := d.Build
	if b == nil {
		t.Fatal("no build details")
	}
	if b.ID != buildID || b.Status != "FAILED" || b.FailedPhase != "BUILD" ||
		b.PhaseReason != "COMMAND_EXECUTION_ERROR: Error while executing command: go test ./.... Reason: exit status 1" {
		t.Errorf("build = %+v", b)
	}
	if b.LogGroup != "/aws/codebuild/"+project || b.LogStream != buildUUID ||
		b.LogURL != "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEvent:group=/aws/codebuild/my-lambda-build;stream="+buildUUID {
		t.Errorf("log = %s %s %s", b.LogGroup, b.LogStream, b.LogURL)
	}
	var want []string
	for i := 10; i < 30; i++ {
		want = append(want, fmt.Sprintf("log line %02d", i))
	}
	if !slices.Equal(b.LogTail, want) || b.LogTailTrimmed {
		t.Errorf("log tail (trimmed %v) = %q, want %q", b.LogTailTrimmed, b.LogTail, want)
	}
	if d.RootCause != nil || w.stacks.Calls(awsfake.OpDescribeStackEvents) != 0 {
		t.Errorf("a build failure looked at stacks: %+v", d.RootCause)
	}

	a := d.Artifact
	if a == nil {
		t.Fatal("no artifact links")
	}
	if a.Bucket != bucket || a.Key != artifactKey ||
		a.ConsoleURL != "https://s3.console.aws.amazon.com/s3/object/my-lambda-artifacts?region=us-east-1&prefix=my-lambda-pipeline%2FBuildOutput%2FXy12Abc" {
		t.Errorf("artifact = %+v", a)
	}
	if !a.Expires.Equal(now.Add(24 * time.Hour)) {
		t.Errorf("expires %v, want the default 24 h after %v", a.Expires, now)
	}
	if got := expiresParam(t, a.PresignedURL); got != "86400" {
		t.Errorf("X-Amz-Expires = %s, want 86400", got)
	}
	// The link is a plain GET: no credentials, no SDK.
	if got := get(t, a.PresignedURL); !bytes.Equal(got, artifactBytes) {
		t.Errorf("GET presigned link = %q, want the artifact", got)
	}
}

func expiresParam(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("X-Amz-Expires")
}

func get(t *testing.T, link string) []byte {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", link, resp.StatusCode, body)
	}
	return body
}

func TestLinkExpiryIsBounded(t *testing.T) {
	for _, tc := range []struct {
		asked time.Duration
		want  time.Duration
	}{
		{0, 24 * time.Hour},
		{2 * time.Hour, 2 * time.Hour},
		{10 * time.Second, time.Minute},
		{30 * 24 * time.Hour, 7 * 24 * time.Hour},
	} {
		t.Run(tc.asked.String(), func(t *testing.T) {
			w := newWorld(t)
			w.e.LinkExpiry = tc.asked
			d := w.e.Enrich(context.Background(), failed(), runWith(pipeline.StatusFailed, sourceStage(), buildStage(pipeline.StatusFailed)))
			if d.Artifact == nil || d.Artifact.PresignedURL == "" {
				t.Fatalf("no presigned link: %+v (%q)", d.Artifact, d.Degraded)
			}
			if got, want := expiresParam(t, d.Artifact.PresignedURL), fmt.Sprint(int(tc.want.Seconds())); got != want {
				t.Errorf("X-Amz-Expires = %s, want %s", got, want)
			}
			if !d.Artifact.Expires.Equal(now.Add(tc.want)) {
				t.Errorf("Expires = %v, want %v", d.Artifact.Expires, now.Add(tc.want))
			}
		})
	}
}

// scriptStack writes a realistic history of the app stack: yesterday's update that failed on
// another resource (must be ignored), then today's: the Function fails for a real reason, the
// Alias update is cancelled because of it, the stack summarises both and rolls back.
func (w *world) scriptStack() {
	stack := func(status, reason string, at time.Time) awsfake.StackEvent {
		return awsfake.StackEvent{LogicalResourceID: appStack, ResourceType: "AWS::CloudFormation::Stack", Status: status, Reason: reason, Timestamp: at}
	}
	res := func(logical, typ, status, reason string, at time.Time) awsfake.StackEvent {
		return awsfake.StackEvent{LogicalResourceID: logical, PhysicalResourceID: strings.ToLower(logical), ResourceType: typ, Status: status, Reason: reason, Timestamp: at}
	}
	y := t0.Add(-24 * time.Hour)
	w.stacks.AddStackEvents(appStack,
		stack("UPDATE_IN_PROGRESS", "User Initiated", y),
		res("Role", "AWS::IAM::Role", "UPDATE_IN_PROGRESS", "", y.Add(time.Second)),
		res("Role", "AWS::IAM::Role", "UPDATE_FAILED", "Yesterday's failure: policy document malformed", y.Add(5*time.Second)),
		stack("UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Role].", y.Add(6*time.Second)),
		res("Role", "AWS::IAM::Role", "UPDATE_COMPLETE", "", y.Add(20*time.Second)),
		stack("UPDATE_ROLLBACK_COMPLETE", "", y.Add(30*time.Second)),
	)
	d := t0.Add(7 * time.Minute)
	at := func(s int) time.Time { return d.Add(time.Duration(s) * time.Second) }
	w.stacks.AddStackEvents(appStack,
		stack("UPDATE_IN_PROGRESS", "User Initiated", at(0)),
		res("Function", "AWS::Lambda::Function", "UPDATE_IN_PROGRESS", "", at(2)),
		res("Alias", "AWS::Lambda::Alias", "UPDATE_IN_PROGRESS", "", at(2)),
		res("Function", "AWS::Lambda::Function", "UPDATE_FAILED",
			"Resource handler returned message: \"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.\"", at(4)),
		res("Alias", "AWS::Lambda::Alias", "UPDATE_FAILED", "Resource update cancelled", at(5)),
		stack("UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Alias, Function].", at(6)),
		res("Function", "AWS::Lambda::Function", "UPDATE_IN_PROGRESS", "", at(8)),
		res("Function", "AWS::Lambda::Function", "UPDATE_COMPLETE", "", at(12)),
		res("Alias", "AWS::Lambda::Alias", "UPDATE_COMPLETE", "", at(13)),
		stack("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "", at(15)),
		stack("UPDATE_ROLLBACK_COMPLETE", "", at(16)),
	)
}

func TestDeployFailureRootCause(t *testing.T) {
	w := newWorld(t)
	w.scriptStack()
	w.stacks.SetStackEventsPageSize(4) // today's operation (11 events) ends on the third page

	d := w.e.Enrich(context.Background(), failed(), runWith(pipeline.StatusFailed, sourceStage(), buildStage(pipeline.StatusSucceeded), deployStage(appStack)))

	if len(d.Degraded) != 0 {
		t.Errorf("degraded: %q", d.Degraded)
	}
	rc := d.RootCause
	if rc == nil {
		t.Fatal("no root cause")
	}
	if rc.LogicalResourceID != "Function" || rc.ResourceType != "AWS::Lambda::Function" || rc.Status != "UPDATE_FAILED" || rc.StackName != appStack ||
		rc.Reason != "Resource handler returned message: \"Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.\"" ||
		!rc.Timestamp.Equal(t0.Add(7*time.Minute+4*time.Second)) {
		t.Errorf("root cause = %+v", rc)
	}
	if !strings.HasPrefix(rc.ConsoleURL, "https://us-east-1.console.aws.amazon.com/cloudformation/home?region=us-east-1#/stacks/events?stackId=arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack%2Fmy-lambda-app%2F") {
		t.Errorf("console link = %s", rc.ConsoleURL)
	}
	// The walk stopped at today's operation start, on the third page.
	if n := w.stacks.Calls(awsfake.OpDescribeStackEvents); n != 3 {
		t.Errorf("DescribeStackEvents pages read = %d, want 3", n)
	}
	// A deploy failure is no build; the BuildOutput artifact is still linked.
	if d.Build != nil || w.builds.Calls(awsfake.OpBatchGetBuilds) != 0 || w.logs.Calls(awsfake.OpGetLogEvents) != 0 {
		t.Errorf("a deploy failure looked at builds: %+v", d.Build)
	}
	if d.Artifact == nil || d.Artifact.PresignedURL == "" {
		t.Errorf("artifact = %+v", d.Artifact)
	}
}

func TestDeployStackNameFromConfigurationWhenTheResultHasNone(t *testing.T) {
	w := newWorld(t)
	w.scriptStack()
	w.e.StackNames = map[string]string{enrich.StageCreateUpdateLambda: appStack}
	// A request id is not a stack name, even if it reads like one.
	d := w.e.Enrich(context.Background(), failed(), runWith(pipeline.StatusFailed, sourceStage(), deployStage("e3b0c442-98fc-4c14-9afb-f4c8996fb924")))
	if d.RootCause == nil || d.RootCause.LogicalResourceID != "Function" {
		t.Errorf("root cause = %+v (%q)", d.RootCause, d.Degraded)
	}

	// A pipeline named after no project, and no configured name: the stack is not known.
	w.e.StackNames = nil
	n, run := failed(), runWith(pipeline.StatusFailed, sourceStage(), deployStage(""))
	n.Pipeline, run.Pipeline = "Legacy_Pipeline", "Legacy_Pipeline"
	d = w.e.Enrich(context.Background(), n, run)
	if d.RootCause != nil || !slices.Contains(d.Degraded, "deploy root cause: stack name unknown for stage CreateUpdateLambda (cloudformation:DescribeStackEvents)") {
		t.Errorf("no stack name: root cause %+v, degraded %q", d.RootCause, d.Degraded)
	}
}

// One control plane for many projects: the stack of a project's deploy stage derives from its
// pipeline's name (my-lambda-pipeline deploys my-lambda-app), with nothing configured, and
// wins over a configured name, which is another project's.
func TestDeployStackNameFromTheProject(t *testing.T) {
	w := newWorld(t)
	w.scriptStack()
	w.e.StackNames = map[string]string{enrich.StageCreateUpdateLambda: "other-app"}
	d := w.e.Enrich(context.Background(), failed(), runWith(pipeline.StatusFailed, sourceStage(), deployStage("")))
	if d.RootCause == nil || d.RootCause.LogicalResourceID != "Function" || !strings.Contains(d.RootCause.StackName, appStack) {
		t.Errorf("root cause = %+v (%q), want %s's", d.RootCause, d.Degraded, appStack)
	}
}

// A deploy that failed before it changed the stack (its change set refused, say) leaves the
// stack's history as it was: the last operation's failure is an older one, not this cause.
func TestDeployFailureBeforeTheStackChangedHasNoStaleRootCause(t *testing.T) {
	w := newWorld(t)
	w.scriptStack() // its last operation started at t0+7m
	deploy := deployStage(appStack)
	a := deploy.Actions["Deploy"]
	a.StartedAt, a.At = t0.Add(20*time.Minute), t0.Add(21*time.Minute)
	deploy.Actions["Deploy"], deploy.Progress = a, a.Progress

	d := w.e.Enrich(context.Background(), failed(), runWith(pipeline.StatusFailed, sourceStage(), deploy))

	if d.RootCause != nil || len(d.Degraded) != 0 {
		t.Errorf("root cause %+v, degraded %q; want neither", d.RootCause, d.Degraded)
	}
}

func TestFailureFromListActionExecutions(t *testing.T) {
	w := newWorld(t)
	w.scriptBuild()
	w.execs.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: executionID, Status: cptypes.PipelineExecutionStatusFailed})
	// More actions than one page holds, the failed one last.
	var actions []awsfake.ActionExecution
	for i := range 120 {
		actions = append(actions, awsfake.ActionExecution{Stage: "Source", Action: "Source", ID: fmt.Sprintf("a-%d", i),
			Status: cptypes.ActionExecutionStatusSucceeded, StartTime: t0, LastUpdateTime: t0.Add(time.Second), Category: "Source", Owner: "AWS", Provider: "CodeCommit", Version: "1"})
	}
	actions = append(actions, awsfake.ActionExecution{Stage: "BuildAndTest", Action: "Build", ID: "a-build", Status: cptypes.ActionExecutionStatusFailed,
		StartTime: t0.Add(time.Minute), LastUpdateTime: t0.Add(5 * time.Minute), Category: "Build", Owner: "AWS", Provider: "CodeBuild", Version: "1",
		ExternalID: buildID, Summary: "Build terminated with state: FAILED", ErrorCode: "JobFailed", ErrorMessage: "Build terminated with state: FAILED. Phase BUILD: COMMAND_EXECUTION_ERROR",
		OutputArtifacts: []awsfake.Artifact{{Name: pipeline.ArtifactBuildOutput, Bucket: bucket, Key: artifactKey}}})
	w.execs.SetActionExecutions(executionID, actions...)
	// The record knows only that the run failed: the action events were lost.
	run := runWith(pipeline.StatusFailed)

	d := w.e.Enrich(context.Background(), failed(), run)

	f := d.Failure
	if f == nil {
		t.Fatalf("no failure looked up (%q)", d.Degraded)
	}
	if f.Stage != "BuildAndTest" || f.Action != "Build" || f.Attempt != 1 || f.Type.Provider != "CodeBuild" || f.Result.ExternalID != buildID ||
		f.Result.ErrorCode != "JobFailed" || f.Result.Summary != "Build terminated with state: FAILED. Phase BUILD: COMMAND_EXECUTION_ERROR" {
		t.Errorf("failure = %+v", f)
	}
	// What was looked up feeds the next look-ups.
	if d.Build == nil || d.Build.FailedPhase != "BUILD" || len(d.Build.LogTail) != 20 {
		t.Errorf("build = %+v", d.Build)
	}
	if d.Artifact == nil || d.Artifact.Key != artifactKey {
		t.Errorf("artifact = %+v", d.Artifact)
	}
	if n := w.execs.Calls(awsfake.OpListActionExecutions); n != 2 {
		t.Errorf("ListActionExecutions calls = %d, want 2 pages", n)
	}
}

func TestRecoveredNeedsOnlyTheLinkAndTheCommit(t *testing.T) {
	w := newWorld(t)
	w.scriptBuild()
	w.scriptStack()
	run := runWith(pipeline.StatusSucceeded, sourceStage(), buildStage(pipeline.StatusSucceeded))
	n := pipeline.Notification{Type: pipeline.NotifyRecovered, Pipeline: pipelineName, ExecutionID: executionID, Attempt: 1, At: now}

	d := w.e.Enrich(context.Background(), n, run)

	if d.ExecutionURL == "" || d.Commit.Author != "Ana Lima <ana@example.com>" {
		t.Errorf("link %q, commit %+v", d.ExecutionURL, d.Commit)
	}
	if d.Build != nil || d.RootCause != nil || d.Artifact != nil || d.Failure != nil || len(d.Degraded) != 0 {
		t.Errorf("recovered details = %+v", d)
	}
	for op, calls := range map[string]int{
		awsfake.OpBatchGetBuilds: w.builds.Calls(awsfake.OpBatchGetBuilds), awsfake.OpGetLogEvents: w.logs.Calls(awsfake.OpGetLogEvents),
		awsfake.OpDescribeStackEvents: w.stacks.Calls(awsfake.OpDescribeStackEvents), awsfake.OpListActionExecutions: w.execs.Calls(awsfake.OpListActionExecutions),
	} {
		if calls != 0 {
			t.Errorf("recovered called %s %d times", op, calls)
		}
	}

	// A commit the record has in full is not looked up.
	run.Commit = pipeline.Commit{ID: commitID, Author: "Ana Lima <ana@example.com>", Message: "Retry with backoff"}
	w.e.Enrich(context.Background(), n, run)
	if c := w.commits.Calls(awsfake.OpGetCommit); c != 1 {
		t.Errorf("GetCommit calls = %d, want 1 (the first run only)", c)
	}
}

func TestPushToStartMakesNoCalls(t *testing.T) {
	w := newWorld(t)
	n := pipeline.Notification{Type: pipeline.NotifyPushToStart, Pipeline: pipelineName, ExecutionID: executionID, At: now}
	d := w.e.Enrich(context.Background(), n, runWith(pipeline.StatusFailed))
	if d.ExecutionURL == "" || d.Commit != (pipeline.Commit{}) || d.Build != nil || d.Artifact != nil || w.commits.Calls(awsfake.OpGetCommit) != 0 {
		t.Errorf("push-to-start details = %+v", d)
	}
}

// Issue 9, defect 6: a pipeline of another account or region is looked up nowhere (this
// account's APIs know nothing of it, or know a same-named one); its link opens its region.
func TestForeignPipelineIsNotLookedUp(t *testing.T) {
	w := newWorld(t)
	w.scriptBuild()
	w.scriptStack()
	foreign := "arn:aws:codepipeline:eu-west-1:222222222222:" + pipelineName
	n := failed()
	n.Pipeline = foreign
	run := runWith(pipeline.StatusFailed, sourceStage(), buildStage(pipeline.StatusFailed))
	run.Pipeline = foreign

	d := w.e.Enrich(context.Background(), n, run)

	if d.Region != "eu-west-1" || d.AccountID != "222222222222" ||
		d.ExecutionURL != "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/my-lambda-pipeline/executions/"+executionID+"/timeline?region=eu-west-1" {
		t.Errorf("region %q account %q execution link %q", d.Region, d.AccountID, d.ExecutionURL)
	}
	if d.Build != nil || d.RootCause != nil || d.Artifact != nil || d.Failure != nil || d.Commit != (pipeline.Commit{}) {
		t.Errorf("foreign details = %+v", d)
	}
	if len(d.Degraded) != 1 || !strings.Contains(d.Degraded[0], "222222222222") {
		t.Errorf("degraded = %q, want one line that names the account", d.Degraded)
	}
	for op, calls := range map[string]int{
		awsfake.OpBatchGetBuilds: w.builds.Calls(awsfake.OpBatchGetBuilds), awsfake.OpGetLogEvents: w.logs.Calls(awsfake.OpGetLogEvents),
		awsfake.OpDescribeStackEvents: w.stacks.Calls(awsfake.OpDescribeStackEvents), awsfake.OpListActionExecutions: w.execs.Calls(awsfake.OpListActionExecutions),
		awsfake.OpGetCommit: w.commits.Calls(awsfake.OpGetCommit),
	} {
		if calls != 0 {
			t.Errorf("a foreign pipeline's notification called %s %d times", op, calls)
		}
	}
}

// failingPresigner stands for a presigner whose credentials cannot be had.
type failingPresigner struct{}

func (failingPresigner) PresignGetObject(context.Context, string, string, time.Duration) (string, error) {
	return "", errors.New("retrieve credentials: no EC2 IMDS role found")
}

// Each look-up that fails degrades the message by one readable line, and the others still
// fill theirs.
func TestEachLookupDegrades(t *testing.T) {
	// A hung call ends when its look-up's timeout fires; the other look-ups of the case must
	// finish well within it on a loaded machine. Cases without a hung call get a timeout no
	// loopback call reaches.
	const hangTimeout, timeout = time.Second, time.Minute
	type scenario int
	const (
		buildRun scenario = iota
		deployRun
		lostEventsRun
	)
	cases := []struct {
		name     string
		scenario scenario
		fault    func(w *world)
		want     string
		// still checks what the failed look-up must not have taken with it.
		still func(t *testing.T, d pipeline.Details)
	}{
		{"codebuild throttled", buildRun, func(w *world) { w.builds.FailNext(awsfake.OpBatchGetBuilds, awsfake.Throttling, 3) },
			"build status: throttled (codebuild:BatchGetBuilds)", logTailStill},
		{"codebuild denied", buildRun, func(w *world) {
			w.builds.FailNext(awsfake.OpBatchGetBuilds, awsfake.AccessDeniedFor("codebuild:BatchGetBuilds"), 1)
		}, "build status: access denied (codebuild:BatchGetBuilds)", logTailStill},
		{"codebuild timeout", buildRun, func(w *world) { w.builds.Hang(awsfake.OpBatchGetBuilds, 1) },
			"build status: timed out after 1s (codebuild:BatchGetBuilds)", logTailStill},
		{"logs throttled", buildRun, func(w *world) { w.logs.FailNext(awsfake.OpGetLogEvents, awsfake.Throttling, 3) },
			"build log: throttled (logs:GetLogEvents)", buildStatusStill},
		{"logs denied", buildRun, func(w *world) {
			w.logs.FailNext(awsfake.OpGetLogEvents, awsfake.AccessDeniedFor("logs:GetLogEvents"), 1)
		}, "build log: access denied (logs:GetLogEvents)", buildStatusStill},
		{"logs timeout", buildRun, func(w *world) { w.logs.Hang(awsfake.OpGetLogEvents, 1) },
			"build log: timed out after 1s (logs:GetLogEvents)", buildStatusStill},
		{"log stream missing", buildRun, func(w *world) {
			w.builds.AddBuild(awsfake.Build{ID: buildID, Status: "FAILED", LogStream: "gone",
				Phases: []awsfake.BuildPhase{{Type: "BUILD", Status: "FAILED"}}})
		}, "build log: not found (logs:GetLogEvents)", buildStatusStill},
		{"cloudformation throttled", deployRun, func(w *world) {
			w.stacks.FailNext(awsfake.OpDescribeStackEvents, awsfake.QueryThrottling, 3)
		}, "deploy root cause: throttled (cloudformation:DescribeStackEvents)", artifactStill},
		{"cloudformation denied", deployRun, func(w *world) {
			w.stacks.FailNext(awsfake.OpDescribeStackEvents, awsfake.QueryAccessDeniedFor("cloudformation:DescribeStackEvents"), 1)
		}, "deploy root cause: access denied (cloudformation:DescribeStackEvents)", artifactStill},
		{"cloudformation timeout", deployRun, func(w *world) { w.stacks.Hang(awsfake.OpDescribeStackEvents, 1) },
			"deploy root cause: timed out after 1s (cloudformation:DescribeStackEvents)", artifactStill},
		{"stack missing", deployRun, func(w *world) { w.stacks.DeleteStack(appStack) },
			"deploy root cause: not found (cloudformation:DescribeStackEvents)", artifactStill},
		{"codecommit throttled", buildRun, func(w *world) { w.commits.FailNext(awsfake.OpGetCommit, awsfake.Throttling, 3) },
			"commit author and message: throttled (codecommit:GetCommit)", buildStatusStill},
		{"codecommit denied", buildRun, func(w *world) {
			w.commits.FailNext(awsfake.OpGetCommit, awsfake.AccessDeniedFor("codecommit:GetCommit"), 1)
		}, "commit author and message: access denied (codecommit:GetCommit)", buildStatusStill},
		{"codepipeline throttled", lostEventsRun, func(w *world) {
			w.execs.FailNext(awsfake.OpListActionExecutions, awsfake.Throttling, 3)
		}, "failed action: throttled (codepipeline:ListActionExecutions)", commitStill},
		{"codepipeline denied", lostEventsRun, func(w *world) {
			w.execs.FailNext(awsfake.OpListActionExecutions, awsfake.AccessDeniedFor("codepipeline:ListActionExecutions"), 1)
		}, "failed action: access denied (codepipeline:ListActionExecutions)", commitStill},
		{"presign fails", buildRun, func(w *world) { w.e.Presign = failingPresigner{} },
			"artifact download link: retrieve credentials: no EC2 IMDS role found (s3:GetObject presign)", func(t *testing.T, d pipeline.Details) {
				t.Helper()
				buildStatusStill(t, d)
				if d.Artifact == nil || d.Artifact.ConsoleURL == "" || d.Artifact.PresignedURL != "" {
					t.Errorf("artifact = %+v, want the console link without a presigned one", d.Artifact)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.e.Timeout = timeout
			if strings.Contains(tc.want, "timed out") {
				w.e.Timeout = hangTimeout
			}
			w.scriptBuild()
			w.scriptStack()
			var run pipeline.Run
			switch tc.scenario {
			case buildRun:
				run = runWith(pipeline.StatusFailed, sourceStage(), buildStage(pipeline.StatusFailed))
			case deployRun:
				run = runWith(pipeline.StatusFailed, sourceStage(), buildStage(pipeline.StatusSucceeded), deployStage(appStack))
			case lostEventsRun:
				run = runWith(pipeline.StatusFailed, sourceStage())
				w.execs.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: executionID, Status: cptypes.PipelineExecutionStatusFailed})
			}
			tc.fault(w)

			d := w.e.Enrich(context.Background(), failed(), run)

			if !slices.Equal(d.Degraded, []string{tc.want}) {
				t.Errorf("degraded = %q, want [%q]", d.Degraded, tc.want)
			}
			if d.ExecutionURL == "" {
				t.Error("no execution link")
			}
			tc.still(t, d)
		})
	}
}

func logTailStill(t *testing.T, d pipeline.Details) {
	t.Helper()
	// Without BatchGetBuilds, the log is read at CodeBuild's default location.
	if d.Build == nil || len(d.Build.LogTail) != 20 || d.Build.LogTail[19] != "log line 29" || d.Build.Status != "" ||
		d.Build.LogURL != "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fmy-lambda-build/log-events/"+buildUUID {
		t.Errorf("build = %+v", d.Build)
	}
	artifactStill(t, d)
}

func buildStatusStill(t *testing.T, d pipeline.Details) {
	t.Helper()
	if d.Build == nil || d.Build.Status != "FAILED" || d.Build.FailedPhase != "BUILD" {
		t.Errorf("build = %+v", d.Build)
	}
	if d.Commit.ID != commitID {
		t.Errorf("commit = %+v", d.Commit)
	}
}

func artifactStill(t *testing.T, d pipeline.Details) {
	t.Helper()
	if d.Artifact == nil || d.Artifact.PresignedURL == "" {
		t.Errorf("artifact = %+v", d.Artifact)
	}
	if d.Commit.Author == "" {
		t.Errorf("commit = %+v", d.Commit)
	}
}

func commitStill(t *testing.T, d pipeline.Details) {
	t.Helper()
	if d.Failure != nil || d.Commit.Author != "Ana Lima <ana@example.com>" {
		t.Errorf("failure %+v, commit %+v", d.Failure, d.Commit)
	}
}
