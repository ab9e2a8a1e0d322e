package pipeline

import "time"

// Change names a run whose record changed: At is when its latest indexed fact (a
// pipeline-level observation, or the push that started it) was placed, that is the later of
// when it happened and when the store recorded it. Placing by the later of the two is what
// lets a reader ask "what changed since T?" without missing an event that arrived late with
// an old time (by default EventBridge retries a delivery for 24 hours: "How EventBridge
// retries delivering events",
// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html), and
// still find by its time every run that started after T.
type Change struct {
	Key Key
	At  time.Time
}

// Checkpoint is what one reconciler pass leaves for the next pass over the same pipeline, so
// that a pass reads what may need work rather than the pipeline's whole recent history: when
// it began (the next pass reads the changes placed since then, less an overlap), and the runs
// that no change would bring back but that must be looked at again.
type Checkpoint struct {
	At time.Time
	// Open: the runs not terminal after the pass. A run becomes terminal only through a
	// pipeline-level observation, which is a change, so a run not named by the next pass's
	// changes is still open.
	Open []Watch
	// Failed: runs that ended FAILED and that CodePipeline may still retry (a stage retry
	// can turn them green while their events are lost).
	Failed []Watch
}

// Watch is a run a Checkpoint keeps: what the next pass needs to know of it without reading
// it.
type Watch struct {
	ExecutionID string
	Began       time.Time
	Ended       time.Time // Failed: when the failed attempt ended
	Attempt     int       // Failed: the attempt that failed
	Stage       string    // Failed: the stage it failed in, "" when unknown
}
