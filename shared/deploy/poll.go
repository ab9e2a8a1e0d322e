package deploy

import (
	"context"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Poller repeats a step within one Lambda invocation until the deploy ends or the invocation's
// time runs out, so that a deploy costs few invocations and the function never runs past its
// timeout. The zero value polls every 5 s, growing to 20 s, and stops 60 s before the
// context's deadline.
type Poller struct {
	// Clock and Sleep go together; tests make Sleep advance Clock. Defaults (the zero
	// Poller): the wall clock and a timer that ends early when ctx does.
	Clock pipeline.Clock
	Sleep func(ctx context.Context, d time.Duration) error
	// Interval is the first wait between steps, MaxInterval the longest (waits grow by half
	// each time).
	Interval, MaxInterval time.Duration
	// Reserve is the time kept back from the context's deadline: enough to report the result
	// (a PutJob*Result call, the custom resource's reply) after the last step.
	Reserve time.Duration
	// Budget bounds the polling when the context has no deadline (not on Lambda).
	Budget time.Duration
	// MaxErrors is how many steps in a row may fail (a throttle past the SDK's own retries,
	// a network error) before the error is returned.
	MaxErrors int
}

// Defaults of Poller.
const (
	DefaultInterval    = 5 * time.Second
	DefaultMaxInterval = 20 * time.Second
	DefaultReserve     = 60 * time.Second
	DefaultBudget      = 10 * time.Minute
	DefaultMaxErrors   = 3
)

func (p Poller) now() time.Time { return wallClockOr(p.Clock).Now() }

func (p Poller) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Deadline is when polling must stop: the context's deadline less Reserve, or Budget from now.
func (p Poller) Deadline(ctx context.Context) time.Time {
	reserve := p.Reserve
	if reserve == 0 {
		reserve = DefaultReserve
	}
	if d, ok := ctx.Deadline(); ok {
		return d.Add(-reserve)
	}
	budget := p.Budget
	if budget == 0 {
		budget = DefaultBudget
	}
	return p.now().Add(budget)
}

// Run calls step, passing each Outcome's Progress to the next call, until the outcome is done
// or the next step would start after the deadline; then it returns the last outcome (in
// progress, when time ran out). The first step always runs. A transient step error (IsTransient)
// is retried after the usual wait, up to MaxErrors in a row; a permanent one is returned at once. When time runs
// out after an error, the last good outcome is returned (in progress) without the error.
func (p Poller) Run(ctx context.Context, progress Progress, step func(context.Context, Progress) (Outcome, error)) (Outcome, error) {
	interval, maxInterval, maxErrors := p.Interval, p.MaxInterval, p.MaxErrors
	if interval == 0 {
		interval = DefaultInterval
	}
	if maxInterval == 0 {
		maxInterval = DefaultMaxInterval
	}
	if maxErrors == 0 {
		maxErrors = DefaultMaxErrors
	}
	deadline := p.Deadline(ctx)
	last := Outcome{Status: StatusInProgress, Progress: progress}
	errorsInRow := 0
	for {
		out, err := step(ctx, last.Progress)
		switch {
		case err != nil:
			errorsInRow++
			if !IsTransient(err) || errorsInRow >= maxErrors || ctx.Err() != nil {
				return last, err
			}
		case out.Done():
			return out, nil
		default:
			errorsInRow = 0
			last = out
		}
		if p.now().Add(interval).After(deadline) {
			return last, nil
		}
		if err := p.sleep(ctx, interval); err != nil {
			return last, nil
		}
		interval = min(interval+interval/2, maxInterval)
	}
}

// wallClockOr returns c, or the wall clock for a zero Poller or S3Getter.
func wallClockOr(c pipeline.Clock) pipeline.Clock {
	if c == nil {
		return pipeline.SystemClock{}
	}
	return c
}
