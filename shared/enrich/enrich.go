// Package enrich gathers, when a notification is sent, what a person needs to act on it beyond
// the run record: the commit's author and message, where the run failed when the events did not
// say, the CodeBuild status and the last lines of its log, the CloudFormation root cause, and
// links to the execution and to the BuildOutput artifact.
//
// Every look-up is optional and bounded by its own timeout. A look-up that fails (throttled,
// denied, missing, timed out) leaves its fields empty and adds a line to Details.Degraded: the
// message is thinner, never lost (docs/notifications.md).
package enrich

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// BuildsAPI is the CodeBuild operation the enricher calls (*codebuild.Client has it).
type BuildsAPI interface {
	BatchGetBuilds(ctx context.Context, in *codebuild.BatchGetBuildsInput, optFns ...func(*codebuild.Options)) (*codebuild.BatchGetBuildsOutput, error)
}

// LogsAPI is the CloudWatch Logs operation the enricher calls (*cloudwatchlogs.Client has it).
type LogsAPI interface {
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, optFns ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

// StacksAPI is the CloudFormation operation the enricher calls (*cloudformation.Client has it).
type StacksAPI interface {
	DescribeStackEvents(ctx context.Context, in *cloudformation.DescribeStackEventsInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
}

// CommitsAPI is the CodeCommit operation the enricher calls (*codecommit.Client has it).
type CommitsAPI interface {
	GetCommit(ctx context.Context, in *codecommit.GetCommitInput, optFns ...func(*codecommit.Options)) (*codecommit.GetCommitOutput, error)
}

// ActionLister lists an execution's action executions (codepipelineapi.Reader).
type ActionLister interface {
	Actions(ctx context.Context, k pipeline.Key) ([]pipeline.ActionExecution, error)
}

// PresignAPI signs a GET of an S3 object valid for expires. *S3Presigner implements it without
// linking the S3 client (see S3Presigner for why).
type PresignAPI interface {
	PresignGetObject(ctx context.Context, bucket, key string, expires time.Duration) (string, error)
}

var (
	_ BuildsAPI  = (*codebuild.Client)(nil)
	_ LogsAPI    = (*cloudwatchlogs.Client)(nil)
	_ StacksAPI  = (*cloudformation.Client)(nil)
	_ CommitsAPI = (*codecommit.Client)(nil)
	_ PresignAPI = (*S3Presigner)(nil)
)

// Defaults for the zero values of Enricher's knobs.
const (
	DefaultTimeout    = 3 * time.Second
	DefaultLogLines   = 20
	DefaultLinkExpiry = 24 * time.Hour

	// An SDK-signed URL may last up to 7 days; the S3 console offers 1 minute to 12 hours, whose
	// lower end this keeps ("Download and upload objects with presigned URLs", Amazon S3 User
	// Guide, https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html).
	MinLinkExpiry = time.Minute
	MaxLinkExpiry = 7 * 24 * time.Hour
)

// Deploy stages of the seed pipeline: their Lambda action deploys a CloudFormation stack.
const (
	StageCreateUpdatePipeline = "CreateUpdatePipeline"
	StageCreateUpdateLambda   = "CreateUpdateLambda"
)

// Enricher looks up a notification's details. Every API is optional: a nil one skips its
// look-up silently (the deployment did not grant or wire it). An Enricher is safe for
// concurrent use once configured.
type Enricher struct {
	Builds     BuildsAPI
	Logs       LogsAPI
	Stacks     StacksAPI
	Presign    PresignAPI
	Commits    CommitsAPI   // optional: codecommit:GetCommit for a commit the record lacks
	Executions ActionLister // optional: codepipeline:ListActionExecutions for a failure the record lacks

	// Region and AccountID are the pipeline's; they build the console links.
	Region, AccountID string

	// RepositoryName is the CodeCommit repository of the Source action. When empty it is read
	// from the Source action's console URL.
	RepositoryName string

	// StackNames maps a deploy stage to the stack its action deploys, for when the action's
	// result does not name it (the deployer reports the stack as its externalExecutionId) and
	// the pipeline follows no project's naming (a project's stacks derive from its name).
	StackNames map[string]string

	LinkExpiry time.Duration  // presigned link lifetime: default 24 h, bounded to [1 min, 7 days]
	Timeout    time.Duration  // per look-up: default 3 s
	LogLines   int            // build log lines: default 20
	Clock      pipeline.Clock // required: signs the presigned link
}

// slot orders the Degraded lines: the look-ups run concurrently, the lines read in this order.
type slot int

const (
	slotFailure slot = iota
	slotCommit
	slotBuild
	slotBuildLog
	slotStack
	slotArtifact
	nSlots
)

// notes holds the Degraded lines per look-up. Each look-up writes only its own slot, so
// concurrent look-ups need no lock.
type notes [nSlots][]string

func (ns *notes) add(s slot, line string) { ns[s] = append(ns[s], line) }

func (ns *notes) lines() []string {
	var out []string
	for _, l := range ns {
		out = append(out, l...)
	}
	return out
}

// Enrich returns what the look-ups learnt about run for n. It never fails: a look-up that
// fails leaves its fields empty and says so in Details.Degraded. Only a failed notification
// calls the failure look-ups (CodeBuild, CloudWatch Logs, CloudFormation, S3); a recovered one
// needs only the execution link and the commit; push-to-start only the link.
//
// The commit runs beside everything else; the build, the stack events and the artifact link
// run side by side once the failure is known. The longest chain is ListActionExecutions (only
// when the record does not say where the run failed), then BatchGetBuilds, then GetLogEvents:
// at most three Timeouts, which the calling function's own timeout must allow for.
//
// A pipeline of another account or region (pipeline.ParsePipelineID) is looked up nowhere:
// the APIs answer for this account and region, which know nothing of it or, worse, know a
// same-named pipeline, stack or build project. Its message says what its events said, with
// a link to the execution in its own region.
func (e *Enricher) Enrich(ctx context.Context, n pipeline.Notification, run pipeline.Run) pipeline.Details {
	if ref := pipeline.ParsePipelineID(cmp.Or(n.Pipeline, run.Pipeline)); ref.Foreign() {
		d := pipeline.Details{Region: ref.Region, AccountID: ref.Account, ExecutionURL: console.ExecutionURL(ref.Region, ref.Name, n.ExecutionID)}
		if n.Type == pipeline.NotifyFailed || n.Type == pipeline.NotifyRecovered {
			d.Degraded = []string{"details: not looked up, the pipeline is in account " + ref.Account + ", " + ref.Region +
				" (this control plane reads its own account and region only)"}
		}
		return d
	}
	d := pipeline.Details{Region: e.Region, AccountID: e.AccountID, ExecutionURL: console.ExecutionURL(e.Region, n.Pipeline, n.ExecutionID)}
	if n.Type != pipeline.NotifyFailed && n.Type != pipeline.NotifyRecovered {
		return d
	}
	var ns notes
	var wg sync.WaitGroup

	// The commit does not depend on the failure: look it up alongside everything else.
	wg.Go(func() { d.Commit = e.commit(ctx, run, &ns) })

	if n.Type == pipeline.NotifyFailed {
		f, looked := e.failure(ctx, n, run, &ns)
		if looked {
			d.Failure = &f
		}
		// These three depend only on the failure and the run: run them side by side.
		wg.Go(func() { d.Build = e.build(ctx, f, &ns) })
		wg.Go(func() { d.RootCause = e.rootCause(ctx, n, run, f, &ns) })
		wg.Go(func() { d.Artifact = e.artifact(ctx, run, f, &ns) })
	}
	wg.Wait()
	d.Degraded = ns.lines()
	return d
}

func (e *Enricher) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return DefaultTimeout
}

func (e *Enricher) logLines() int {
	switch {
	case e.LogLines <= 0:
		return DefaultLogLines
	case e.LogLines > maxGetLogEventsLimit:
		return maxGetLogEventsLimit
	}
	return e.LogLines
}

// linkExpiry is the requested lifetime of a presigned link, within what S3 accepts.
func (e *Enricher) linkExpiry() time.Duration {
	if e.LinkExpiry <= 0 {
		return DefaultLinkExpiry
	}
	return min(max(e.LinkExpiry, MinLinkExpiry), MaxLinkExpiry)
}

// lookup runs one look-up under its own timeout, so that a slow API delays the message by at
// most that long, and returns the degrade reason of its error ("" when it succeeded).
func (e *Enricher) lookup(ctx context.Context, fn func(context.Context) error) string {
	lctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	err := fn(lctx)
	if err == nil {
		return ""
	}
	return reason(err, lctx, e.timeout())
}

// Settings are an Enricher's deployment settings (the notifier reads them from its environment).
type Settings struct {
	RepositoryName string
	StackNames     map[string]string
	LinkExpiry     time.Duration
}

// New returns an Enricher with every AWS look-up wired to the clients cfg makes, but the
// failed-action look-up, which the caller wires (Executions) from the CodePipeline adapter.
func New(cfg aws.Config, s Settings, clock pipeline.Clock) *Enricher {
	return &Enricher{
		Builds: codebuild.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg),
		Stacks: cloudformation.NewFromConfig(cfg), Commits: codecommit.NewFromConfig(cfg),
		Presign: NewS3Presigner(cfg, clock),
		Region:  cfg.Region, RepositoryName: s.RepositoryName, StackNames: s.StackNames, LinkExpiry: s.LinkExpiry,
		Clock: clock,
	}
}
