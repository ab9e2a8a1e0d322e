//go:build unix

package lambdarie

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ColdStartStats are cold starts — emulator process start to first response — over Runs.
// EmulatorUp is the median time from process start to the emulator's port accepting
// connections: the part of a cold start that is the emulator's own, not the function's.
type ColdStartStats struct {
	Runs             []time.Duration
	Min, Median, Max time.Duration
	EmulatorUp       time.Duration
}

func (s ColdStartStats) String() string {
	return fmt.Sprintf("runs=%d min=%s median=%s max=%s (emulator up: median %s)",
		len(s.Runs), ms(s.Min), ms(s.Median), ms(s.Max), ms(s.EmulatorUp))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func summarize(runs []time.Duration) ColdStartStats {
	s := ColdStartStats{Runs: runs}
	if len(runs) == 0 {
		return s
	}
	sorted := slices.Clone(runs)
	slices.Sort(sorted)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// MeasureColdStart starts a fresh emulator with bootstrap n times, invokes it once with payload
// and closes it, and returns the cold starts: the time from the emulator's process start to its
// first response (emulator start-up, runtime start and init, and the first invocation).
// A failed invocation still counts (it is a response); a failure to get one is an error.
func MeasureColdStart(ctx context.Context, o Options, bootstrap string, env map[string]string, payload []byte, n int) (ColdStartStats, error) {
	runs := make([]time.Duration, 0, n)
	var ups []time.Duration
	for i := 0; i < n; i++ {
		e, err := o.Start(ctx, bootstrap, env)
		if err != nil {
			return summarize(runs), err
		}
		ups = append(ups, e.ReadyAt.Sub(e.StartedAt))
		_, err = e.Invoke(ctx, payload)
		cold := e.ColdStart()
		if cerr := e.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return summarize(runs), err
		}
		runs = append(runs, cold)
	}
	s := summarize(runs)
	s.EmulatorUp = summarize(ups).Median
	return s, nil
}

// DefaultPayloads are the sample events (under events/) that cold-start measurements send to
// each function; a function without one gets "{}".
var DefaultPayloads = map[string]string{
	"on-pipeline-event": "action-failed-build.json",
	"on-push":           "push-main.json",
	"deployer":          "job-create-update-lambda.json",
	"reconciler":        "reconciler-schedule.json",
	"app":               "app-greet.json",
}

// DefaultPayload returns the sample event DefaultPayloads names for function, or "{}".
func DefaultPayload(repoRoot, function string) []byte {
	if name := DefaultPayloads[function]; name != "" {
		if b, err := os.ReadFile(filepath.Join(repoRoot, "events", name)); err == nil {
			return b
		}
	}
	return []byte("{}")
}
