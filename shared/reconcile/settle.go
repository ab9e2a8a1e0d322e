package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// A pass reads what may need work, not the pipeline's history (issue 9, defect 12):
//
//   - its checkpoint (one item): when the last pass began, the runs it left open, and the
//     failed runs CodePipeline may still retry;
//   - the runs whose record changed since the last pass (less ChangeOverlap) or within
//     RedecideWithin, whichever reaches further back: the index alone tells which, and only
//     they are read;
//   - the open runs that are stale (the others are known open from the checkpoint, unread);
//   - the failed runs are asked about at CodePipeline first, and read only when CodePipeline
//     tells something the record does not;
//   - with Discover, the executions CodePipeline started in the same window that the index
//     does not name (rare: every pipeline-level event and the push lost) are read and checked.
//
// Then it compares each run that needs it with CodePipeline, folds the truth in, in the order
// the runs ended (so that each decision sees the pipeline's history as it happened), decides
// again the runs whose end was recorded within RedecideWithin, and leaves the next checkpoint.
// The first pass over a pipeline (or one whose checkpoint is gone) reads the whole Lookback.

// tracked is one run a pass looks at.
type tracked struct {
	key        pipeline.Key
	changed    time.Time       // its latest placement, when it changed since the last pass
	discovered bool            // started since the last pass as CodePipeline lists, not indexed
	open       *pipeline.Watch // the checkpoint's, when it was open at the last pass
	failed     *pipeline.Watch // the checkpoint's, when it had failed

	run    pipeline.Run // as read (loaded) or as this pass left it
	loaded bool
	gone   bool   // began before the Lookback, or no longer stored: not followed any more
	lost   bool   // CodePipeline does not know the execution
	stage  string // the stage it failed in, as CodePipeline told it

	view    pipeline.ExecutionView
	viewed  bool
	check   bool // an open run to compare with CodePipeline
	recheck bool // a failed run to ask CodePipeline about
	redrive bool // a decisive run whose end was recorded within RedecideWithin
	// answered: what CodePipeline said of it this pass is in the record (or told nothing new).
	answered bool
}

// began is when the run began, as read or as the checkpoint remembers.
func (t *tracked) began() time.Time {
	if t.loaded {
		return t.run.Began()
	}
	if t.open != nil {
		return t.open.Began
	}
	if t.failed != nil {
		return t.failed.Began
	}
	return time.Time{}
}

// settle is the run-settling part of a pass. It returns the failures of single runs (the pass
// goes on past them), or an error when the pass could not start (checkpoint or changes
// unreadable).
func (r *Reconciler) settle(ctx context.Context, now time.Time, resp *ReconcileResponse) ([]error, error) {
	staleAfter, lookback := cmp.Or(r.StaleAfter, DefaultStaleAfter), cmp.Or(r.Lookback, DefaultLookback)
	recheckWithin := cmp.Or(r.RecheckFailedWithin, DefaultRecheckFailedWithin)
	horizon := now.Add(-lookback)

	cp, err := r.Runs.Checkpoint(ctx, r.PipelineName)
	first := errors.Is(err, pipeline.ErrNotFound)
	if err != nil && !first {
		return nil, fmt.Errorf("read checkpoint of %s: %w", r.PipelineName, err)
	}
	from := horizon
	// since: a run whose record changed after it may have failed unseen by the last pass.
	// The first pass has no last pass: it asks only the runs CodePipeline may still retry.
	since := now
	if !first {
		from = later(horizon, earlier(cp.At.Add(-ChangeOverlap), now.Add(-RedecideWithin)))
		since = cp.At.Add(-ChangeOverlap)
	}
	changes, err := r.Runs.Changed(ctx, r.PipelineName, from)
	if err != nil {
		return nil, fmt.Errorf("list changed runs of %s: %w", r.PipelineName, err)
	}

	byID := map[string]*tracked{}
	get := func(id string) *tracked {
		t := byID[id]
		if t == nil {
			t = &tracked{key: pipeline.Key{Pipeline: r.PipelineName, ExecutionID: id}}
			byID[id] = t
		}
		return t
	}
	for _, w := range cp.Open {
		get(w.ExecutionID).open = &w
	}
	for _, w := range cp.Failed {
		get(w.ExecutionID).failed = &w
	}
	for _, c := range changes {
		get(c.Key.ExecutionID).changed = c.At
	}
	var errs []error
	complete := true // every changed run was read: the checkpoint may move on
	// A pipeline of another account or region (pipeline.Home): CodePipeline here knows
	// nothing of it (or knows a same-named one), so what its lost events said stays unknown.
	// Its decisions need only the store: they are taken again like any other's.
	foreign := pipeline.ParsePipelineID(r.PipelineName).Foreign()
	if r.Discover != nil && !foreign {
		started, err := r.Discover.Started(ctx, r.PipelineName, from)
		if err != nil {
			// The next pass lists the same window again: the checkpoint stays.
			complete = false
			r.Log.ErrorContext(ctx, "executions not listed", "pipeline", r.PipelineName, "error", err.Error())
			errs = append(errs, fmt.Errorf("list executions of %s: %w", r.PipelineName, err))
		}
		for _, e := range started {
			if byID[e.ExecutionID] == nil {
				get(e.ExecutionID).discovered = true
			}
		}
	}
	all := make([]*tracked, 0, len(byID))
	for _, t := range byID {
		all = append(all, t)
	}
	newestFirst := func() {
		slices.SortFunc(all, func(a, b *tracked) int {
			if c := b.began().Compare(a.began()); c != 0 {
				return c
			}
			return strings.Compare(b.key.ExecutionID, a.key.ExecutionID)
		})
	}
	newestFirst()

	load := func(t *tracked) bool {
		if t.loaded {
			return true
		}
		h, err := r.Runs.Load(ctx, t.key)
		if errors.Is(err, pipeline.ErrNotFound) && t.discovered {
			// Nothing of it reached the store: what CodePipeline says will be its record.
			t.run, t.loaded = pipeline.Run{Pipeline: t.key.Pipeline, ExecutionID: t.key.ExecutionID}, true
			return true
		}
		if errors.Is(err, pipeline.ErrNotFound) {
			t.gone = true // expired since it was listed
			return true
		}
		if err != nil {
			r.Log.ErrorContext(ctx, "run not read", "pipeline", t.key.Pipeline, "executionId", t.key.ExecutionID, "error", err.Error())
			errs = append(errs, fmt.Errorf("read run %s: %w", t.key.ExecutionID, err))
			return false
		}
		t.run, t.loaded = h.Fold(), true
		return true
	}

	// What each run needs.
	for _, t := range all {
		if (!t.changed.IsZero() || t.discovered) && !load(t) {
			complete = false
			continue
		}
		if t.gone || !t.began().IsZero() && t.began().Before(horizon) {
			t.gone = true // as old as the Lookback: no longer followed
			continue
		}
		switch {
		case t.discovered && !t.run.Status.Terminal():
			// Not in the index: checked now, so that its record is indexed from now on.
			t.check = true
		case t.loaded && !t.run.Status.Terminal(), !t.loaded && t.open != nil:
			t.check = now.Sub(t.began()) >= staleAfter
		case t.loaded && t.run.Status == pipeline.StatusFailed, !t.loaded && t.failed != nil:
			t.recheck = true
		}
		recent := !t.changed.Before(now.Add(-RedecideWithin))
		t.redrive = t.loaded && t.run.Status.Decisive() && recent
		if foreign {
			t.check, t.recheck = false, false
			// A run that a stage retry resumed is in progress again, and no pass may ask
			// CodePipeline when the retry ends: the attempts that ended are decided again
			// all the same (seed 3236: attempt 1's FAILED came without its trigger, so the
			// hot path left its decision to the pass).
			t.redrive = t.redrive || t.loaded && len(t.run.Outcomes) > 0 && recent
			if t.loaded {
				resp.Foreign++
			}
		}
	}
	if resp.Foreign > 0 {
		// Once per pass, not per run.
		r.Log.InfoContext(ctx, "runs of a pipeline in another account or region: not compared with CodePipeline, their decisions taken again",
			"pipeline", r.PipelineName, "runs", resp.Foreign)
	}
	keepRetryable(all, now.Add(-recheckWithin), since)
	newestFirst() // as runs were always listed, and asked about

	// Ask CodePipeline, newest first.
	for _, t := range all {
		if !t.check && !t.recheck {
			continue
		}
		resp.Checked++
		view, err := r.Executions.Execution(ctx, t.key)
		switch {
		case errors.Is(err, pipeline.ErrNotFound):
			t.lost = true
			resp.Missing++
			r.Log.WarnContext(ctx, "CodePipeline does not know the execution; run left as it is", r.attrs(t)...)
		case err != nil:
			r.Log.ErrorContext(ctx, "run not reconciled", append(r.attrs(t), "error", err.Error())...)
			errs = append(errs, fmt.Errorf("ask about %s: %w", t.key.ExecutionID, err))
		default:
			t.view, t.viewed = view, true
		}
	}

	// Fold what CodePipeline said, and decide again, in the order the runs ended.
	work := slices.DeleteFunc(slices.Clone(all), func(t *tracked) bool { return !t.viewed && !t.redrive })
	slices.SortStableFunc(work, func(a, b *tracked) int { return compareEnds(a, b) })
	for _, t := range work {
		if t.viewed {
			if err := r.apply(ctx, t, now, resp); err != nil {
				errs = append(errs, err)
				continue
			}
			t.answered = true
		}
		if t.redrive {
			asKnown := foreign && !t.changed.After(now.Add(-DecideAsKnownAfter))
			if err := r.redrive(ctx, t.run, !foreign, asKnown); err != nil {
				r.Log.ErrorContext(ctx, "run not redriven", append(r.attrs(t), "error", err.Error())...)
				errs = append(errs, err)
				continue
			}
			resp.Redriven++
		}
	}

	if complete {
		next := pipeline.Checkpoint{At: now}
		for _, t := range all {
			if w, ok := openWatch(t, horizon); ok {
				next.Open = append(next.Open, w)
			}
		}
		// A run a later failure froze stays until CodePipeline answered about it.
		next.Failed = retryable(all, now.Add(-recheckWithin), func(t *tracked) bool { return t.recheck && !t.answered })
		if err := r.Runs.SaveCheckpoint(ctx, r.PipelineName, next); err != nil {
			r.Log.ErrorContext(ctx, "checkpoint not saved", "pipeline", r.PipelineName, "error", err.Error())
			errs = append(errs, err)
		}
	}
	return errs, nil
}

// apply folds the view the pass got of t's execution into its record: an open run is
// settled; a failed run is read and folded only when CodePipeline tells more than the
// record (a stage retry: another status, or more attempts).
func (r *Reconciler) apply(ctx context.Context, t *tracked, now time.Time, resp *ReconcileResponse) error {
	if t.recheck && !told(t, t.view) {
		if f, ok := t.view.LatestFailure(""); ok {
			t.stage = f.Stage // for the next checkpoint, when the record does not say
		}
		return nil
	}
	if !t.loaded {
		h, err := r.Runs.Load(ctx, t.key)
		if err != nil {
			r.Log.ErrorContext(ctx, "run not read", append(r.attrs(t), "error", err.Error())...)
			return fmt.Errorf("read run %s: %w", t.key.ExecutionID, err)
		}
		t.run, t.loaded = h.Fold(), true
	}
	before := t.run
	after, err := r.fold(ctx, before, t.view, now)
	if err != nil {
		// The record is somewhere between: the next pass reads it again (as it stood
		// before, the run stays open or failed for the checkpoint).
		r.Log.ErrorContext(ctx, "run not reconciled", append(r.attrs(t), "error", err.Error())...)
		return err
	}
	t.run = after
	switch {
	case t.recheck && after.Status == before.Status:
		// Failed again after a retry (or the record lacked an attempt): decide every
		// attempt, as the events of the attempts folded may not all end one.
		t.redrive = true
	case after.Status != before.Status && after.Status.Terminal():
		resp.Settled++
		r.Log.InfoContext(ctx, "run settled", append(r.attrs(t), "newStatus", string(after.Status))...)
	default:
		r.Log.InfoContext(ctx, "run still in progress", append(r.attrs(t), "newStatus", string(after.Status))...)
	}
	return nil
}

// told reports whether view says more than what the record (or the checkpoint) holds of a
// failed run: a status other than FAILED, or more attempts (stage retries) than it knows.
func told(t *tracked, view pipeline.ExecutionView) bool {
	attempt := 1
	if t.loaded {
		attempt = max(t.run.Attempt, 1) // the attempt whose end the record holds
	} else if t.failed != nil {
		attempt = max(t.failed.Attempt, 1)
	}
	if view.State != pipeline.StateFailed && view.State != "" {
		return true
	}
	return len(retriedFailures(view.Actions))+1 > attempt
}

// compareEnds orders the runs of a pass by when they ended, as CodePipeline reports it when
// the pass asked, else as the record tells: so that runs settled in one pass are decided in
// the order they ended. Runs still going come last; ties keep the order they had.
func compareEnds(a, b *tracked) int {
	ea, eb := endOf(a), endOf(b)
	switch {
	case ea.IsZero() && eb.IsZero():
		return 0
	case ea.IsZero():
		return 1
	case eb.IsZero():
		return -1
	}
	return ea.Compare(eb)
}

func endOf(t *tracked) time.Time {
	if t.viewed {
		if !t.view.State.Status().Terminal() {
			return time.Time{}
		}
		return latestUpdate(t.view.Actions)
	}
	if t.loaded {
		return t.run.EndedAt
	}
	if t.failed != nil {
		return t.failed.Ended
	}
	return time.Time{}
}

// keepRetryable narrows the failed runs to ask about to those CodePipeline may still retry:
// failed since cutoff, and, per stage they failed in, the run that began last (a stage that
// failed in a later run cannot be retried in an earlier one). A run whose failing stage is
// not known yet is kept. So is an earlier run that the last pass watched (it was the latest
// in its stage, open, or still unanswered) or that may have failed since: a later failure
// freezes it, but CodePipeline may have retried it before, its events lost (seed 34545).
// Asked once after that failure, it is let go.
func keepRetryable(all []*tracked, cutoff, since time.Time) {
	kept := map[string]bool{}
	look := func(t *tracked) bool {
		return t.failed != nil || t.open != nil || !t.changed.IsZero() && !t.changed.Before(since)
	}
	for _, w := range retryable(all, cutoff, look) {
		kept[w.ExecutionID] = true
	}
	for _, t := range all {
		if t.recheck && !kept[t.key.ExecutionID] {
			t.recheck = false
		}
	}
}

// retryable returns the failed runs (as this pass leaves them) that CodePipeline may still
// retry, and the earlier ones of their stages that still need a look: see keepRetryable.
func retryable(all []*tracked, cutoff time.Time, look func(*tracked) bool) []pipeline.Watch {
	latest := map[string]pipeline.Watch{}
	var out, earlier []pipeline.Watch
	for _, t := range all {
		w, ok := failedWatch(t)
		if !ok || w.Ended.Before(cutoff) {
			continue
		}
		if w.Stage == "" {
			out = append(out, w)
			continue
		}
		if have, ok := latest[w.Stage]; !ok || w.Began.After(have.Began) || w.Began.Equal(have.Began) && w.ExecutionID > have.ExecutionID {
			latest[w.Stage] = w
		}
		if look(t) {
			earlier = append(earlier, w)
		}
	}
	for _, w := range latest {
		out = append(out, w)
	}
	for _, w := range earlier {
		if latest[w.Stage].ExecutionID != w.ExecutionID {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b pipeline.Watch) int { return strings.Compare(a.ExecutionID, b.ExecutionID) })
	return out
}

// failedWatch is what the next pass needs of t if it is a failed run.
func failedWatch(t *tracked) (pipeline.Watch, bool) {
	var w pipeline.Watch
	switch {
	case t.lost || t.gone:
		return w, false
	case t.loaded && t.run.Status == pipeline.StatusFailed:
		w = pipeline.Watch{ExecutionID: t.key.ExecutionID, Began: t.run.Began(), Ended: t.run.EndedAt, Attempt: max(t.run.Attempt, 1),
			Stage: t.run.Failure().Stage}
	case !t.loaded && t.failed != nil:
		w = *t.failed
	default:
		return w, false
	}
	if w.Stage == "" {
		w.Stage = t.stage
	}
	if w.Stage == "" && t.failed != nil {
		w.Stage = t.failed.Stage
	}
	return w, true
}

// openWatch is what the next pass needs of t if it is still open.
func openWatch(t *tracked, horizon time.Time) (pipeline.Watch, bool) {
	switch {
	case t.gone:
		return pipeline.Watch{}, false
	case t.loaded && !t.run.Status.Terminal():
		w := pipeline.Watch{ExecutionID: t.key.ExecutionID, Began: t.run.Began()}
		return w, !w.Began.Before(horizon)
	case !t.loaded && t.open != nil:
		return *t.open, !t.open.Began.Before(horizon)
	}
	return pipeline.Watch{}, false
}

func (r *Reconciler) attrs(t *tracked) []any {
	return []any{"pipeline", t.key.Pipeline, "executionId", t.key.ExecutionID, "status", string(t.run.Status), "startedAt", t.began()}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
