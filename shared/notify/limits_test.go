package notify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// checkLimits asserts that both renderings of m are ones Slack and SNS accept.
func checkLimits(t *testing.T, m Message) (slackPayload []byte, s SNSMessage) {
	t.Helper()
	payload, err := RenderSlack(m)
	if err != nil {
		t.Fatalf("RenderSlack: %v", err)
	}
	if err := notifytest.ValidateSlackPayload(payload); err != nil {
		t.Fatalf("Slack would refuse the payload: %v", err)
	}
	s = RenderSNS(m)
	if f := notifytest.ValidateSNS(s.Subject, true, s.Body, snsAttrs(s)); f != nil {
		t.Fatalf("SNS would refuse the message: %v (subject %q)", f, s.Subject)
	}
	if len(s.Subject) > SNSMaxSubject || strings.ContainsAny(s.Subject, "\r\n\t") {
		t.Fatalf("subject %q: %d bytes or has a line break", s.Subject, len(s.Subject))
	}
	if !utf8.ValidString(s.Body) || !utf8.ValidString(s.Subject) {
		t.Fatal("SNS message is not valid UTF-8")
	}
	for k, v := range s.Attributes {
		if v == "" {
			t.Fatalf("attribute %s is empty", k)
		}
	}
	return payload, s
}

// slackTexts returns every text of a payload: the fallback, block texts, fields, elements.
func slackTexts(t *testing.T, payload []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, y := range x {
				if s, ok := y.(string); ok && k == "text" {
					out = append(out, s)
				}
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
	return out
}

func TestRenderHoldsLimitsForAdversarialInput(t *testing.T) {
	huge := strings.Repeat("x", 100_000)
	emoji := strings.Repeat("🚀é", 5_000) // 4-byte and 2-byte runes; each rocket is 2 UTF-16 units
	combining := strings.Repeat("e\u0301", 4_000)
	hostile := "<!channel> <@U012AB3CD> <https://evil.example|click> & a ``` fence \x1b[31mred\x1b[0m \x00\x07 bad:\xff\xfe"
	commit10k := strings.Repeat("Refactor everything. ", 500)[:10_000]

	var bigLog []string
	for i := 0; i < 3_000; i++ {
		bigLog = append(bigLog, fmt.Sprintf("line-%04d %s", i, strings.Repeat("🔥", 1_000)))
	}
	manyDegraded := make([]string, 1_000)
	for i := range manyDegraded {
		manyDegraded[i] = fmt.Sprintf("look-up %d: %s", i, strings.Repeat("AccessDenied ", 80))
	}
	longURL := "https://example.com/" + strings.Repeat("a", 5_000)

	base := func(summary, commitMsg string, tail []string) (pipeline.Run, pipeline.Details) {
		run := fxRun("BuildAndTest", "Build", codeBuild, pipeline.ExecutionResult{Summary: summary, ErrorCode: "JobFailed"},
			pipeline.Commit{ID: fxCommitID, Message: commitMsg, Author: hostile})
		d := pipeline.Details{Region: fxRegion, Build: fxBuild(tail, false), Artifact: fxArtifact(),
			RootCause: &pipeline.StackEvent{StackName: "s", LogicalResourceID: emoji, ResourceType: "AWS::Lambda::Function", Status: "CREATE_FAILED", Reason: huge}}
		return run, d
	}

	cases := []struct {
		name string
		m    func() Message
	}{
		{"huge summary", func() Message { r, d := base(huge, "fix", goTestTail); return Compose(fxFailed(), r, d) }},
		{"10,000-char commit message", func() Message {
			r, d := base("s", commit10k+"\n\n"+commit10k, goTestTail)
			return Compose(fxFailed(), r, d)
		}},
		{"emoji and multibyte everywhere", func() Message {
			r, d := base(emoji, emoji+"\n"+emoji, []string{emoji, emoji})
			r.Pipeline, r.Failures[0].Stage, r.Failures[0].Action = emoji, emoji, emoji
			n := fxFailed()
			n.Pipeline = emoji
			return Compose(n, r, d)
		}},
		{"combining characters", func() Message {
			r, d := base(combining, combining, []string{combining})
			return Compose(fxFailed(), r, d)
		}},
		{"hostile text", func() Message {
			r, d := base(hostile, hostile+"\n"+hostile, []string{hostile, hostile})
			d.Degraded = []string{hostile}
			return Compose(fxFailed(), r, d)
		}},
		{"3,000 log lines of 1,000 emoji", func() Message { r, d := base("s", "m", bigLog); return Compose(fxFailed(), r, d) }},
		{"1,000 degraded look-ups", func() Message {
			r, d := base("s", "m", nil)
			d.Degraded = manyDegraded
			return Compose(fxFailed(), r, d)
		}},
		{"links too long for a button", func() Message {
			r, d := base("s", "m", goTestTail)
			d.ExecutionURL, d.Build.LogURL, d.Artifact.PresignedURL = longURL, longURL, longURL+strings.Repeat("b", 10_000)
			return Compose(fxFailed(), r, d)
		}},
		{"recovered with huge names", func() Message {
			c := goldenCases()[2]
			c.n.Pipeline, c.n.FirstFailedExecID = huge, emoji
			c.run.Commit.Message = commit10k
			return Compose(c.n, c.run, c.d)
		}},
		{"push to start with huge summary", func() Message {
			c := goldenCases()[4]
			c.run.Failures[0].Result.Summary = huge + emoji
			return Compose(c.n, c.run, c.d)
		}},
		{"approval with a huge, hostile widening", func() Message {
			n := fxApproval()
			n.Stack, n.Deploy = huge, hostile
			n.Widening = append(slices.Repeat([]string{hostile, emoji[:4000]}, 1_000), huge)
			n.WideningLeft = 7
			return Compose(n, pipeline.Run{Commit: pipeline.Commit{Message: commit10k}}, pipeline.Details{Region: fxRegion})
		}},
		{"empty everything", func() Message {
			return Compose(pipeline.Notification{Type: pipeline.NotifyFailed}, pipeline.Run{}, pipeline.Details{})
		}},
		{"unknown type", func() Message {
			return Compose(pipeline.Notification{Type: "something\nnew", Pipeline: "p"}, pipeline.Run{}, pipeline.Details{})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload, s := checkLimits(t, c.m())
			for _, txt := range slackTexts(t, payload) {
				for _, bad := range []string{"<!channel>", "<@U012AB3CD>", "<https://evil.example", "\x1b", "\x00"} {
					if strings.Contains(txt, bad) {
						t.Errorf("Slack text carries %q unescaped: %.200q", bad, txt)
					}
				}
			}
			if strings.ContainsAny(s.Body, "\x00\x07\x1b") {
				t.Error("SNS body carries control characters")
			}
		})
	}
}

func TestTrimmingIsVisible(t *testing.T) {
	r, d := fxRun("BuildAndTest", "Build", codeBuild, pipeline.ExecutionResult{Summary: strings.Repeat("too long ", 2_000)}, fxCommit()), pipeline.Details{}
	payload, s := checkLimits(t, Compose(fxFailed(), r, d))
	if !strings.Contains(string(payload), Trimmed) {
		t.Error("the Slack payload cut the summary without the marker")
	}
	if !strings.Contains(s.Body, Trimmed) {
		t.Error("the SNS body cut the summary without the marker")
	}
}

// The end of a build log says what failed: trimming keeps the last lines.
func TestLogTailKeepsLastLines(t *testing.T) {
	var lines []string
	for i := 1; i <= 4_000; i++ {
		lines = append(lines, fmt.Sprintf("line-%04d %s", i, strings.Repeat("=", 150)))
	}
	lines = append(lines, "FAIL the last line")
	run := fxRun("BuildAndTest", "Build", codeBuild, fxBuildResult(), fxCommit())
	payload, s := checkLimits(t, Compose(fxFailed(), run, pipeline.Details{Build: fxBuild(lines, false)}))

	for name, text := range map[string]string{"Slack": string(payload), "SNS": s.Body} {
		if !strings.Contains(text, "FAIL the last line") || !strings.Contains(text, "line-4000") {
			t.Errorf("%s lost the last lines", name)
		}
		if strings.Contains(text, "line-0001 ") {
			t.Errorf("%s kept the first line instead of the last ones", name)
		}
		if !strings.Contains(text, "earlier lines trimmed)") {
			t.Errorf("%s does not say that lines were left out", name)
		}
	}
	// SNS: 4,000 lines of ~160 bytes are 640 KB; the tail fills what the 256 KB leave.
	if len(s.Body) < 200_000 {
		t.Errorf("SNS body is %d bytes: the log tail should use most of the 256 KB", len(s.Body))
	}
}

func TestFitHeadCutsOnRuneBoundaries(t *testing.T) {
	for _, s := range []string{strings.Repeat("🚀", 100), strings.Repeat("é", 100), strings.Repeat("a&b<c>", 40), strings.Repeat("👩‍👩‍👧", 30)} {
		for limit := 15; limit < 60; limit++ {
			for _, esc := range []bool{false, true} {
				got := fitHead(s, limit, esc)
				if !utf8.ValidString(got) || units(got) > limit {
					t.Fatalf("fitHead(%.20q, %d, %v) = %q (%d units)", s, limit, esc, got, units(got))
				}
				if esc && strings.Count(got, "&") != strings.Count(got, ";") {
					t.Fatalf("fitHead cut an entity: %q", got)
				}
			}
			if got := fitBytes(s, limit); !utf8.ValidString(got) || len(got) > limit {
				t.Fatalf("fitBytes(%.20q, %d) = %q", s, limit, got)
			}
		}
	}
}

func TestSubjectFitsAndKeepsWhatMatters(t *testing.T) {
	long := strings.Repeat("a-very-long-stage-name", 5)
	run := fxRun(long, long, codeBuild, fxBuildResult(), fxCommit())
	s := RenderSNS(Compose(fxFailed(), run, pipeline.Details{}))
	if len(s.Subject) > SNSMaxSubject {
		t.Fatalf("subject is %d bytes", len(s.Subject))
	}
	if !strings.HasPrefix(s.Subject, "FAILED my-lambda-pipeline: a-very") || !strings.HasSuffix(s.Subject, "… (4f2a9c1e)") {
		t.Errorf("subject %q should keep the verb, the pipeline and the commit, and cut the stage", s.Subject)
	}
	// A leading digit is allowed ("Publish", Amazon SNS API Reference; docs/aws-behaviour.md, SNS),
	// and is kept.
	n := fxFailed()
	n.Pipeline = "2024-pipeline"
	if s := RenderSNS(Compose(n, run, pipeline.Details{})); !strings.HasPrefix(s.Subject, "FAILED 2024-pipeline") {
		t.Errorf("subject %q", s.Subject)
	}
}

// FuzzRender: whatever the texts, both renderings stay within their channel's limits.
// go test ./shared/notify -fuzz FuzzRender explores further; the seeds run with every go test.
func FuzzRender(f *testing.F) {
	f.Add("Build terminated", "fix: x\n\nbody", "ok", "BuildAndTest", uint8(0))
	f.Add(strings.Repeat("🚀", 2000), strings.Repeat("é", 12000), strings.Repeat("x", 9000), strings.Repeat("s", 200), uint8(1))
	f.Add("<!here> & ```", "\xff\xfe\x00", "\x1b[31mred", "", uint8(2))
	f.Add("FunctionRole: added-action: s3:PutObject", "fix", "4e5f6a7b", "my-lambda-app", uint8(3))
	f.Fuzz(func(t *testing.T, summary, commitMsg, logLine, stage string, kind uint8) {
		types := []pipeline.NotificationType{pipeline.NotifyFailed, pipeline.NotifyRecovered, pipeline.NotifyPushToStart, pipeline.NotifyApproval}
		n := fxFailed()
		n.Type = types[int(kind)%len(types)]
		n.BrokenSince = fxFailedAt.Add(-90 * time.Minute)
		n.FirstFailedExecID = stage
		n.Stack, n.Deploy, n.Deadline, n.Widening = stage, logLine, fxFailedAt.Add(20*time.Hour), []string{summary, logLine, commitMsg}
		run := fxRun(stage, logLine, codeBuild, pipeline.ExecutionResult{Summary: summary, ErrorCode: stage}, pipeline.Commit{ID: stage, Message: commitMsg, Author: summary})
		d := pipeline.Details{Region: fxRegion, Build: fxBuild([]string{logLine, logLine, logLine}, kind%2 == 0),
			RootCause: &pipeline.StackEvent{Reason: summary, LogicalResourceID: stage}, Degraded: []string{summary, logLine}}
		checkLimits(t, Compose(n, run, d))
	})
}
