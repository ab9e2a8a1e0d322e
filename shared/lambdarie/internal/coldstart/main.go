//go:build unix

// Command coldstart measures cold starts under the AWS Lambda Runtime Interface Emulator: for
// each function, N times, it starts a fresh emulator with the function's bootstrap, invokes it
// once with a sample event, and closes it; it prints the time from process start to first
// response as min/median/max. The project's target is a median ≤ 20 ms (docs/benchmarks.md).
//
//	go run ./shared/lambdarie/internal/coldstart [-n 20] [-event FILE] [FUNCTION...]
//
// Without FUNCTION it measures every function under functions/. The default event of each is
// lambdarie.DefaultPayloads (or "{}").
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdarie"
)

func main() {
	n := flag.Int("n", 20, "runs per function")
	event := flag.String("event", "", "event `file` to send (default: a sample event per function)")
	target := flag.Duration("target", 20*time.Millisecond, "exit 1 when a median is over this")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *n, *event, *target, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, event string, target time.Duration, fns []string) error {
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
	var over []string
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
		env := map[string]string{"LP_STORE": "memory", "AWS_LAMBDA_FUNCTION_NAME": fn}
		s, err := lambdarie.MeasureColdStart(ctx, lambdarie.Options{RepoRoot: root}, bin, env, payload, n)
		if err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
		fi, _ := os.Stat(bin)
		fmt.Printf("%-20s %s  (bootstrap %.1f MB, host build)\n", fn, s, float64(fi.Size())/(1<<20))
		if s.Median > target {
			over = append(over, fn)
		}
	}
	if len(over) > 0 {
		return fmt.Errorf("median cold start over %v: %v", target, over)
	}
	return nil
}
