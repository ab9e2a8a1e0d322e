// Command lp is the lambda-pipeline operator CLI: recent runs, one run's timeline, and the
// replay of recorded EventBridge events through the handlers' own code.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
)

const usage = `lp — lambda-pipeline operator CLI

Usage:
  lp runs   [--pipeline P] [--limit N] [--json]      recent runs, newest first
  lp show   [--json] EXECUTION_ID                    one run: stages, actions, durations, links
  lp replay [--json] [--render] FILE...              feed recorded EventBridge events through the handlers
  lp notifications [--json]                         notifications given up after every attempt failed
  lp sim    [--seeds N] [--from S] [--all-features]  the deterministic simulation (docs/simulation.md)
  lp sim    --replay FILE                            replay a failing seed's reproduction

runs and show read the runs table: --table (or LP_TABLE / RUNS_TABLE), --endpoint (or
AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL) and --region (or AWS_REGION). replay uses an
in-memory store unless --endpoint is given.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes one lp command and returns the process exit status: 0 success, 1 failure,
// 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "replay":
		err = replayCmd(ctx, args[1:], stdout, stderr, getenv)
	case "notifications":
		err = notificationsCmd(ctx, args[1:], stdout, getenv)
	case "sim":
		err = simCmd(ctx, args[1:], stdout, stderr)
	case "runs":
		err = runsCmd(ctx, args[1:], stdout, getenv)
	case "show":
		err = showCmd(ctx, args[1:], stdout, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lp: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "lp %s: %v\n", args[0], err)
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
