package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RunStore keeps the facts of runs and nothing else: it does not fold, decide or order.
type RunStore interface {
	// Append stores ev's observation (see Event.ObservationID) with one conditional write and
	// no read. duplicate is true, and the store unchanged, when that observation is stored
	// already.
	Append(ctx context.Context, ev Event) (duplicate bool, err error)
	// Load returns a run's history (its observations and its push), or ErrNotFound when the
	// store holds nothing of the run.
	Load(ctx context.Context, k Key) (History, error)
}

// LoadRun reads a run's history from s and folds it.
func LoadRun(ctx context.Context, s RunStore, k Key) (Run, error) {
	h, err := s.Load(ctx, k)
	if err != nil {
		return Run{}, err
	}
	return h.Fold(), nil
}

// OutcomeStore keeps each pipeline's decisive outcomes, for the "recovered" decision.
type OutcomeStore interface {
	// AddOutcome records o (idempotently) and returns the pipeline's decisive outcomes around
	// it, as Decide needs them: back to the start of the failure streak before o (bounded),
	// and the next one after o.
	AddOutcome(ctx context.Context, o Outcome, now time.Time) ([]Outcome, error)
	// HasOutcomes reports whether any decisive outcome of the pipeline is recorded.
	HasOutcomes(ctx context.Context, pipeline string) (bool, error)
	// Recover records that the success by recovers the failure streak (the failed outcomes
	// between the success before and by, oldest first, as the decision knows them). A streak
	// is recovered once, so that runs learnt out of the order they ended cannot make two
	// successes of one green streak each tell it: Recover returns false when another success
	// holds one of the streak's failures. A success holds the streak's newest failure; when a
	// failure learnt later lies between it and the failure it held, it moves to the later one
	// and lets the earlier go (a success learnt later between the two may then recover it). A
	// holder whose RecoveryLease ran out without its "recovered" being queued lost its
	// invocation (its retry found itself no longer the first success of the streak), and
	// another success may take its failure over. Recording the same again returns true.
	Recover(ctx context.Context, streak []Outcome, by string, now time.Time) (bool, error)
}

// Claims makes each notification go out once: Claim before sending, then Sent, or Release
// after a failed attempt.
type Claims interface {
	// Claim reserves n for this caller for lease. It returns the attempt this claim starts
	// (1 for the first), or 0 when n was sent or given up already, or when another caller
	// holds an unexpired lease on it.
	Claim(ctx context.Context, n Notification, now time.Time, lease time.Duration) (attempt int, err error)
	// Sent marks a claimed notification as delivered.
	Sent(ctx context.Context, n Notification, now time.Time) error
	// Release ends a failed attempt in one write: it records the channels that delivered
	// during it, and either leaves the claim PENDING with a lease until r.RetryAt (the next
	// attempt may take it from then on) or, when r.GiveUp, marks it ClaimFailed for good.
	Release(ctx context.Context, n Notification, r Retry) error
}

// Retry is how a failed attempt ends (Claims.Release).
type Retry struct {
	Delivered []string  // channels that delivered during the attempt (their marks may have failed)
	RetryAt   time.Time // the next attempt may start then
	GiveUp    bool      // the attempts are spent: the claim becomes ClaimFailed
	Reason    string    // the attempt's error, for the person reading a given-up claim
}

// RecoveryLease is how long a success holds the failure it recovers before its "recovered" must
// be queued (OutcomeStore.Recover): longer than any function that decides (the reconciler's timeout is
// five minutes), so that only a holder whose invocation died loses it.
const RecoveryLease = 10 * time.Minute

// MaxNotifyAttempts bounds how often one notification is attempted. With NotifyBackoff the
// attempts span about four hours (and the reconciler's requeue period on top), which outlasts
// the Slack and SNS incidents that retrying can ride out; what still fails is given up,
// visibly (ClaimFailed, `lp notifications`, a log line the template's alarm counts).
const MaxNotifyAttempts = 8

// NotifyBackoff is how long after failed attempt a notification waits: 1 min, doubling,
// capped at one hour.
func NotifyBackoff(attempt int) time.Duration {
	d := time.Minute
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// DeliveryError is a notifier's failure that says which channels delivered anyway, so that
// the claim remembers them and a retry does not repeat them.
type DeliveryError struct {
	Delivered []string
	Err       error
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// Notifier delivers a notification about a run (Slack, SNS, or a collector in replay).
type Notifier interface {
	Notify(ctx context.Context, n Notification, run Run) error
}

// ErrNotFound is returned by stores for a missing run.
var ErrNotFound = errors.New("not found")

// ErrMalformed is returned by stores for an item they cannot read (a stream record of an
// approval request without its key, say): reading it again gives the same, so it is dropped.
var ErrMalformed = errors.New("malformed item")

// Dispatcher takes a decided notification on from the recorder. It must be idempotent: the
// same notification is dispatched again when its event is delivered again.
type Dispatcher interface {
	// Dispatch returns true when this call delivered (or queued) n, false when an earlier or
	// concurrent call did.
	Dispatch(ctx context.Context, n Notification, run Run) (bool, error)
}

// Recorder is the on-pipeline-event use case: append the event, and for an event that ends an
// attempt, load the run, fold it, decide the notifications and dispatch them. The Lambda
// handler, the reconciler and `lp replay` all run it, over DynamoDB or memory alike.
type Recorder struct {
	runs     RunStore
	outcomes OutcomeStore
	dispatch Dispatcher
	clock    Clock
	ended    func(ctx context.Context, e Ending)
}

// NewRecorder returns a recorder over the stores. dispatch sends the decided notifications
// (Direct) or queues them for the notifier function (the store's outbox).
func NewRecorder(runs RunStore, outcomes OutcomeStore, dispatch Dispatcher, clock Clock) *Recorder {
	return &Recorder{runs: runs, outcomes: outcomes, dispatch: dispatch, clock: clock}
}

// Ending is an attempt of a run that an event ended for the first time.
type Ending struct {
	Run     Run
	Outcome Outcome
	// BrokenSince is when the failure streak this success ends began; zero when it ends none.
	BrokenSince time.Time
}

// OnEnded calls f, after the decision, once for each attempt that an event ends for the first
// time (not for duplicates): the place to emit a finished run's metrics.
func (r *Recorder) OnEnded(f func(ctx context.Context, e Ending)) *Recorder {
	r.ended = f
	return r
}

// Result tells what handling one event did.
type Result struct {
	Key    Key
	Status Status // the run's status when Loaded, else the status the event tells
	// Run is the run as it stands after the event, for the events whose handling loads it
	// (those that end an attempt, see Event.EndsAttempt); the zero Run otherwise.
	Run    Run
	Loaded bool
	// Ignored is ReasonDuplicate when the store held the observation already, or
	// ReasonStale when the loaded run outranks it. Staleness is only known for loaded runs.
	Ignored string
	Sent    []Notification // notifications dispatched by this call
}

// Handle records ev and dispatches what it calls for. An error means a retry may succeed (a
// store or channel failed); every step is idempotent, so retrying the whole event is safe.
func (r *Recorder) Handle(ctx context.Context, ev Event) (Result, error) {
	k := ev.Key()
	duplicate, err := r.runs.Append(ctx, ev)
	if err != nil {
		return Result{}, fmt.Errorf("record %s event of execution %s: %w", ev.Level, ev.ExecutionID, err)
	}
	res := Result{Key: k, Status: ev.State.Status()}
	if duplicate {
		res.Ignored = ReasonDuplicate
	}
	if !ev.EndsAttempt() {
		return res, nil
	}
	h, err := r.runs.Load(ctx, k)
	if err != nil {
		return res, fmt.Errorf("load run %s: %w", ev.ExecutionID, err)
	}
	var run Run
	var ended []Outcome
	if duplicate {
		run = h.Fold()
	} else {
		// Fold everything but this event, then this event, so that its effects are known.
		var effects []Effect
		run, effects = Apply(h.Without(ev.ObservationID()).Fold(), ev)
		for _, e := range effects {
			switch e := e.(type) {
			case Ignored:
				res.Ignored = e.Reason
			case Ended:
				ended = append(ended, e.Outcome)
			}
		}
		run = WithPush(run, h.Push)
	}
	res.Run, res.Loaded, res.Status = run, true, run.Status
	// Decisions are taken for every event that ends an attempt, duplicates included: a
	// delivery that crashed after recording but before dispatching is healed by its retry,
	// and the claims keep the message single.
	decided, sent, err := r.decide(ctx, run, max(ev.Attempt, 1), false)
	res.Sent = sent
	if r.ended != nil {
		for _, o := range ended {
			e := Ending{Run: run, Outcome: o}
			for _, n := range decided {
				if n.Type == NotifyRecovered && n.ExecutionID == run.ExecutionID {
					e.BrokenSince = n.BrokenSince
				}
			}
			r.ended(ctx, e)
		}
	}
	return res, err
}

// Decide takes the notification decision for an ended attempt of run, as the fold recorded
// it, and dispatches what it calls for. It is idempotent: the reconciler calls it again on
// runs it settled, in case a pass failed to dispatch. It returns the notifications that this
// call dispatched.
func (r *Recorder) Decide(ctx context.Context, run Run, attempt int) ([]Notification, error) {
	_, sent, err := r.decide(ctx, run, attempt, false)
	return sent, err
}

// DecideAsKnown is Decide for a run nobody can learn more of (a pipeline of another account or
// region, which CodePipeline here cannot be asked about): a FAILED in Source whose trigger and
// error stay unknown is told as a failure instead of waiting for what would tell "push to
// start". A failure must not go unreported for want of a fact that will never come.
func (r *Recorder) DecideAsKnown(ctx context.Context, run Run, attempt int) ([]Notification, error) {
	_, sent, err := r.decide(ctx, run, attempt, true)
	return sent, err
}

// decide returns what the decision called for and what this call dispatched of it.
func (r *Recorder) decide(ctx context.Context, run Run, attempt int, asKnown bool) (decided, sent []Notification, err error) {
	o, ok := run.OutcomeOf(attempt)
	if !ok || Silent(o) {
		return nil, nil, nil
	}
	if !asKnown && o.Status == StatusFailed && o.Trigger == (Trigger{}) && onlySourceStage(run) && run.Failure().Action == "" {
		// Neither what started the run nor the Source action's error is known yet (the
		// FAILED event came first): whether it is a failure or the empty repository's "push
		// to start" waits for the reconciler's next pass, which decides again every run that
		// ended in the last hour, and asks CodePipeline when the record still cannot tell.
		// (Deciding on the late action event instead would cost every FAILED action event a
		// read on the hot path.)
		return nil, nil, nil
	}
	pushToStart := IsPushToStart(run, o)
	if pushToStart {
		decided = Decide(nil, o, true)
	} else {
		history, err := r.outcomes.AddOutcome(ctx, o, r.clock.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("record outcome of execution %s: %w", o.ExecutionID, err)
		}
		decided = Decide(history, o, false)
	}
	var errs []error
	for _, n := range decided {
		if n.Type == NotifyRecovered {
			// Runs learnt out of the order they ended can make two successes of one green
			// streak each look like the first: a failure streak is recovered once. (The
			// claim per success keeps one success from telling it twice when a failure
			// learnt later moves it.)
			ok, err := r.outcomes.Recover(ctx, n.Recovers, n.ExecutionID, r.clock.Now())
			if err != nil {
				errs = append(errs, fmt.Errorf("record the recovery by %s: %w", n.ExecutionID, err))
				continue
			}
			if !ok {
				continue
			}
		}
		subject := run
		if n.ExecutionID != run.ExecutionID {
			// A recovery found while handling another execution's failure: dispatch it
			// with the recovered run's own record.
			var err error
			if subject, err = LoadRun(ctx, r.runs, Key{n.Pipeline, n.ExecutionID}); err != nil {
				errs = append(errs, fmt.Errorf("load run %s for %s: %w", n.ExecutionID, n.Key(), err))
				continue
			}
		}
		ok, err := r.dispatch.Dispatch(ctx, n, subject)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			sent = append(sent, n)
		}
	}
	return decided, sent, errors.Join(errs...)
}

// DefaultLease is the claim lease when Direct.Lease is zero.
const DefaultLease = 50 * time.Second

// Direct claims a notification and delivers it at once through its Notifier: the notifier
// function (after the outbox), `lp replay` and tests use it.
type Direct struct {
	Claims   Claims
	Notifier Notifier
	Clock    Clock
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
	attempt, err := d.Claims.Claim(ctx, n, d.Clock.Now(), lease)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", n.Key(), err)
	}
	if attempt == 0 {
		return false, nil
	}
	err = d.Notifier.Notify(ctx, n, run)
	var de *DeliveryError
	errors.As(err, &de)
	if err != nil && !errors.Is(err, ErrUnmarked) {
		// End the attempt: remember what was delivered, and wait NotifyBackoff before the
		// next (or give up). If even that write fails, the lease runs out on its own.
		r := Retry{RetryAt: d.Clock.Now().Add(NotifyBackoff(attempt)), GiveUp: attempt >= MaxNotifyAttempts, Reason: err.Error()}
		if de != nil {
			r.Delivered = de.Delivered
		}
		if rerr := d.Claims.Release(ctx, n, r); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release claim: %w", rerr))
		}
		if r.GiveUp {
			return false, fmt.Errorf("send %s: giving up after %d attempts: %w", n.Key(), attempt, errors.Join(err, ErrGaveUp))
		}
		return false, fmt.Errorf("send %s (attempt %d of %d): %w", n.Key(), attempt, MaxNotifyAttempts, errors.Join(err, ErrAttemptFailed))
	}
	if err := d.Claims.Sent(ctx, n, d.Clock.Now()); err != nil {
		// Every channel delivered: whatever happens, no retry may send it again. Release
		// records the channels (their own marks may have failed too) in another write.
		r := Retry{RetryAt: d.Clock.Now(), Reason: err.Error()}
		if de != nil {
			r.Delivered = de.Delivered
		}
		if rerr := d.Claims.Release(ctx, n, r); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release claim: %w", rerr))
		}
		return true, fmt.Errorf("mark %s sent: %w", n.Key(), err)
	}
	return true, nil
}

// ErrAttemptFailed marks the error of a delivery attempt that failed and was released (or
// given up): the next attempt waits for its backoff, and nothing is gained by retrying at once.
var ErrAttemptFailed = errors.New("delivery attempt failed")

// ErrUnmarked is a notifier's report that every channel delivered but some of their
// per-channel marks were not written; Dispatch then marks the whole claim sent.
var ErrUnmarked = errors.New("delivered, but not every channel's mark was written")

// ErrGaveUp marks the error of a notification whose attempts are spent.
var ErrGaveUp = errors.New("notification given up")
