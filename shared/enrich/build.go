package enrich

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	cbtypes "github.com/aws/aws-sdk-go-v2/service/codebuild/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Bounds of the log tail: a notification shows a few lines, not the log (the link has it).
// The whole tail fits in a Slack section (3,000 characters) with room for its code fence.
const (
	maxGetLogEventsLimit = 10000 // GetLogEvents' own maximum (docs/aws-behaviour.md, CloudWatch Logs)
	maxLineWidth         = 240   // runes per line
	maxTailChars         = 2500  // runes in all
)

// buildID matches a CodeBuild build id, "<project>:<uuid>" ("Build", AWS CodeBuild API Reference,
// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_Build.html).
var buildID = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_-]{1,254}):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)

// isBuildFailure reports whether the failed action is a CodeBuild build.
func isBuildFailure(f pipeline.Failure) bool {
	return f.Type.Provider == "CodeBuild" || buildID.MatchString(f.Result.ExternalID)
}

// build describes the failed CodeBuild build: codebuild:BatchGetBuilds for its status, failed
// phase and log location, then logs:GetLogEvents for the log's last lines. Nil when the failure
// is not a build.
func (e *Enricher) build(ctx context.Context, f pipeline.Failure, ns *notes) *pipeline.BuildDetails {
	if !isBuildFailure(f) || (e.Builds == nil && e.Logs == nil) {
		return nil
	}
	m := buildID.FindStringSubmatch(f.Result.ExternalID)
	if m == nil {
		ns.add(slotBuild, degraded("build", "the action reported no build id", "codebuild:BatchGetBuilds"))
		return nil
	}
	b := &pipeline.BuildDetails{ID: f.Result.ExternalID}
	// CodeBuild's default log location, so that the tail and its link still come when
	// BatchGetBuilds is denied or throttled; a project with its own log group then reads
	// "build log: not found".
	b.LogGroup, b.LogStream = "/aws/codebuild/"+m[1], m[2]
	var deepLink string
	hasLog := true
	if e.Builds != nil {
		var out *codebuild.BatchGetBuildsOutput
		why := e.lookup(ctx, func(ctx context.Context) error {
			var err error
			out, err = e.Builds.BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: []string{b.ID}})
			if err != nil {
				return fmt.Errorf("get build %s: %w", b.ID, err)
			}
			return nil
		})
		switch {
		case why != "":
			ns.add(slotBuild, degraded("build status", why, "codebuild:BatchGetBuilds"))
		case len(out.Builds) == 0:
			ns.add(slotBuild, degraded("build status", "not found", "codebuild:BatchGetBuilds"))
		default:
			deepLink, hasLog = describeBuild(b, out.Builds[0])
		}
	}
	if !hasLog {
		b.LogGroup, b.LogStream = "", ""
		return b
	}
	b.LogURL = deepLink
	if b.LogURL == "" {
		b.LogURL = console.LogEventsURL(e.Region, b.LogGroup, b.LogStream)
	}
	if e.Logs != nil {
		e.logTail(ctx, b, ns)
	}
	return b
}

// describeBuild copies a build's status, failed phase and log location into b. It returns the
// build's log link, and whether its log stream can exist: CodeBuild creates the stream while
// PROVISIONING, so a build that failed before has none, and no log group when CloudWatch
// logging is off.
func describeBuild(b *pipeline.BuildDetails, build cbtypes.Build) (deepLink string, hasLog bool) {
	b.Status = string(build.BuildStatus)
	for _, ph := range build.Phases {
		switch ph.PhaseStatus {
		case cbtypes.StatusTypeFailed, cbtypes.StatusTypeFault, cbtypes.StatusTypeTimedOut:
		default:
			continue
		}
		b.FailedPhase = string(ph.PhaseType)
		var reasons []string
		for _, c := range ph.Contexts {
			code, msg := aws.ToString(c.StatusCode), aws.ToString(c.Message)
			switch {
			case code != "" && msg != "":
				reasons = append(reasons, code+": "+msg)
			case code != "" || msg != "":
				reasons = append(reasons, code+msg)
			}
		}
		b.PhaseReason = strings.Join(reasons, "; ")
		break
	}
	switch cbtypes.BuildPhaseType(b.FailedPhase) {
	case cbtypes.BuildPhaseTypeSubmitted, cbtypes.BuildPhaseTypeQueued:
		return "", false
	}
	if l := build.Logs; l != nil {
		if aws.ToString(l.GroupName) == "" {
			return "", false
		}
		b.LogGroup, b.LogStream = aws.ToString(l.GroupName), aws.ToString(l.StreamName)
		deepLink = aws.ToString(l.DeepLink)
	}
	return deepLink, b.LogStream != ""
}

// logTail reads the last LogLines lines of the build's log. startFromHead=false with a limit
// returns the latest events in one call; following tokens would walk the whole stream (and
// the SDK's paginator loops at its end: "GetLogEvents", Amazon CloudWatch Logs API Reference,
// https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html,
// and docs/aws-behaviour.md, CloudWatch Logs), so it reads one page.
func (e *Enricher) logTail(ctx context.Context, b *pipeline.BuildDetails, ns *notes) {
	n := e.logLines()
	var out *cloudwatchlogs.GetLogEventsOutput
	why := e.lookup(ctx, func(ctx context.Context) error {
		var err error
		out, err = e.Logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
			LogGroupName: aws.String(b.LogGroup), LogStreamName: aws.String(b.LogStream),
			StartFromHead: aws.Bool(false), Limit: aws.Int32(int32(n)),
		})
		if err != nil {
			return fmt.Errorf("get log events of %s %s: %w", b.LogGroup, b.LogStream, err)
		}
		return nil
	})
	if why != "" {
		ns.add(slotBuildLog, degraded("build log", why, "logs:GetLogEvents"))
		return
	}
	b.LogTail, b.LogTailTrimmed = tail(out.Events, n)
}

// ansi matches terminal colour and cursor sequences, which read as noise outside a terminal.
var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[ -/]*[@-~]")

// tail turns log events into at most n lines, oldest first: ordered by time (AWS does not
// promise the order within a page), split at embedded newlines, without trailing newlines or
// terminal escapes, each line cut to maxLineWidth, and the oldest lines dropped to keep the
// whole within maxTailChars. trimmed reports that anything was cut.
func tail(events []cwltypes.OutputLogEvent, n int) (lines []string, trimmed bool) {
	events = append([]cwltypes.OutputLogEvent(nil), events...)
	sort.SliceStable(events, func(i, j int) bool { return aws.ToInt64(events[i].Timestamp) < aws.ToInt64(events[j].Timestamp) })
	for _, ev := range events {
		msg := strings.TrimRight(ansi.ReplaceAllString(aws.ToString(ev.Message), ""), "\r\n")
		for _, l := range strings.Split(msg, "\n") {
			l = strings.TrimRight(l, "\r")
			if c := clip(l, maxLineWidth); c != l {
				l, trimmed = c, true
			}
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines, trimmed = lines[len(lines)-n:], true
	}
	total := 0
	for i := len(lines) - 1; i >= 0; i-- {
		total += len([]rune(lines[i]))
		if total > maxTailChars {
			return lines[i+1:], true
		}
	}
	return lines, trimmed
}
