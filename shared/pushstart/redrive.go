package pushstart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// BranchReader reads the commit at the head of a branch (codecommit:GetBranch). It returns an
// error wrapping pipeline.ErrNotFound when the repository or the branch does not exist.
type BranchReader interface {
	Head(ctx context.Context, repository, branch string) (commitID string, err error)
}

// ExecutionLister lists a pipeline's most recent executions, newest first, with the commits
// they run (codepipelineapi.Lister: one page of ListPipelineExecutions). It returns an error
// wrapping pipeline.ErrNotFound when the pipeline does not exist.
type ExecutionLister interface {
	Recent(ctx context.Context, pipelineName string) ([]pipeline.ExecutionSummary, error)
}

// ProjectLister lists the declared projects (projects.Declared).
type ProjectLister interface {
	Declared(ctx context.Context) ([]pipeline.Project, error)
}

// Redrive is the level-based half of on-push (issue 9, defect 12). A push whose every on-push
// invocation failed, or whose event EventBridge lost, starts nothing: no later event tells of
// it. On a schedule, Redrive reads the head of each tracked branch and, when no execution of
// its pipeline runs that commit and no push claim settled it, starts the pipeline on it
// exactly as a push event would (Pushes.start: claim, commit look-up and [skip ci], start with
// the claim's clientRequestToken, push record). The claim is per commit, so the re-drive and a
// late on-push delivery of the same commit start it once between them.
//
// Only heads are driven: a commit that a later push moved the branch past is superseded, as
// CodePipeline's SUPERSEDED mode would make it, and starting it after its successor would
// deploy older code last.
type Redrive struct {
	// Pushes starts a head the way a push event does. Its Projects, PipelineName,
	// RepositoryName and Branch say which branches are tracked, as for push events.
	Pushes     *Pushes
	Branches   BranchReader
	Executions ExecutionLister
	// Projects lists the declared projects when Pushes routes by project (Pushes.Projects
	// set); nil otherwise.
	Projects ProjectLister
	// Region is where the repositories are (the console links of the recorded commits).
	Region string
	// Workers bounds how many branches are looked at at once (zero: DefaultRedriveWorkers),
	// so that 200 projects fit in the function's timeout without bursting the CodeCommit
	// and CodePipeline request rates.
	Workers int
}

// DefaultRedriveWorkers is Redrive.Workers when zero.
const DefaultRedriveWorkers = 4

// Head outcomes, per tracked branch.
const (
	HeadStarted    = "started"     // this pass started the head's run
	HeadRunning    = "running"     // an execution of the pipeline runs the head
	HeadClaimed    = "claimed"     // a push claim started, skipped, or is starting the head
	HeadSkipped    = "skipped"     // the head's message asks to skip CI (settled now)
	HeadUnresolved = "unresolved"  // an execution in progress has not resolved its revisions: wait
	HeadNoBranch   = "no-branch"   // the repository or the branch does not exist (yet)
	HeadNoPipeline = "no-pipeline" // the pipeline does not exist (yet): its creation runs the head
)

// RedriveReport is what one pass did.
type RedriveReport struct {
	Branches int            // tracked branches looked at
	Started  []string       // "<pipeline> <commit> <execution>" for each run this pass started
	Outcomes map[string]int // per head outcome
	Errors   int
}

// Pass looks at every tracked branch once. One branch's failure does not stop the others; the
// failures (AWS or store errors, which the next pass retries) are returned joined.
func (r *Redrive) Pass(ctx context.Context) (RedriveReport, error) {
	rep := RedriveReport{Outcomes: map[string]int{}}
	targets, err := r.targets(ctx)
	if err != nil {
		return rep, err
	}
	type result struct {
		outcome, execID string
		err             error
	}
	results := make([]result, len(targets))
	one := func(i int) {
		results[i].outcome, results[i].execID, results[i].err = r.head(ctx, targets[i])
	}
	if workers := cmp.Or(r.Workers, DefaultRedriveWorkers); workers <= 1 || len(targets) <= 1 {
		for i := range targets {
			one(i)
		}
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, workers)
		for i := range targets {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				one(i)
			})
		}
		wg.Wait()
	}
	var errs []error
	for i, to := range targets {
		rep.Branches++
		res := results[i]
		if res.err != nil {
			rep.Errors++
			errs = append(errs, res.err)
			r.Pushes.Log.ErrorContext(ctx, "push re-drive failed; the next pass tries again", "pipeline", to.pipeline,
				"repository", to.repository, "branch", to.branch, "error", res.err.Error())
			continue
		}
		rep.Outcomes[res.outcome]++
		if res.outcome == HeadStarted {
			rep.Started = append(rep.Started, to.pipeline+" "+res.execID)
		}
	}
	return rep, errors.Join(errs...)
}

// Handle runs one pass for the schedule and says what it did. It returns an error when a
// branch could not be looked at (the next pass tries again anyway; the error makes the
// failure visible in the function's metrics).
func (r *Redrive) Handle(ctx context.Context) (lambdaio.Response, error) {
	rep, err := r.Pass(ctx)
	resp := lambdaio.Response{Outcome: lambdaio.OutcomeDone, Status: "redriven",
		Reason: fmt.Sprintf("%d tracked branches: %d started, %d running, %d claimed, %d skipped, %d waiting, %d without branch, %d without pipeline, %d errors",
			rep.Branches, rep.Outcomes[HeadStarted], rep.Outcomes[HeadRunning], rep.Outcomes[HeadClaimed], rep.Outcomes[HeadSkipped],
			rep.Outcomes[HeadUnresolved], rep.Outcomes[HeadNoBranch], rep.Outcomes[HeadNoPipeline], rep.Errors)}
	r.Pushes.Log.InfoContext(ctx, "push re-drive pass", "branches", rep.Branches, "started", len(rep.Started), "errors", rep.Errors)
	if err != nil {
		return resp, fmt.Errorf("push re-drive: %w", err)
	}
	return resp, nil
}

// targets are the tracked branches: every declared project's, or the single project's.
func (r *Redrive) targets(ctx context.Context) ([]target, error) {
	h := r.Pushes
	if h.Projects == nil {
		return []target{{pipeline: h.PipelineName, repository: h.RepositoryName, branch: h.Branch}}, nil
	}
	if r.Projects == nil {
		return nil, errors.New("push re-drive: pushes are routed by project, but no project list is wired")
	}
	list, err := r.Projects.Declared(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the declared projects: %w", err)
	}
	out := make([]target, 0, len(list))
	for _, p := range list {
		out = append(out, target{pipeline: pipeline.PipelineOf(p.Name), repository: p.Name, branch: p.Branch})
	}
	return out, nil
}

// head drives one tracked branch: it returns what it found (a Head… outcome) and, when it
// started a run, the execution id.
func (r *Redrive) head(ctx context.Context, to target) (outcome, execID string, err error) {
	h := r.Pushes
	commit, err := r.Branches.Head(ctx, to.repository, to.branch)
	if errors.Is(err, pipeline.ErrNotFound) {
		return HeadNoBranch, "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read the head of %s %s: %w", to.repository, to.branch, err)
	}
	execs, err := r.Executions.Recent(ctx, to.pipeline)
	if errors.Is(err, pipeline.ErrNotFound) {
		return HeadNoPipeline, "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("list the executions of %s: %w", to.pipeline, err)
	}
	if slices.ContainsFunc(execs, func(e pipeline.ExecutionSummary) bool { return e.Runs(commit) }) {
		return HeadRunning, "", nil
	}
	if slices.ContainsFunc(execs, func(e pipeline.ExecutionSummary) bool {
		return e.State == pipeline.StateStarted && len(e.Revisions) == 0
	}) {
		// An execution that has not resolved its source revision yet may be running the
		// head (the run CodePipeline starts when it creates the pipeline, or one a console
		// user released): the next pass knows.
		return HeadUnresolved, "", nil
	}

	now := h.Clock.Now()
	p := pipeline.RedrivePush(r.Region, to.repository, to.branch, commit, now)
	lease := h.Lease
	if lease <= 0 {
		lease = DefaultPushLease
	}
	claim, err := h.Store.ClaimPush(ctx, p, RequestToken(p.ID), now, lease)
	if err != nil {
		return "", "", fmt.Errorf("claim the head %s of %s: %w", commit, to.repository, err)
	}
	if !claim.Held {
		// Started (its execution is older than the page, or not listed yet), skipped, or
		// being started by an on-push delivery whose retry takes it over.
		return HeadClaimed, "", nil
	}
	attrs := []any{"eventId", p.ID, "repository", to.repository, "reference", to.branch, "commitId", commit, "pipeline", to.pipeline}
	execID, skip, err := h.start(ctx, p, to.pipeline, claim, now, attrs)
	if err != nil {
		return "", "", err
	}
	if skip != "" {
		h.Log.InfoContext(ctx, "push re-drive: head skipped", append(attrs, "reason", skip)...)
		return HeadSkipped, "", nil
	}
	// A push whose every on-push delivery failed (or whose event was lost): worth a look.
	h.Log.WarnContext(ctx, "push re-driven: no run had started for the head of the tracked branch",
		append(attrs, "executionId", execID, "clientRequestToken", claim.Token)...)
	return HeadStarted, execID, nil
}
