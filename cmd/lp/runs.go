package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// dbOptions locate the runs table.
type dbOptions struct {
	table, endpoint, region string
}

func dbFlags(fs *flag.FlagSet, getenv func(string) string) *dbOptions {
	o := &dbOptions{}
	fs.StringVar(&o.table, "table", firstSet(getenv("LP_TABLE"), getenv("RUNS_TABLE"), "lambda-pipeline-runs"), "runs table name (LP_TABLE, RUNS_TABLE)")
	fs.StringVar(&o.endpoint, "endpoint", firstSet(getenv("AWS_ENDPOINT_URL_DYNAMODB"), getenv("AWS_ENDPOINT_URL")), "DynamoDB endpoint, e.g. http://127.0.0.1:8000 for dynalite")
	fs.StringVar(&o.region, "region", firstSet(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), "us-east-1"), "AWS region")
	return o
}

// open returns the DynamoDB store. With an endpoint (a local stand-in) and no credentials in
// the environment, dummy credentials are used so nothing is read from ~/.aws.
func (o *dbOptions) open(ctx context.Context) (*runstore.Dynamo, error) {
	opts := []func(*config.LoadOptions) error{config.WithRegion(o.region)}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	var clientOpts []func(*dynamodb.Options)
	if o.endpoint != "" {
		clientOpts = append(clientOpts, func(do *dynamodb.Options) {
			do.BaseEndpoint = aws.String(o.endpoint)
			// dynalite's x-amz-crc32 does not match what it sends when the SDK asks for
			// gzip; the SDK only warns, on stderr, but the warning reads like a failure.
			do.DisableValidateResponseChecksum = true
		})
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			cfg.Credentials = staticLocal{}
		}
	}
	store := runstore.NewDynamo(dynamodb.NewFromConfig(cfg, clientOpts...), o.table, pipeline.SystemClock{})
	if o.endpoint != "" {
		if err := store.EnsureTable(ctx); err != nil {
			return nil, err
		}
	}
	return store, nil
}

// staticLocal signs requests to a local stand-in, which checks no signature.
type staticLocal struct{}

func (staticLocal) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "lp-local"}, nil
}

func runsCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("runs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	pipelineName := fs.String("pipeline", getenv("PIPELINE_NAME"), "only this pipeline's runs")
	limit := fs.Int("limit", 20, "at most this many runs")
	asJSON := fs.Bool("json", false, "print JSON")
	db := dbFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *limit < 1 || *limit > 1000 {
		return usageError{"--limit must be from 1 to 1000"}
	}
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	runs, err := store.List(ctx, *pipelineName, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, runs)
	}
	now := time.Now()
	tw := newTable(stdout)
	tw.row("STARTED", "PIPELINE", "EXECUTION", "COMMIT", "AUTHOR", "STATUS", "DURATION", "FAILING STAGE")
	for _, r := range runs {
		f := r.Failure()
		where := f.Stage
		if f.Action != "" {
			where += "/" + f.Action
		}
		tw.row(r.StartedAt.Local().Format("2006-01-02 15:04:05"), r.Pipeline, r.ExecutionID, short(r.Commit.ID, 8),
			r.Commit.Author, string(r.Status), duration(r.Duration(now)), where)
	}
	tw.flush()
	if len(runs) == 0 {
		fmt.Fprintln(stdout, "no runs recorded")
	}
	return nil
}

func showCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	pipelineName := fs.String("pipeline", "", "the execution's pipeline (found through the index when omitted)")
	db := dbFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() != 1 {
		return usageError{"want one EXECUTION_ID: lp show [--json] EXECUTION_ID"}
	}
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	var run pipeline.Run
	if *pipelineName != "" {
		run, err = pipeline.LoadRun(ctx, store, pipeline.Key{Pipeline: *pipelineName, ExecutionID: fs.Arg(0)})
	} else {
		run, err = store.FindExecution(ctx, fs.Arg(0))
	}
	if err != nil {
		return fmt.Errorf("execution %s: %w", fs.Arg(0), err)
	}
	if *asJSON {
		return writeJSON(stdout, run)
	}
	printRun(stdout, run, time.Now())
	return nil
}

// printRun prints one run's timeline.
func printRun(w io.Writer, r pipeline.Run, now time.Time) {
	fmt.Fprintf(w, "%s  %s  %s (attempt %d)\n", r.Pipeline, r.ExecutionID, r.Status, max(r.Attempt, 1))
	fmt.Fprintf(w, "started   %s   duration %s\n", r.StartedAt.Local().Format(time.RFC3339), duration(r.Duration(now)))
	if r.Trigger.Type != "" {
		fmt.Fprintf(w, "trigger   %s %s\n", r.Trigger.Type, r.Trigger.Detail)
	}
	if c := r.Commit; c.ID != "" {
		fmt.Fprintf(w, "commit    %s %s", short(c.ID, 12), firstLine(c.Message))
		if c.Author != "" {
			fmt.Fprintf(w, " (%s)", c.Author)
		}
		fmt.Fprintln(w)
	}
	if r.Status == pipeline.StatusFailed {
		f := r.Failure()
		fmt.Fprintf(w, "failed in %s/%s: %s %s\n", f.Stage, f.Action, f.Result.ErrorCode, f.Result.Summary)
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	tw.row("STAGE / ACTION", "STATUS", "ATTEMPT", "STARTED", "DURATION", "DETAIL")
	for _, name := range r.StageNames() {
		st := r.Stages[name]
		tw.row(name, string(r.StageStatus(name)), fmt.Sprint(st.Attempt), clock(st.StartedAt), span(st.StartedAt, st.Progress, now), "")
		for _, an := range st.ActionNames() {
			a := st.Actions[an]
			detail := a.Result.Summary
			if a.Result.URL != "" {
				detail = strings.TrimSpace(detail + " " + a.Result.URL)
			}
			tw.row("  "+an, string(a.Status), fmt.Sprint(a.Attempt), clock(a.StartedAt), span(a.StartedAt, a.Progress, now), detail)
		}
	}
	tw.flush()
}

func span(start time.Time, p pipeline.Progress, now time.Time) string {
	if start.IsZero() {
		return "-"
	}
	if p.Status.Terminal() {
		return duration(p.At.Sub(start))
	}
	return duration(now.Sub(start)) + "…"
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05")
}

func duration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table    { return &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }
func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }
func (t *table) flush()              { t.tw.Flush() }
