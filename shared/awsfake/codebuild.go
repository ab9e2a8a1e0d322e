package awsfake

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codebuild"
)

// OpBatchGetBuilds is the CodeBuild operation the fake answers.
const OpBatchGetBuilds = "BatchGetBuilds"

// fakeAccountID is the account the fakes' ARNs and messages name.
const fakeAccountID = "123456789012"

// CodeBuild is a stateful fake of the CodeBuild API (JSON 1.1, target prefix
// CodeBuild_20161006): BatchGetBuilds over scripted builds. Calls can fail (FailNext) or hang
// (Hang). It is safe for concurrent use.
type CodeBuild struct {
	*endpoint
	*hangs

	mu     sync.Mutex
	builds map[string]Build
}

// Build is a scripted build.
type Build struct {
	// ID is "<project>:<uuid>" ("BatchGetBuilds",
	// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetBuilds.html).
	ID string
	// Status is the buildStatus: SUCCEEDED, FAILED, FAULT, TIMED_OUT, IN_PROGRESS or STOPPED.
	Status string
	// CurrentPhase defaults to the last phase's type.
	CurrentPhase       string
	StartTime, EndTime time.Time
	SourceVersion      string
	Phases             []BuildPhase
	// The CloudWatch Logs location. Empty fields get CodeBuild's defaults: group
	// /aws/codebuild/<project>, stream <uuid>, and the console deepLink; NoCloudWatchLogs says
	// the project logs to S3 only, so the build has no group or stream.
	LogGroup, LogStream, DeepLink string
	NoCloudWatchLogs              bool
}

// BuildPhase is one phase of a build. The COMPLETED phase has no status.
type BuildPhase struct {
	Type, Status string
	Start, End   time.Time
	Contexts     []PhaseContext
}

// PhaseContext is why a phase ended as it did, e.g. COMMAND_EXECUTION_ERROR and "Error while
// executing command: go test ./.... Reason: exit status 1".
type PhaseContext struct{ StatusCode, Message string }

// phaseOrder is the order CodeBuild runs phases in ("BuildPhase",
// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BuildPhase.html).
var phaseOrder = []string{"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD",
	"POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"}

// FailedBuild scripts a build that failed in phase failed with the given context, its phases
// as CodeBuild runs them from start, ten seconds each: those before succeed; after a failed
// BUILD, POST_BUILD and UPLOAD_ARTIFACTS still run (they do unless the buildspec says
// otherwise), after an earlier failure the build goes to FINALIZING; COMPLETED ends it.
func FailedBuild(id string, start time.Time, failed, statusCode, message string) Build {
	b := Build{ID: id, Status: "FAILED", StartTime: start}
	at := start
	add := func(typ, status string, ctx ...PhaseContext) {
		ph := BuildPhase{Type: typ, Status: status, Start: at, Contexts: ctx}
		if typ != "COMPLETED" {
			at = at.Add(10 * time.Second)
			ph.End = at
		}
		b.Phases = append(b.Phases, ph)
	}
	i := slices.Index(phaseOrder, failed)
	for _, typ := range phaseOrder[:max(i, 0)] {
		add(typ, "SUCCEEDED")
	}
	add(failed, "FAILED", PhaseContext{StatusCode: statusCode, Message: message})
	if failed == "BUILD" {
		add("POST_BUILD", "SUCCEEDED")
		add("UPLOAD_ARTIFACTS", "SUCCEEDED")
	}
	add("FINALIZING", "SUCCEEDED")
	add("COMPLETED", "")
	b.EndTime = at
	return b
}

// NewCodeBuild starts a fake with the given builds; the test's Cleanup stops it.
func NewCodeBuild(tb testing.TB, builds ...Build) *CodeBuild {
	tb.Helper()
	f := &CodeBuild{builds: map[string]Build{}}
	f.endpoint, f.hangs = newHangingEndpoint(tb, "CodeBuild_20161006", map[string]op{OpBatchGetBuilds: f.batchGetBuilds})
	for _, b := range builds {
		f.AddBuild(b)
	}
	return f
}

// Client returns an SDK client for the fake (see Config) that sends through HTTPClient;
// optFns apply last.
func (f *CodeBuild) Client(tb testing.TB, optFns ...func(*codebuild.Options)) *codebuild.Client {
	tb.Helper()
	return codebuild.NewFromConfig(f.Config(), append([]func(*codebuild.Options){func(o *codebuild.Options) { o.HTTPClient = HTTPClient() }}, optFns...)...)
}

// AddBuild scripts a build, replacing one with the same id.
func (f *CodeBuild) AddBuild(b Build) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds[b.ID] = b
}

// AccessDeniedFor is the error a JSON service (CodeBuild, CloudWatch Logs, CodePipeline) answers
// when the caller's role lacks action (e.g. "logs:GetLogEvents").
func AccessDeniedFor(action string) Error {
	return Error{Code: "AccessDeniedException", Status: http.StatusBadRequest,
		Message: fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/notifier-role/notifier is not authorized to perform: %s", fakeAccountID, action)}
}

type wirePhaseContext struct {
	StatusCode string `json:"statusCode,omitempty"`
	Message    string `json:"message,omitempty"`
}

type wirePhase struct {
	PhaseType         string             `json:"phaseType"`
	PhaseStatus       string             `json:"phaseStatus,omitempty"`
	StartTime         *epoch             `json:"startTime,omitempty"`
	EndTime           *epoch             `json:"endTime,omitempty"`
	DurationInSeconds *int64             `json:"durationInSeconds,omitempty"`
	Contexts          []wirePhaseContext `json:"contexts,omitempty"`
}

type wireLogs struct {
	GroupName         string `json:"groupName,omitempty"`
	StreamName        string `json:"streamName,omitempty"`
	DeepLink          string `json:"deepLink,omitempty"`
	CloudWatchLogsArn string `json:"cloudWatchLogsArn,omitempty"`
	CloudWatchLogs    any    `json:"cloudWatchLogs"`
}

type wireBuild struct {
	ID            string      `json:"id"`
	ARN           string      `json:"arn"`
	BuildNumber   int64       `json:"buildNumber"`
	StartTime     *epoch      `json:"startTime,omitempty"`
	EndTime       *epoch      `json:"endTime,omitempty"`
	CurrentPhase  string      `json:"currentPhase,omitempty"`
	BuildStatus   string      `json:"buildStatus"`
	SourceVersion string      `json:"sourceVersion,omitempty"`
	ProjectName   string      `json:"projectName"`
	Phases        []wirePhase `json:"phases"`
	Logs          wireLogs    `json:"logs"`
	BuildComplete bool        `json:"buildComplete"`
	Initiator     string      `json:"initiator"`
}

func (b Build) wire() wireBuild {
	project, uuid, _ := strings.Cut(b.ID, ":")
	w := wireBuild{ID: b.ID, ARN: fmt.Sprintf("arn:aws:codebuild:%s:%s:build/%s", Region, fakeAccountID, b.ID), BuildNumber: 1,
		StartTime: epochPtr(b.StartTime), EndTime: epochPtr(b.EndTime), CurrentPhase: b.CurrentPhase, BuildStatus: b.Status,
		SourceVersion: b.SourceVersion, ProjectName: project, Phases: []wirePhase{},
		BuildComplete: b.Status != "IN_PROGRESS", Initiator: "codepipeline/my-lambda-pipeline"}
	if w.CurrentPhase == "" && len(b.Phases) > 0 {
		w.CurrentPhase = b.Phases[len(b.Phases)-1].Type
	}
	for _, ph := range b.Phases {
		wp := wirePhase{PhaseType: ph.Type, PhaseStatus: ph.Status, StartTime: epochPtr(ph.Start), EndTime: epochPtr(ph.End)}
		if !ph.Start.IsZero() && !ph.End.IsZero() {
			d := int64(ph.End.Sub(ph.Start) / time.Second)
			wp.DurationInSeconds = &d
		}
		for _, c := range ph.Contexts {
			wp.Contexts = append(wp.Contexts, wirePhaseContext(c))
		}
		w.Phases = append(w.Phases, wp)
	}
	if b.NoCloudWatchLogs {
		w.Logs.CloudWatchLogs = map[string]string{"status": "DISABLED"}
		return w
	}
	w.Logs.CloudWatchLogs = map[string]string{"status": "ENABLED"}
	w.Logs.GroupName, w.Logs.StreamName, w.Logs.DeepLink = b.LogGroup, b.LogStream, b.DeepLink
	if w.Logs.GroupName == "" {
		w.Logs.GroupName = "/aws/codebuild/" + project
	}
	if w.Logs.StreamName == "" {
		w.Logs.StreamName = uuid
	}
	if w.Logs.DeepLink == "" {
		// CodeBuild's own form ("BatchGetBuilds",
		// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetBuilds.html).
		w.Logs.DeepLink = fmt.Sprintf("https://console.aws.amazon.com/cloudwatch/home?region=%s#logEvent:group=%s;stream=%s",
			Region, w.Logs.GroupName, w.Logs.StreamName)
	}
	w.Logs.CloudWatchLogsArn = fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s:log-stream:%s", Region, fakeAccountID, w.Logs.GroupName, w.Logs.StreamName)
	return w
}

// batchGetBuilds answers the known builds in the order asked and lists the unknown ids in
// buildsNotFound, as CodeBuild does; 1–100 ids ("BatchGetBuilds",
// https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetBuilds.html).
func (f *CodeBuild) batchGetBuilds(body []byte) (any, *Error) {
	var in struct {
		IDs []string `json:"ids"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.IDs) < 1 || len(in.IDs) > 100 {
		return nil, clientError("InvalidInputException", "1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 and 100")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	builds, notFound := []wireBuild{}, []string{}
	for _, id := range in.IDs {
		if b, ok := f.builds[id]; ok {
			builds = append(builds, b.wire())
		} else {
			notFound = append(notFound, id)
		}
	}
	return map[string]any{"builds": builds, "buildsNotFound": notFound}, nil
}
