package pipeline

import "time"

// Clock tells the time. Every use case and store takes one at construction, so that tests and
// the simulation run on a clock they control; nothing else in the code calls time.Now.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// ClockFunc adapts a function to a Clock.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }
