// Command sim runs the deterministic simulation of the control plane over many seeds and
// reports seeds/s, simulated runs and the fault mix (docs/simulation.md; `make sim`). It lives
// in the test-support tree: nothing deployed links it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/testing/simulation"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := simCmd(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// simCmd runs the deterministic simulation over many seeds, in parallel, and reports seeds/s,
// simulated runs and the fault mix; a failing seed is shrunk and its reproduction printed.
func simCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.Uint64("seeds", 1000, "how many seeds to run")
	from := fs.Uint64("from", 1, "the first seed")
	all := fs.Bool("all-features", false, "also generate the worlds of the open defects (name collisions, hidden triggers, same-second ends)")
	only := fs.String("features", "", "comma-separated features to generate: name-collisions, hidden-triggers, same-second-ends, idle-gaps")
	replay := fs.String("replay", "", "replay a reproduction (NDJSON) that a failing seed printed")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	features := simulation.SuiteFeatures
	if *all {
		features = simulation.AllFeatures
	}
	if *only != "" {
		features = simulation.Features{}
	}
	for _, f := range strings.FieldsFunc(*only, func(r rune) bool { return r == ',' }) {
		switch strings.TrimSpace(f) {
		case "name-collisions":
			features.NameCollisions = true
		case "hidden-triggers":
			features.HiddenTriggers = true
		case "same-second-ends":
			features.SameSecondEnds = true
		case "idle-gaps":
			features.IdleGaps = true
		default:
			return usageError{fmt.Sprintf("unknown feature %q (name-collisions, hidden-triggers, same-second-ends, idle-gaps)", f)}
		}
	}
	if *replay != "" {
		f, err := os.Open(*replay)
		if err != nil {
			return err
		}
		defer f.Close()
		rp, err := simulation.ReadRepro(f)
		if err != nil {
			return err
		}
		r := simulation.Run(rp.Seed, rp.Options())
		fmt.Fprintf(stdout, "seed %d: %d deliveries, %d faults\n", rp.Seed, len(rp.Deliveries), len(rp.Faults))
		for _, v := range r.Violations {
			fmt.Fprintln(stdout, "  broken:", v)
		}
		if r.Failed() {
			return errors.New("invariants broken")
		}
		fmt.Fprintln(stdout, "  every invariant holds")
		return nil
	}

	start := time.Now()
	var (
		mu       sync.Mutex
		runs     int
		events   int
		faults   = map[simulation.FaultKind]int{}
		once     int
		lost     int
		unknown  int
		redriven int
		passed   int
		failures []simulation.Report
	)
	next := make(chan uint64)
	var wg sync.WaitGroup
	for range max(*workers, 1) {
		wg.Go(func() {
			for seed := range next {
				r := simulation.Run(seed, simulation.Options{Features: features})
				mu.Lock()
				runs += r.Runs
				events += r.Events
				once += r.AtLeastOnce
				lost += r.LostToDLQ
				unknown += r.Unknowable
				redriven += r.PushesRedriven
				passed += r.PushesSuperseded
				for k, n := range r.Faults {
					faults[k] += n
				}
				if r.Failed() {
					failures = append(failures, r)
				}
				mu.Unlock()
			}
		})
	}
	for s := *from; s < *from+*seeds && ctx.Err() == nil; s++ {
		next <- s
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	total := 0
	kinds := make([]string, 0, len(faults))
	for k, n := range faults {
		total += n
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	fmt.Fprintf(stdout, "%d seeds in %s (%.0f seeds/s, %d workers): %d simulated runs, %d deliveries, %d passed, %d failed\n",
		*seeds, took.Round(time.Millisecond), float64(*seeds)/took.Seconds(), *workers, runs, events, int(*seeds)-len(failures), len(failures))
	fmt.Fprintf(stdout, "faults injected: %d", total)
	for _, k := range kinds {
		fmt.Fprintf(stdout, ", %s %d", k, faults[simulation.FaultKind(k)])
	}
	fmt.Fprintf(stdout, "\ndocumented at-least-once duplicates: %d; deliveries lost to a dead-letter queue: %d\n", once, lost)
	fmt.Fprintf(stdout, "attempts of other accounts' and regions' pipelines whose end never reached the store (unknowable): %d\n", unknown)
	fmt.Fprintf(stdout, "pushes started by the re-drive: %d; pushed commits superseded before anything started them: %d\n", redriven, passed)
	if len(failures) == 0 {
		return nil
	}
	sort.Slice(failures, func(i, j int) bool { return failures[i].Seed < failures[j].Seed })
	for i, r := range failures {
		fmt.Fprintf(stdout, "seed %d: %v\n", r.Seed, r.Violations)
		if i < 3 {
			rp := simulation.Shrink(r, features)
			fmt.Fprintf(stdout, "reproduction of seed %d (save it and run: go run ./shared/testing/simulation/cmd/sim --replay FILE):\n", r.Seed)
			if err := rp.WriteNDJSON(stdout); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("%d of %d seeds broke an invariant", len(failures), *seeds)
}
