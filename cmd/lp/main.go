// Command lp is the lambda-pipeline operator CLI: recent runs, one run's timeline, the delivery
// metrics, and the replay of recorded EventBridge events through the handlers' own code.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
)

const usage = `lp — lambda-pipeline operator CLI

Usage:
  lp runs    [--pipeline P] [--limit N] [--wide] [--json]  recent runs, newest first
  lp show    [--pipeline P] [--json] EXECUTION_ID           one run: stages, actions, durations, links
  lp metrics [--project P] [--since 30d] [--json]           the four DORA keys per pipeline, with trends
  lp replay  [--json] [--render[=json]] [--strict] FILE...  feed recorded EventBridge events through the handlers
  lp policy check [--json] TEMPLATE...                      the deployer's policy gate on CloudFormation templates
  lp approve [--deploy-stack S] EXECUTION_ID                let a deploy that widens IAM go on
  lp reject  [--reason TEXT] EXECUTION_ID                   fail a deploy that widens IAM
  lp project add NAME [--branch B] | remove NAME            declare a project (the control plane converges to it)
  lp projects [--json]                                      projects: repository, state, last run
  lp notifications [--json]                                notifications given up after every attempt failed
  lp init-local --endpoint URL [--table T]                  create the runs table in a local DynamoDB (dynalite)
  lp --version                                              the version and commit of this lp

Where the runs are (runs, show, metrics, approve, reject; replay with --endpoint):
  --stack NAME      the control-plane stack: its RunsTableName output names the table
                    (LP_STACK; else samconfig.toml's stack_name when run in the project folder)
  --table NAME      the table itself (LP_TABLE, RUNS_TABLE; default lambda-pipeline-runs)
  --endpoint URL    a local DynamoDB such as dynalite (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL)
  --region R        AWS region (AWS_REGION, AWS_DEFAULT_REGION, the profile's region)
  --profile P       a named profile from ~/.aws/config, as awscli uses it (AWS_PROFILE)
  --timeout D       each AWS request's time limit, e.g. 10s (LP_TIMEOUT; default 10s)

Run 'lp COMMAND --help' for a command's flags and an example.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes one lp command and returns the process exit status: 0 success (and --help),
// 1 failure, 2 usage error. Every error is printed once, on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "notifications":
		err = notificationsCmd(ctx, args[1:], stdout, getenv)
	case "runs":
		err = runsCmd(ctx, args[1:], stdout, getenv)
	case "show":
		err = showCmd(ctx, args[1:], stdout, getenv)
	case "metrics":
		err = metricsCmd(ctx, args[1:], stdout, getenv)
	case "policy":
		err = policyCmd(args[1:], stdout)
	case "project", "projects": // cmd/lp/projects.go
		err = projectsDispatch(ctx, args, stdout, getenv)
	case "approve", "reject":
		err = approveCmd(ctx, args[0] == "approve", args[1:], stdout, getenv)
	case "replay":
		err = replayCmd(ctx, args[1:], stdout, stderr, getenv)
	case "init-local":
		err = initLocalCmd(ctx, args[1:], stdout, getenv)
	case "version", "--version", "-version", "-v":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lp: unknown command %q\nRun 'lp --help' for the commands.\n", args[0])
		return 2
	}
	return exitStatus(args[0], err, stderr)
}

// exitStatus prints err once and maps it to the exit status.
func exitStatus(name string, err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "lp %s: %s\nRun 'lp %s --help' for usage.\n", name, ue.msg, name)
		return 2
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "lp %s: interrupted\n", name) // Ctrl-C: the signal context ended
		return 130
	default:
		fmt.Fprintf(stderr, "lp %s: %v\n", name, err)
		return 1
	}
}

// usageError is a mistake on the command line: exit status 2 and a pointer to --help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
