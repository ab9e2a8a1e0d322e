//go:build unix

// Command invoke runs one function of this repository on one event under the AWS Lambda Runtime
// Interface Emulator, with no Docker: scripts/invoke FUNCTION EVENT_FILE. See usage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdarie"
)

// Exit codes.
const (
	exitOK       = 0 // a response (outcome recorded, ignored, skipped, done, ...)
	exitError    = 1 // the function returned an error (errorType in the body), crashed or timed out
	exitUsage    = 2 // bad arguments: unknown function, missing event file, bad flag
	exitRejected = 3 // a response whose outcome is "rejected": the handler refused the event
	exitInfra    = 4 // the function did not build, or the emulator could not run
	exitSignal   = 130
)

const usage = `usage: scripts/invoke [flags] FUNCTION EVENT_FILE

Builds functions/FUNCTION for this machine, runs it under the AWS Lambda Runtime Interface
Emulator bound to 127.0.0.1 (no Docker), invokes it once with EVENT_FILE ("-" for standard
input), prints the function's log lines on stderr and the response, as indented JSON, on stdout.

FUNCTION is a directory under functions/ (on-pipeline-event) or its SAM logical id
(OnPipelineEventFunction).

The function gets LP_STORE=memory unless LP_STORE is set, the caller's LP_*, RUNS_TABLE and
AWS_ENDPOINT_URL* variables, dummy credentials and region us-east-1 — never the caller's AWS
identity. Without AWS_ENDPOINT_URL, AWS clients point at a closed local port and fail fast.

The notifier reads its claim and run from a table: without RUNS_TABLE, invoke starts dynalite
(node_modules, npm ci), fills table lambda-pipeline-runs by replaying
events/replay/one-week.ndjson, and gives the notifier a Slack receiver on 127.0.0.1; it prints
what the receiver got. events/notifier-stream-insert.json names one of those notifications;
events/notifier-approval-insert.json is an approval request of one of those runs.

Exit status:
  0  the function responded
  1  the function failed: the response carries errorType (a handler error, a crash, a timeout)
  2  usage error: unknown function, missing event file, bad flag
  3  the function responded with outcome "rejected" (a malformed or unsupported event)
  4  the function did not build, or the emulator could not be built or started

Flags:
`

// passThrough reports whether a caller's variable goes to the function.
func passThrough(name string) bool {
	return strings.HasPrefix(name, "LP_") || name == "RUNS_TABLE" || strings.HasPrefix(name, "AWS_ENDPOINT_URL")
}

type envFlags map[string]string

func (e envFlags) String() string { return "" }
func (e envFlags) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", kv)
	}
	e[k] = v
	return nil
}

type config struct {
	repo, function, event string
	env                   map[string]string
	timeout               int
	verbose, quiet        bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if code != exitOK && ctx.Err() != nil {
		code = exitSignal
	}
	stop()
	os.Exit(code)
}

// parse reads flags wherever they are among the arguments.
func parse(args []string, stderr io.Writer) (config, int, bool) {
	c := config{env: envFlags{}}
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&c.repo, "repo", "", "repository root (default: found from the working directory)")
	fs.Var(envFlags(c.env), "env", "`KEY=VALUE` for the function's environment (repeatable)")
	fs.IntVar(&c.timeout, "timeout", 30, "the function's timeout in `seconds` (AWS_LAMBDA_FUNCTION_TIMEOUT)")
	fs.BoolVar(&c.verbose, "v", false, "also print the emulator's own log lines")
	fs.BoolVar(&c.quiet, "q", false, "print no log lines, only the response")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return c, exitOK, false
			}
			return c, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "invoke: want FUNCTION and EVENT_FILE, got %d argument(s)\n\n", len(pos))
		fs.Usage()
		return c, exitUsage, false
	}
	c.function, c.event = pos[0], pos[1]
	return c, 0, true
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, code, ok := parse(args, stderr)
	if !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "invoke: "+format+"\n", a...)
		return code
	}

	root, err := lambdarie.RepoRoot(c.repo)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	fn, err := lambdarie.ResolveFunction(root, c.function)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	var payload []byte
	if c.event == "-" {
		payload, err = io.ReadAll(stdin)
	} else {
		payload, err = os.ReadFile(c.event)
	}
	if err != nil {
		return fail(exitUsage, "event: %v", err)
	}
	if !json.Valid(payload) {
		return fail(exitUsage, "event %s is not JSON", c.event)
	}

	env := map[string]string{"LP_STORE": "memory"}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); passThrough(k) {
			env[k] = v
		}
	}
	for k, v := range c.env {
		env[k] = v
	}
	var local *localNotifier
	if fn == "notifier" && env["RUNS_TABLE"] == "" {
		if local, err = startLocalNotifier(ctx, root); err != nil {
			return fail(exitInfra, "local table and Slack receiver for the notifier: %v", err)
		}
		defer local.stop()
		for k, v := range local.env {
			env[k] = v
		}
		if !c.quiet {
			io.WriteString(stderr, local.describe())
		}
	}
	env["AWS_LAMBDA_FUNCTION_NAME"] = fn
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = fmt.Sprint(c.timeout)
	if c.verbose {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stderr, "invoke: env %s=%s\n", k, env[k])
		}
	}

	dir, err := os.MkdirTemp("", "lp-invoke-")
	if err != nil {
		return fail(exitInfra, "%v", err)
	}
	defer os.RemoveAll(dir)
	bin, err := lambdarie.Build(ctx, root, fn, dir)
	if err != nil {
		return fail(exitInfra, "%v", err)
	}
	em, err := lambdarie.Options{RepoRoot: root}.Start(ctx, bin, env)
	if err != nil {
		return fail(exitInfra, "%v", err)
	}
	defer em.Close()

	ictx, cancel := context.WithTimeout(ctx, time.Duration(c.timeout)*time.Second+10*time.Second)
	defer cancel()
	res, err := em.Invoke(ictx, payload)
	logs := em.Logs()
	if err != nil {
		if !c.quiet {
			io.WriteString(stderr, logs)
		}
		return fail(exitInfra, "%v", err)
	}
	if !c.quiet {
		if !c.verbose {
			logs = lambdarie.FilterEmulatorLines(logs)
		}
		io.WriteString(stderr, logs)
	}

	var out bytes.Buffer
	if json.Indent(&out, res.Body, "", "  ") != nil {
		out.Reset()
		out.Write(res.Body)
	}
	if out.Len() > 0 {
		out.WriteByte('\n')
	}
	stdout.Write(out.Bytes())
	if local != nil && !c.quiet {
		local.report(stderr)
	}

	switch outcome, reason := res.Outcome(); {
	case res.Failed():
		fmt.Fprintf(stderr, "invoke: failed: %s: %s\n", res.ErrorType, res.ErrorMessage)
		return exitError
	case outcome == "rejected":
		fmt.Fprintf(stderr, "invoke: rejected: %s\n", reason)
		return exitRejected
	default:
		if !c.quiet {
			fmt.Fprintf(stderr, "invoke: %s in %s (cold start %s: emulator process start to response)\n", fn,
				res.Duration.Round(10*time.Microsecond), em.ColdStart().Round(10*time.Microsecond))
		}
		return exitOK
	}
}
