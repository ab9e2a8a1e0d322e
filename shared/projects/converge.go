// Package projects is the deployer's convergence use case: the account's control plane makes
// every declared project's pipeline stack exist, and removes the stacks of projects no longer
// declared, like a controller (level-based, one step per project per pass, idempotent). See
// docs/projects.md.
package projects

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Store keeps the projects' declarations and what the converger writes back about them
// (runstore.Projects).
type Store interface {
	// ListProjects returns every PROJECT item: declarations (lp project add), tombstones
	// (lp project remove) and the status of parameter-declared projects.
	ListProjects(ctx context.Context) ([]pipeline.ProjectDeclaration, error)
	// PutStatus writes a project's status if its item is still at version prev (0: no status
	// yet), and sets the version to prev+1. It returns false, and writes nothing, when
	// another writer got there first.
	PutStatus(ctx context.Context, name string, prev int64, st pipeline.ProjectStatus) (bool, error)
	// DeleteProject deletes a project's item if it is still at version prev.
	DeleteProject(ctx context.Context, name string, prev int64) (bool, error)
}

// Stacks steps the projects' pipeline stacks through the deploy engine (deploy.ProjectStacks).
type Stacks interface {
	// List returns the stacks of this control plane's projects (found by their tags).
	List(ctx context.Context) ([]pipeline.ProjectStack, error)
	// Step takes one step of a deploy or a removal. An error means no answer about the stack
	// (throttled past the SDK's retries, a network error): the next pass tries again.
	Step(ctx context.Context, s pipeline.ProjectStep) (pipeline.ProjectStepResult, error)
}

// Repositories makes a project's repository exist (or adopts the one that does) and returns
// its HTTPS clone URL. Repositories are never deleted by the converger.
type Repositories interface {
	Ensure(ctx context.Context, project string) (cloneURL string, err error)
}

// Defaults of Converger.
const (
	DefaultWorkers       = 4
	DefaultMaxStarts     = 20
	DefaultRetryAfter    = 30 * time.Minute
	DefaultMaxRetryAfter = 6 * time.Hour
	DefaultMaxErrors     = 5
)

// Converger is one pass of convergence. A pass observes everything again (the declarations,
// the stacks, the statuses) and takes at most one step per project, so that passes can run
// on a schedule, overlap, and be retried: deploys are named from the declaration's hash and
// a generation, and statuses are written with a version condition.
type Converger struct {
	Store        Store
	Stacks       Stacks
	Repositories Repositories
	Clock        pipeline.Clock
	Log          *slog.Logger

	// Parameter is the Projects parameter, parsed (pipeline.ParseProjects).
	Parameter []pipeline.Project
	// SpecExtra is what the control plane adds to every stack (its template's hash, roles,
	// bucket, boundary …): a change of it redeploys every project.
	SpecExtra []string

	// Workers bounds the steps (and so the CloudFormation calls) in flight at once.
	Workers int
	// MaxStarts bounds the deploys or removals a pass starts; the others wait their turn as
	// "converging" (queued), so that 200 projects declared at once do not start 200 stack
	// operations in one minute.
	MaxStarts int
	// RetryAfter is the first wait before a failed project is tried again (doubling up to
	// MaxRetryAfter). A changed declaration is tried at once.
	RetryAfter, MaxRetryAfter time.Duration
	// MaxErrors is how many steps of one pass may fail without an answer (throttles beyond
	// the SDK's retries) before the pass stops starting steps: the rest waits for the next
	// pass instead of adding to the throttling.
	MaxErrors int
}

// Report is what a pass did.
type Report struct {
	Projects []ProjectReport
	// Deferred counts the projects left for a later pass (MaxStarts reached, or the pass
	// backed off after errors).
	Deferred int
	Errors   int
	// Started counts the deploys and removals this pass started (at most MaxStarts).
	Started int
}

// ProjectReport is one project's outcome of a pass.
type ProjectReport struct {
	Name   string
	Action string // "none", "deploy", "remove", "deferred", "error", "lost" (another writer won)
	Status pipeline.ProjectStatus
}

// ByName returns the report of one project.
func (r Report) ByName(name string) (ProjectReport, bool) {
	i := slices.IndexFunc(r.Projects, func(p ProjectReport) bool { return p.Name == name })
	if i < 0 {
		return ProjectReport{}, false
	}
	return r.Projects[i], true
}

// work is one project's facts for this pass.
type work struct {
	name    string
	desired *pipeline.Project
	decl    *pipeline.ProjectDeclaration // its item, if any
	stack   *pipeline.ProjectStack
}

// Run makes one pass. It returns an error only when the pass could not observe (the
// declarations or the stacks could not be listed); one project's failure is that project's
// status, never the others'.
func (c *Converger) Run(ctx context.Context) (Report, error) {
	items, err := c.Store.ListProjects(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list declared projects: %w", err)
	}
	stacks, err := c.Stacks.List(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("list project stacks: %w", err)
	}
	byName := map[string]*work{}
	get := func(name string) *work {
		if w, ok := byName[name]; ok {
			return w
		}
		w := &work{name: name}
		byName[name] = w
		return w
	}
	for _, p := range pipeline.Desired(c.Parameter, items) {
		p := p
		get(p.Name).desired = &p
	}
	for i := range items {
		get(items[i].Name).decl = &items[i]
	}
	for i := range stacks {
		get(stacks[i].Project).stack = &stacks[i]
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)

	workers := cmpOr(c.Workers, DefaultWorkers)
	maxStarts := cmpOr(c.MaxStarts, DefaultMaxStarts)
	maxErrors := cmpOr(c.MaxErrors, DefaultMaxErrors)

	var (
		mu      sync.Mutex
		report  Report
		starts  int
		errs    int
		jobs    = make(chan *work)
		wg      sync.WaitGroup
		results = make(map[string]ProjectReport, len(names))
	)
	// claimStart reserves one of the pass's starts; false: wait for a later pass.
	claimStart := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if starts >= maxStarts || errs >= maxErrors {
			return false
		}
		starts++
		return true
	}
	backingOff := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return errs >= maxErrors
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range jobs {
				r, stepErr := c.converge(ctx, w, claimStart, backingOff)
				mu.Lock()
				if stepErr {
					errs++
				}
				results[w.name] = r
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		jobs <- byName[n]
	}
	close(jobs)
	wg.Wait()
	report.Started = starts
	for _, n := range names {
		r := results[n]
		switch r.Action {
		case "deferred":
			report.Deferred++
		case "error":
			report.Errors++
		}
		report.Projects = append(report.Projects, r)
	}
	return report, nil
}

// converge takes one project's step. stepErr reports a step that failed without an answer.
func (c *Converger) converge(ctx context.Context, w *work, claimStart, backingOff func() bool) (r ProjectReport, stepErr bool) {
	r = ProjectReport{Name: w.name, Action: "none"}
	var st pipeline.ProjectStatus
	if w.decl != nil {
		st = w.decl.Status
	}
	r.Status = st
	now := c.Clock.Now()
	log := c.log().With("project", w.name)

	if w.desired == nil {
		return c.remove(ctx, w, st, now, claimStart, backingOff, log)
	}
	p := *w.desired
	if err := p.Validate(); err != nil {
		next := st
		next.State, next.Reason, next.LastStepAt = pipeline.ProjectFailed, err.Error(), now
		return c.write(ctx, w.name, st, next, "deploy", log), false
	}
	hash := p.SpecHash(c.SpecExtra...)
	stackStatus := ""
	if w.stack != nil {
		stackStatus = w.stack.StackStatus
	}

	next := st
	switch {
	case st.SpecHash != hash:
		// A new declaration (or a first one): a new deploy.
		next.SpecHash, next.Generation, next.Progress, next.RetryAt = hash, 1, "", time.Time{}
	case st.State == pipeline.ProjectReady && w.stack != nil && settled(stackStatus):
		// Converged, and the stack is still there and at rest: nothing to do. A stack that
		// the pipeline updated itself is still this project's (SelfUpdate keeps the
		// parameters the control plane gave).
		if st.StackStatus != stackStatus {
			next.StackStatus = stackStatus
			return c.write(ctx, w.name, st, next, "none", log), false
		}
		return r, false
	case st.State == pipeline.ProjectReady && w.stack != nil && strings.HasSuffix(stackStatus, "_IN_PROGRESS"):
		// The pipeline is updating its own stack (SelfUpdate): not the converger's business
		// until it ends.
		return r, false
	case st.State == pipeline.ProjectReady:
		// Ready, but the stack is gone or stuck (deleted by hand, a failed self-update):
		// deploy again, as a new generation.
		next.Generation, next.Progress = st.Generation+1, ""
	case st.State == pipeline.ProjectFailed && now.Before(st.RetryAt):
		return r, false
	case st.State == pipeline.ProjectFailed:
		next.Generation, next.Progress = st.Generation+1, ""
	case st.State == pipeline.ProjectRemoving:
		// Declared again while its removal ran: deploy again once the removal is over.
		next.Generation, next.Progress = st.Generation+1, ""
	}
	if next.Generation == 0 {
		next.Generation = 1
	}
	// A deploy that is not under way yet takes one of the pass's starts.
	fresh := next.Progress == ""
	if (fresh && !claimStart()) || (!fresh && backingOff()) {
		if st.State == "" || next.SpecHash != st.SpecHash {
			next.State, next.Reason, next.LastStepAt = pipeline.ProjectConverging, "queued: waiting for a free slot (bounded concurrency)", now
			r = c.write(ctx, w.name, st, next, "deferred", log)
		}
		r.Action = "deferred"
		return r, false
	}

	if next.RepositoryCloneURL == "" && c.Repositories != nil {
		url, err := c.Repositories.Ensure(ctx, p.Name)
		if err != nil {
			log.WarnContext(ctx, "repository not ensured; retrying on the next pass", "error", err.Error())
			next.State, next.Reason, next.LastStepAt = pipeline.ProjectConverging, "retrying: repository "+p.Name+": "+err.Error(), now
			r = c.write(ctx, w.name, st, next, "error", log)
			r.Action = "error"
			return r, true
		}
		next.RepositoryCloneURL = url
	}

	res, err := c.Stacks.Step(ctx, pipeline.ProjectStep{Project: p, Token: deployToken(p.Name, next.SpecHash, next.Generation), Progress: next.Progress})
	next.LastStepAt = now
	if err != nil {
		// No answer about the stack (throttled beyond the SDK's retries): not a failure of the
		// project. The next pass observes again.
		log.WarnContext(ctx, "step without an answer; retrying on the next pass", "error", err.Error())
		next.State, next.Reason = pipeline.ProjectConverging, "retrying: "+err.Error()
		r = c.write(ctx, w.name, st, next, "error", log)
		r.Action = "error"
		return r, true
	}
	next.StackStatus, next.Progress = res.StackStatus, res.Progress
	switch {
	case res.Done:
		next.State, next.Reason, next.RetryAt, next.Progress = pipeline.ProjectReady, res.Reason, time.Time{}, ""
	case res.Failed:
		next.State, next.Reason, next.Progress = pipeline.ProjectFailed, res.Reason, ""
		next.RetryAt = now.Add(c.retryAfter(next.Generation))
		log.WarnContext(ctx, "project failed", "reason", res.Reason, "retryAt", next.RetryAt)
	default:
		next.State, next.Reason = pipeline.ProjectConverging, res.Reason
	}
	return c.write(ctx, w.name, st, next, "deploy", log), false
}

// remove takes one step of removing a project that is no longer declared: its stack is
// deleted (the repository stays), then its item.
func (c *Converger) remove(ctx context.Context, w *work, st pipeline.ProjectStatus, now time.Time, claimStart, backingOff func() bool, log *slog.Logger) (ProjectReport, bool) {
	r := ProjectReport{Name: w.name, Action: "none", Status: st}
	if w.stack == nil && st.State != pipeline.ProjectRemoving {
		// Nothing deployed: forget the item (a tombstone, or the status of a project the
		// parameter no longer names).
		if w.decl != nil {
			if _, err := c.Store.DeleteProject(ctx, w.name, st.Version); err != nil {
				log.WarnContext(ctx, "project item not deleted", "error", err.Error())
			}
			r.Action = "remove"
		}
		return r, false
	}
	next := st
	if st.State != pipeline.ProjectRemoving {
		next.Generation, next.Progress = st.Generation+1, ""
		if !claimStart() {
			r.Action = "deferred"
			return r, false
		}
	} else if backingOff() {
		r.Action = "deferred"
		return r, false
	}
	p := pipeline.Project{Name: w.name}
	res, err := c.Stacks.Step(ctx, pipeline.ProjectStep{Project: p, Delete: true, Token: removeToken(w.name, next.Generation), Progress: next.Progress})
	next.LastStepAt = now
	if err != nil {
		next.State, next.Reason = pipeline.ProjectRemoving, "retrying: "+err.Error()
		r = c.write(ctx, w.name, st, next, "error", log)
		r.Action = "error"
		return r, true
	}
	next.StackStatus, next.Progress = res.StackStatus, res.Progress
	switch {
	case res.Done:
		// Gone: forget the project (its repository and its runs stay).
		if w.decl == nil {
			return ProjectReport{Name: w.name, Action: "remove"}, false
		}
		if ok, err := c.Store.DeleteProject(ctx, w.name, st.Version); err != nil || !ok {
			if err != nil {
				log.WarnContext(ctx, "project item not deleted", "error", err.Error())
			}
			r.Action = "lost"
			return r, false
		}
		log.InfoContext(ctx, "project removed; its repository is retained")
		return ProjectReport{Name: w.name, Action: "remove"}, false
	case res.Failed:
		next.State, next.Reason = pipeline.ProjectFailed, "removing: "+res.Reason
		next.RetryAt = now.Add(c.retryAfter(next.Generation))
	default:
		next.State, next.Reason = pipeline.ProjectRemoving, res.Reason
	}
	return c.write(ctx, w.name, st, next, "remove", log), false
}

// write stores next over prev (a lost race is reported, not an error: the winner's pass
// observed at least as much).
func (c *Converger) write(ctx context.Context, name string, prev, next pipeline.ProjectStatus, action string, log *slog.Logger) ProjectReport {
	ok, err := c.Store.PutStatus(ctx, name, prev.Version, next)
	switch {
	case err != nil:
		log.WarnContext(ctx, "project status not written; the next pass observes again", "error", err.Error())
		return ProjectReport{Name: name, Action: "error", Status: next}
	case !ok:
		return ProjectReport{Name: name, Action: "lost", Status: prev}
	}
	next.Version = prev.Version + 1
	return ProjectReport{Name: name, Action: action, Status: next}
}

func (c *Converger) retryAfter(generation int) time.Duration {
	d := cmpOr(c.RetryAfter, DefaultRetryAfter)
	limit := cmpOr(c.MaxRetryAfter, DefaultMaxRetryAfter)
	for i := 1; i < generation && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (c *Converger) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// settled reports whether a stack is at rest in a good state.
func settled(status string) bool {
	switch status {
	case "CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "UPDATE_ROLLBACK_COMPLETE":
		// UPDATE_ROLLBACK_COMPLETE: a self-update that failed rolled back to a working
		// pipeline; the run that pushed it reports the failure.
		return true
	}
	return false
}

// deployToken and removeToken name a step's change set and request tokens: the same project,
// declaration and generation give the same names, whichever pass (or concurrent converger)
// takes the step. CloudFormation's token alphabet is [a-zA-Z0-9-].
func deployToken(name, hash string, generation int) string {
	return fmt.Sprintf("converge-%s-%s-g%d", name, hash, generation)
}

func removeToken(name string, generation int) string {
	return fmt.Sprintf("remove-%s-g%d", name, generation)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ErrUndeclared says that a pipeline or repository belongs to no declared project.
var ErrUndeclared = pipeline.ErrUndeclaredProject

// Lookup finds declared projects by repository (on-push) or pipeline (on-pipeline-event,
// the notifier). Repository names are project names; pipelines are <project>-pipeline.
type Lookup struct {
	Parameter []pipeline.Project
	Store     interface {
		GetProject(ctx context.Context, name string) (pipeline.ProjectDeclaration, bool, error)
	}

	mu    sync.Mutex
	cache map[string]pipeline.Project // found projects, per cold start
}

// ByRepository returns the project a repository belongs to, or ErrUndeclared.
func (l *Lookup) ByRepository(ctx context.Context, repository string) (pipeline.Project, error) {
	if pipeline.ValidateProjectName(repository) != nil {
		return pipeline.Project{}, fmt.Errorf("repository %s: %w", repository, ErrUndeclared)
	}
	l.mu.Lock()
	if p, ok := l.cache[repository]; ok {
		l.mu.Unlock()
		return p, nil
	}
	l.mu.Unlock()
	var table []pipeline.ProjectDeclaration
	if l.Store != nil {
		d, ok, err := l.Store.GetProject(ctx, repository)
		if err != nil {
			return pipeline.Project{}, fmt.Errorf("look project %s up: %w", repository, err)
		}
		if ok {
			table = append(table, d)
		}
	}
	for _, p := range pipeline.Desired(l.Parameter, table) {
		if p.Name == repository {
			l.mu.Lock()
			if l.cache == nil {
				l.cache = map[string]pipeline.Project{}
			}
			l.cache[repository] = p
			l.mu.Unlock()
			return p, nil
		}
	}
	return pipeline.Project{}, fmt.Errorf("repository %s: %w", repository, ErrUndeclared)
}

// Declared lists the declared projects: the parameter's and the table's, merged as the
// converger merges them (pipeline.Desired). The push re-drive walks them.
type Declared struct {
	Parameter []pipeline.Project
	Store     interface {
		ListProjects(ctx context.Context) ([]pipeline.ProjectDeclaration, error)
	}
}

// Declared returns the declared projects, by name.
func (d Declared) Declared(ctx context.Context) ([]pipeline.Project, error) {
	var table []pipeline.ProjectDeclaration
	if d.Store != nil {
		var err error
		if table, err = d.Store.ListProjects(ctx); err != nil {
			return nil, err
		}
	}
	return pipeline.Desired(d.Parameter, table), nil
}

// ByPipeline returns the project a pipeline belongs to, or ErrUndeclared.
func (l *Lookup) ByPipeline(ctx context.Context, pipelineName string) (pipeline.Project, error) {
	name := pipeline.ProjectOfPipeline(pipelineName)
	if name == "" {
		return pipeline.Project{}, fmt.Errorf("pipeline %s: %w", pipelineName, ErrUndeclared)
	}
	p, err := l.ByRepository(ctx, name)
	if err != nil && errors.Is(err, ErrUndeclared) {
		return p, fmt.Errorf("pipeline %s: %w", pipelineName, ErrUndeclared)
	}
	return p, err
}

// TrimReason keeps a reason short enough for a table attribute and a terminal line.
func TrimReason(s string) string {
	const limit = 2000
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}
