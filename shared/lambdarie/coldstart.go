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

// ColdStartStats are cold starts — emulator process start to first response — over Runs:
// their minimum, 10th percentile, median, 90th percentile and maximum (percentiles by nearest
// rank). EmulatorUp is the median time from process start to the emulator's port accepting
// connections: a part of every cold start that is the emulator's own, not the function's.
type ColdStartStats struct {
	Runs                       []time.Duration
	Min, P10, Median, P90, Max time.Duration
	EmulatorUp                 time.Duration
}

func (s ColdStartStats) String() string {
	return fmt.Sprintf("runs=%d min=%s p10=%s median=%s p90=%s max=%s (emulator up: median %s)",
		len(s.Runs), ms(s.Min), ms(s.P10), ms(s.Median), ms(s.P90), ms(s.Max), ms(s.EmulatorUp))
}

// OwnInit is the median cold start less baseline's: with baseline a Go hello-world measured
// under the same emulator in the same run (BuildHello), what the function's own code adds to
// a cold start. Noise can make it negative when the two are close.
func (s ColdStartStats) OwnInit(baseline ColdStartStats) time.Duration {
	return s.Median - baseline.Median
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func summarize(runs []time.Duration) ColdStartStats {
	s := ColdStartStats{Runs: runs}
	if len(runs) == 0 {
		return s
	}
	sorted := slices.Clone(runs)
	slices.Sort(sorted)
	n := len(sorted)
	s.Min, s.Max = sorted[0], sorted[n-1]
	if n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	s.P10, s.P90 = sorted[nearestRank(n, 10)], sorted[nearestRank(n, 90)]
	return s
}

// nearestRank is the index in n sorted values of the p-th percentile, by nearest rank:
// the smallest value with at least p % of the values at or below it.
func nearestRank(n, p int) int {
	r := (p*n + 99) / 100 // ⌈p·n/100⌉
	return min(max(r, 1), n) - 1
}

// MeasureColdStart starts a fresh emulator with bootstrap n times, invokes it once with payload
// and closes it, and returns the cold starts: the time from the emulator's process start to its
// first response (emulator start-up, runtime start and init, and the first invocation).
// A failed invocation still counts (it is a response); a failure to get one is an error.
func MeasureColdStart(ctx context.Context, o Options, bootstrap string, env map[string]string, payload []byte, n int) (ColdStartStats, error) {
	all, err := MeasureColdStarts(ctx, o, []ColdStartTarget{{Bootstrap: bootstrap, Env: env, Payload: payload}}, n)
	return all[0], err
}

// ColdStartTarget is a bootstrap for MeasureColdStarts, with its environment and the event
// its first invocation sends.
type ColdStartTarget struct {
	Name      string
	Bootstrap string
	Env       map[string]string
	Payload   []byte
}

// MeasureColdStarts measures the cold start of every target n times as MeasureColdStart does,
// in n rounds of one cold start per target, so that a change of the machine's load during the
// run falls on every target alike (a baseline among them stays comparable). The result has one
// ColdStartStats per target, in order; on error, the runs so far.
func MeasureColdStarts(ctx context.Context, o Options, targets []ColdStartTarget, n int) ([]ColdStartStats, error) {
	runs := make([][]time.Duration, len(targets))
	ups := make([][]time.Duration, len(targets))
	result := func() []ColdStartStats {
		out := make([]ColdStartStats, len(targets))
		for i := range targets {
			out[i] = summarize(runs[i])
			out[i].EmulatorUp = summarize(ups[i]).Median
		}
		return out
	}
	for round := 0; round < n; round++ {
		for i, t := range targets {
			cold, up, err := coldStart(ctx, o, t)
			if err != nil {
				if t.Name != "" {
					err = fmt.Errorf("%s: %w", t.Name, err)
				}
				return result(), err
			}
			runs[i] = append(runs[i], cold)
			ups[i] = append(ups[i], up)
		}
	}
	return result(), nil
}

func coldStart(ctx context.Context, o Options, t ColdStartTarget) (cold, up time.Duration, err error) {
	e, err := o.Start(ctx, t.Bootstrap, t.Env)
	if err != nil {
		return 0, 0, err
	}
	up = e.ReadyAt.Sub(e.StartedAt)
	_, err = e.Invoke(ctx, t.Payload)
	cold = e.ColdStart()
	if cerr := e.Close(); err == nil {
		err = cerr
	}
	return cold, up, err
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
