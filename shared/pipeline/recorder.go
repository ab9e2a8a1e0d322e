package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RunStore keeps one record per execution.
type RunStore interface {
	// Record folds ev into its run and returns the run as it stands afterwards with the fold's
	// effects. A duplicate or stale event is not an error: it returns the current run and an
	// Ignored effect.
	Record(ctx context.Context, ev Event, now time.Time) (Run, []Effect, error)
	// Get returns one run, or ErrNotFound.
	Get(ctx context.Context, k Key) (Run, error)
}

// OutcomeStore keeps each pipeline's decisive outcomes, for the "recovered" decision.
type OutcomeStore interface {
	// AddOutcome records o (idempotently) and returns the pipeline's decisive outcomes around
	// it, as Decide needs them: back to the start of the failure streak before o (bounded),
	// and the next one after o.
	AddOutcome(ctx context.Context, o Outcome, now time.Time) ([]Outcome, error)
	// HasOutcomes reports whether any decisive outcome of the pipeline is recorded.
	HasOutcomes(ctx context.Context, pipeline string) (bool, error)
}

// Claims makes each notification go out once: Claim before sending, Release after.
type Claims interface {
	// Claim reserves n for this caller for lease. It returns false when n was sent already,
	// or when another caller holds an unexpired lease on it.
	Claim(ctx context.Context, n Notification, now time.Time, lease time.Duration) (bool, error)
	// Sent marks a claimed notification as delivered.
	Sent(ctx context.Context, n Notification, now time.Time) error
	// Release gives up a claim whose sending failed, so that the retry can take it at once.
	Release(ctx context.Context, n Notification) error
}

// Notifier delivers a notification about a run (Slack, SNS, or a collector in replay).
type Notifier interface {
	Notify(ctx context.Context, n Notification, run Run) error
}

// ErrNotFound is returned by stores for a missing run.
var ErrNotFound = errors.New("not found")

// Dispatcher takes a decided notification on from the recorder. It must be idempotent: the
// same notification is dispatched again when its event is delivered again.
type Dispatcher interface {
	// Dispatch returns true when this call delivered (or queued) n, false when an earlier or
	// concurrent call did.
	Dispatch(ctx context.Context, n Notification, run Run) (bool, error)
}

// Recorder is the on-pipeline-event use case: fold the event into its run, decide the
// notifications, dispatch them. The Lambda handler and `lp replay` both run it.
type Recorder struct {
	Runs     RunStore
	Outcomes OutcomeStore
	// Dispatch sends the notifications (Direct) or queues them for the notifier function
	// (runstore.Outbox).
	Dispatch Dispatcher
	Now      func() time.Time
}

// Result tells what handling one event did.
type Result struct {
	Run     Run
	Ignored string         // ReasonDuplicate or ReasonStale when the fold changed nothing
	Sent    []Notification // notifications dispatched by this call
}

// Handle records ev and dispatches what it calls for. An error means a retry may succeed (a
// store or channel failed); every step is idempotent, so retrying the whole event is safe.
func (r *Recorder) Handle(ctx context.Context, ev Event) (Result, error) {
	now := r.now()
	run, effects, err := r.Runs.Record(ctx, ev, now)
	if err != nil {
		return Result{}, fmt.Errorf("record %s event of execution %s: %w", ev.Level, ev.ExecutionID, err)
	}
	res := Result{Run: run}
	for _, e := range effects {
		if ig, ok := e.(Ignored); ok {
			res.Ignored = ig.Reason
		}
	}
	// Decisions are taken for every pipeline-level terminal event, duplicates included: a
	// delivery that crashed after recording but before dispatching is healed by its retry,
	// and the claims keep the message single.
	if ev.Level != LevelPipeline || !ev.State.Status().Terminal() {
		return res, nil
	}
	o := Outcome{Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID, Attempt: max(ev.Attempt, 1), Status: ev.State.Status(), At: ev.Time, Trigger: run.Trigger}
	for _, folded := range run.Outcomes {
		if folded.Attempt == o.Attempt {
			// The fold's winner for this attempt: a late event or the reconciler's view of
			// the same end then makes the same outcome, not a second one.
			o = folded
		}
	}
	if Silent(o) {
		return res, nil
	}
	pushToStart := IsPushToStart(run, o)
	if !pushToStart && o.Trigger == (Trigger{}) && o.Status == StatusFailed && onlySourceStage(run) {
		// The trigger is not known yet (the STARTED event has not arrived; the FAILED one
		// may not carry it): a run that failed in Source and is the pipeline's first is the
		// run on the empty repository.
		has, err := r.Outcomes.HasOutcomes(ctx, o.Pipeline)
		if err != nil {
			return res, fmt.Errorf("read outcomes of %s: %w", o.Pipeline, err)
		}
		pushToStart = !has
	}
	var decided []Notification
	if pushToStart {
		decided = Decide(nil, o, true)
	} else {
		history, err := r.Outcomes.AddOutcome(ctx, o, now)
		if err != nil {
			return res, fmt.Errorf("record outcome of execution %s: %w", o.ExecutionID, err)
		}
		decided = Decide(history, o, false)
	}
	var errs []error
	for _, n := range decided {
		subject := run
		if n.ExecutionID != run.ExecutionID {
			// A recovery found while handling another execution's failure: dispatch it
			// with the recovered run's own record.
			if subject, err = r.Runs.Get(ctx, Key{n.Pipeline, n.ExecutionID}); err != nil {
				errs = append(errs, fmt.Errorf("load run %s for %s: %w", n.ExecutionID, n.Key(), err))
				continue
			}
		}
		sent, err := r.Dispatch.Dispatch(ctx, n, subject)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if sent {
			res.Sent = append(res.Sent, n)
		}
	}
	return res, errors.Join(errs...)
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// DefaultLease is the claim lease when Direct.Lease is zero.
const DefaultLease = 50 * time.Second

// Direct claims a notification and delivers it at once through its Notifier: the notifier
// function (after the outbox), `lp replay` and tests use it.
type Direct struct {
	Claims   Claims
	Notifier Notifier
	Now      func() time.Time
	// Lease bounds how long a claimed notification waits for its sender before another
	// delivery may send it. It must exceed the sender's timeout and stay under the first
	// retry delay, so that the retry of a crashed sender finds it free.
	Lease time.Duration
}

// Dispatch claims n and delivers it. It returns false when n is someone else's to send.
func (d *Direct) Dispatch(ctx context.Context, n Notification, run Run) (bool, error) {
	lease := d.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	ok, err := d.Claims.Claim(ctx, n, d.now(), lease)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", n.Key(), err)
	}
	if !ok {
		return false, nil
	}
	if err := d.Notifier.Notify(ctx, n, run); err != nil {
		// Free the claim for the retry; if even that fails, the lease runs out on its own.
		if rerr := d.Claims.Release(ctx, n); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release claim: %w", rerr))
		}
		return false, fmt.Errorf("send %s: %w", n.Key(), err)
	}
	if err := d.Claims.Sent(ctx, n, d.now()); err != nil {
		return true, fmt.Errorf("mark %s sent: %w", n.Key(), err)
	}
	return true, nil
}

func (d *Direct) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}
