package notify

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

func TestComposeConsoleLink(t *testing.T) {
	run := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit())
	m := Compose(fxFailed(), run, pipeline.Details{Region: "eu-west-1"})
	want := "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/my-lambda-pipeline/executions/" + fxExec + "/timeline?region=eu-west-1"
	if m.ConsoleURL != want {
		t.Errorf("built link = %q, want %q", m.ConsoleURL, want)
	}
	m = Compose(fxFailed(), run, pipeline.Details{Region: "eu-west-1", ExecutionURL: "https://example.com/exec"})
	if m.ConsoleURL != "https://example.com/exec" {
		t.Errorf("enrichment's link should win, got %q", m.ConsoleURL)
	}
	if m := Compose(fxFailed(), run, pipeline.Details{}); m.ConsoleURL != "" {
		t.Errorf("without a region there is no link, got %q", m.ConsoleURL)
	}
}

// Issue 9, defect 6: a pipeline of another account or region is named with them, so that it
// reads apart from the home's pipeline of the same name; its links open its own region; it
// belongs to no project, so its messages go to the control plane's own channels.
func TestComposeForeignPipeline(t *testing.T) {
	foreign := "arn:aws:codepipeline:us-east-1:222222222222:" + fxPipeline
	run := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit())
	run.Pipeline = foreign
	n := fxFailed()
	n.Pipeline = foreign
	m := Compose(n, run, pipeline.Details{Region: "eu-west-1"})
	if m.Pipeline != fxPipeline+" (222222222222/us-east-1)" || m.Project != "" {
		t.Errorf("pipeline %q project %q", m.Pipeline, m.Project)
	}
	want := "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/" + fxPipeline + "/executions/" + fxExec + "/timeline?region=us-east-1"
	if m.ConsoleURL != want {
		t.Errorf("link = %q, want %q", m.ConsoleURL, want)
	}
	if home := Compose(fxFailed(), fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit()), pipeline.Details{Region: "eu-west-1"}); home.Pipeline != fxPipeline {
		t.Errorf("the home's pipeline is named %q, want its name alone", home.Pipeline)
	}
	sns := RenderSNS(m)
	if !strings.Contains(sns.Subject, "(222222222222/us-east-1)") || sns.Attributes[AttrPipeline] != m.Pipeline {
		t.Errorf("SNS subject %q attributes %v", sns.Subject, sns.Attributes)
	}
}

func TestComposeFailure(t *testing.T) {
	known := &pipeline.Failure{Stage: "CreateUpdateLambda", Action: "Deploy", Type: lambdaAct,
		Result: pipeline.ExecutionResult{ErrorCode: "JobFailed", Summary: "from ListActionExecutions"}}

	t.Run("the run record wins", func(t *testing.T) {
		run := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit())
		m := Compose(fxFailed(), run, pipeline.Details{Failure: known})
		if m.Stage != "BuildAndTest" || m.Action != "Build" || m.Provider != "CodeBuild" || m.ErrorCode != "JobFailed" ||
			m.Summary != "Build terminated with state: FAILED" || !strings.Contains(m.ActionURL, "codebuild") {
			t.Errorf("got %+v", m)
		}
	})
	t.Run("enrichment fills an unknown failure", func(t *testing.T) {
		run := pipeline.Run{Pipeline: fxPipeline, ExecutionID: fxExec, Progress: pipeline.Progress{Status: pipeline.StatusFailed, Attempt: 1}}
		m := Compose(fxFailed(), run, pipeline.Details{Failure: known})
		if m.Stage != "CreateUpdateLambda" || m.Action != "Deploy" || m.Summary != "from ListActionExecutions" {
			t.Errorf("got %+v", m)
		}
	})
	t.Run("enrichment fills the action of a known stage", func(t *testing.T) {
		run := pipeline.Run{Pipeline: fxPipeline, ExecutionID: fxExec, Progress: pipeline.Progress{Status: pipeline.StatusFailed, Attempt: 1},
			Failures: []pipeline.Failure{{Stage: "CreateUpdateLambda", Attempt: 1}}}
		m := Compose(fxFailed(), run, pipeline.Details{Failure: known})
		if m.Action != "Deploy" || m.ErrorCode != "JobFailed" {
			t.Errorf("got %+v", m)
		}
	})
	t.Run("the notified attempt, not the latest", func(t *testing.T) {
		run := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit())
		run.Failures = append(run.Failures, pipeline.Failure{Stage: "CreateUpdateLambda", Action: "Deploy", Attempt: 2})
		if m := Compose(fxFailed(), run, pipeline.Details{}); m.Stage != "BuildAndTest" {
			t.Errorf("attempt 1 failed in BuildAndTest, got %q", m.Stage)
		}
	})
}

func TestComposeCommit(t *testing.T) {
	run := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), pipeline.Commit{ID: fxCommitID})
	d := pipeline.Details{Commit: pipeline.Commit{ID: "ignored", Message: "\n\n  Title line  \r\n\r\n\r\nBody one\r\nBody two\n\n\n", Author: "Ana"}}
	c := Compose(fxFailed(), run, d).Commit
	want := Commit{ID: fxCommitID, Title: "Title line", Body: "Body one\nBody two", Author: "Ana"}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if c.Short() != "4f2a9c1e" {
		t.Errorf("Short() = %q", c.Short())
	}
}

func TestComposeRecovered(t *testing.T) {
	c := goldenCases()[2]
	m := Compose(c.n, c.run, c.d)
	if m.BrokenFor != time.Hour+42*time.Minute || HumanDuration(m.BrokenFor) != "1h 42m" {
		t.Errorf("BrokenFor = %v", m.BrokenFor)
	}
	if m.FirstFailedExecutionID != fxExec || !strings.Contains(m.FirstFailedURL, fxExec) {
		t.Errorf("first failure %q %q", m.FirstFailedExecutionID, m.FirstFailedURL)
	}
	if m.Stage != "" || m.Build != nil || m.Status() != pipeline.StatusSucceeded {
		t.Errorf("a recovery carries no failure: %+v", m)
	}
	// A stage retry that turned the same execution green: no link to "another" execution.
	c.n.FirstFailedExecID = c.n.ExecutionID
	if m := Compose(c.n, c.run, c.d); m.FirstFailedURL != "" {
		t.Errorf("FirstFailedURL = %q", m.FirstFailedURL)
	}
}

// An approval is about a deploy that waits, not a failure: whatever enrichment or the run
// record say about a failure stays out, and the message says what waits, until when, and how
// to decide.
func TestComposeApproval(t *testing.T) {
	run := fxRun("CreateUpdateLambda", "Deploy", lambdaAct, pipeline.ExecutionResult{ErrorCode: "JobFailed", Summary: "an earlier attempt"}, fxCommit())
	run.ExecutionID = fxApprovalExec
	m := Compose(fxApproval(), run, pipeline.Details{Region: fxRegion, Build: fxBuild(goTestTail, false), Artifact: fxArtifact()})
	if m.Stage != "" || m.Summary != "" || m.Build != nil || m.Artifact != nil {
		t.Errorf("an approval carries no failure: %+v", m)
	}
	if m.Stack != "my-lambda-app" || !m.Deadline.Equal(fxAskedAt.Add(20*time.Hour)) || len(m.Widening) != 3 || m.Status() != pipeline.StatusInProgress {
		t.Errorf("stack %q deadline %v widening %q status %s", m.Stack, m.Deadline, m.Widening, m.Status())
	}
	slack, err := RenderSlack(m)
	if err != nil {
		t.Fatal(err)
	}
	s := RenderSNS(m)
	for name, text := range map[string]string{"Slack": string(slack), "SNS": s.Body} {
		for _, want := range []string{"my-lambda-app", "2026-11-21 06:04 UTC", "lp approve --deploy-stack my-lambda-app " + fxApprovalExec,
			`lp reject --deploy-stack my-lambda-app --reason \"WHY\" ` + fxApprovalExec, "arn:aws:s3:::my-lambda-uploads/*", m.ConsoleURL} {
			if name == "SNS" {
				want = strings.ReplaceAll(want, `\"`, `"`)
			}
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
	if s.Attributes[AttrType] != "approval" || s.Attributes[AttrStatus] != "IN_PROGRESS" || s.Attributes[AttrPipeline] != fxPipeline || s.Attributes[AttrProject] != "my-lambda" {
		t.Errorf("SNS attributes %v", s.Attributes)
	}
}

// The widening pipeline.ApprovalNotification keeps at its largest fits both channels whole:
// its bounds are below the notify package's limits.
func TestApprovalWideningBoundFitsTheMessages(t *testing.T) {
	a := pipeline.Approval{Key: pipeline.ApprovalKey{Pipeline: fxPipeline, ExecutionID: fxApprovalExec, Stack: "my-lambda-app", Deploy: "d"},
		RequestedAt: fxAskedAt, Deadline: fxAskedAt.Add(20 * time.Hour)}
	for i := 0; i < 200; i++ {
		a.Widening = append(a.Widening, fmt.Sprintf("Role%03d: added-resource: arn:aws:s3:::%s", i, strings.Repeat("b", 400)))
	}
	n := pipeline.ApprovalNotification(a)
	if n.WideningLeft == 0 || len(n.Widening)+n.WideningLeft != 200 {
		t.Fatalf("kept %d, left %d of 200", len(n.Widening), n.WideningLeft)
	}
	payload, s := checkLimits(t, Compose(n, pipeline.Run{}, pipeline.Details{Region: fxRegion}))
	more := "… and " + strconv.Itoa(n.WideningLeft) + " more changes"
	for name, text := range map[string]string{"Slack": string(payload), "SNS": s.Body} {
		if !strings.Contains(text, n.Widening[len(n.Widening)-1]) {
			t.Errorf("%s left out a change the notification kept", name)
		}
		if !strings.Contains(text, more) {
			t.Errorf("%s does not say %q", name, more)
		}
	}
}

func TestComposeCleansText(t *testing.T) {
	run := fxRun("Build\nAnd\tTest", "Build", codeBuild, pipeline.ExecutionResult{Summary: "\x1b[31mred\x1b[0m and\x00 bad \xff"}, fxCommit())
	d := pipeline.Details{Build: fxBuild([]string{"a\r\nb", "\x1b[1;32mok\x1b[0m", "", ""}, false), Degraded: []string{"  build log:\n denied ", ""}}
	m := Compose(fxFailed(), run, d)
	if m.Stage != "Build And Test" {
		t.Errorf("Stage = %q", m.Stage)
	}
	if m.Summary != "red and bad \uFFFD" {
		t.Errorf("Summary = %q", m.Summary)
	}
	if got := strings.Join(m.Build.LogTail, "|"); got != "a|b|ok" {
		t.Errorf("LogTail = %q", got)
	}
	if len(m.Degraded) != 1 || m.Degraded[0] != "build log: denied" {
		t.Errorf("Degraded = %q", m.Degraded)
	}
	if d.Build.LogTail[0] != "a\r\nb" {
		t.Error("Compose changed its input")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "", -time.Second: "", 45 * time.Second: "45s", 90 * time.Second: "1m", 59 * time.Minute: "59m",
		time.Hour: "1h", time.Hour + 42*time.Minute + 10*time.Second: "1h 42m", 26 * time.Hour: "1d 2h", 72 * time.Hour: "3d",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
