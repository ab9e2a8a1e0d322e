//go:build unix

// Command coldstart measures cold starts under the AWS Lambda Runtime Interface Emulator: for
// each function, N times, it starts a fresh emulator with the function's bootstrap, invokes it
// once with a sample event, and closes it, and it does the same for a Go hello-world function
// (shared/lambdarie/internal/hello) built with the same flags. The runs are interleaved — N
// rounds of one cold start per bootstrap — so that the machine's load falls on all alike.
//
// It prints, per bootstrap, the time from process start to first response (min, p10, median,
// p90, max), and per function its own init: its median less the hello-world's, that is, what
// the project's code adds to the emulator's start-up, the Go runtime and aws-lambda-go. It
// prints the machine's CPUs and load average before and after, since the figures depend on them.
//
// The project's target is a median ≤ 20 ms from process start to first response
// (docs/benchmarks.md); the command exits 1 when a function's median is over -target.
// Timings are never asserted by tests; this command is where the target is checked.
//
//	go run ./shared/lambdarie/internal/coldstart [-n 20] [-target 20ms] [-event FILE] [FUNCTION...]
//
// Without FUNCTION it measures every function under functions/. The default event of each is
// lambdarie.DefaultPayloads (or "{}").
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdarie"
)

func main() {
	n := flag.Int("n", 20, "runs per function")
	event := flag.String("event", "", "event `file` to send (default: a sample event per function)")
	target := flag.Duration("target", 20*time.Millisecond, "exit 1 when a function's median cold start is over this")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *n, *event, *target, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, n int, event string, target time.Duration, fns []string) error {
	if n < 1 {
		return fmt.Errorf("-n %d: need at least one run", n)
	}
	root, err := lambdarie.RepoRoot("")
	if err != nil {
		return err
	}
	if len(fns) == 0 {
		if fns, err = lambdarie.Functions(root); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "lp-coldstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	hello, err := lambdarie.BuildHello(ctx, root, filepath.Join(dir, lambdarie.HelloFunction))
	if err != nil {
		return err
	}
	targets := []lambdarie.ColdStartTarget{{
		Name: lambdarie.HelloFunction, Bootstrap: hello, Payload: []byte("{}"),
		Env: map[string]string{"AWS_LAMBDA_FUNCTION_NAME": lambdarie.HelloFunction},
	}}
	for _, f := range fns {
		fn, err := lambdarie.ResolveFunction(root, f)
		if err != nil {
			return err
		}
		bin, err := lambdarie.Build(ctx, root, fn, filepath.Join(dir, fn))
		if err != nil {
			return err
		}
		payload := lambdarie.DefaultPayload(root, fn)
		if event != "" {
			if payload, err = os.ReadFile(event); err != nil {
				return err
			}
		}
		targets = append(targets, lambdarie.ColdStartTarget{
			Name: fn, Bootstrap: bin, Payload: payload,
			Env: map[string]string{"LP_STORE": "memory", "AWS_LAMBDA_FUNCTION_NAME": fn},
		})
	}

	fmt.Fprintf(w, "%d runs per bootstrap, interleaved; host builds (%s/%s, %s, %d CPUs), flags %s\n",
		n, runtime.GOOS, runtime.GOARCH, runtime.Version(), runtime.NumCPU(), flags())
	fmt.Fprintf(w, "load average before: %s\n", loadavg())
	stats, err := lambdarie.MeasureColdStarts(ctx, lambdarie.Options{RepoRoot: root}, targets, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "load average after:  %s\n\n", loadavg())

	base := stats[0]
	fmt.Fprintf(w, "%-20s %8s %8s %8s %8s %8s %9s %10s %9s\n",
		"bootstrap", "min", "p10", "median", "p90", "max", "emu up", "own init", "size")
	var over []string
	for i, t := range targets {
		s := stats[i]
		own := "(baseline)"
		if i > 0 {
			own = fmt.Sprintf("%+.2fms", msf(s.OwnInit(base)))
			if s.Median > target {
				over = append(over, t.Name)
			}
		}
		size := ""
		if fi, err := os.Stat(t.Bootstrap); err == nil {
			size = fmt.Sprintf("%.1f MB", float64(fi.Size())/(1<<20))
		}
		fmt.Fprintf(w, "%-20s %8s %8s %8s %8s %8s %9s %10s %9s\n", t.Name,
			ms(s.Min), ms(s.P10), ms(s.Median), ms(s.P90), ms(s.Max), ms(s.EmulatorUp), own, size)
	}
	fmt.Fprintf(w, "\nown init = the function's median less %s's median (the emulator, the Go runtime and\n"+
		"aws-lambda-go starting); emu up = median time until the emulator's port accepts connections.\n"+
		"Target: median process start to first response ≤ %v.\n", lambdarie.HelloFunction, target)
	if len(over) > 0 {
		return fmt.Errorf("median cold start over %v: %v", target, over)
	}
	return nil
}

// flags is lambdarie.BuildFlags as a shell would take them.
func flags() string {
	var q []string
	for _, f := range lambdarie.BuildFlags {
		if strings.ContainsAny(f, " \t") {
			f = `"` + f + `"`
		}
		q = append(q, f)
	}
	return strings.Join(q, " ")
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", msf(d)) }

// loadavg is the 1-, 5- and 15-minute load averages from /proc/loadavg, or "unknown".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
