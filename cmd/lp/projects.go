package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// lp project add NAME [--branch B] [--slack-webhook-parameter P], lp project remove NAME, and
// lp projects: the declarations in the runs table (PROJECT items, written with the caller's
// credentials) and what the control plane's converger wrote back about each. Neither command
// invokes anything: the deployer's schedule (every 5 minutes) picks a declaration up
// (docs/projects.md).

const projectUsage = "lp project add NAME [--branch main] [--slack-webhook-parameter NAME] | lp project remove NAME"

// projectsDispatch runs "lp projects" or "lp project …" (args[0] is the command).
func projectsDispatch(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if args[0] == "projects" {
		return projectsCmd(ctx, args[1:], stdout, getenv)
	}
	return projectCmd(ctx, args[1:], stdout, getenv)
}

// projectCmd is "lp project add|remove".
func projectCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{projectUsage}
	}
	fs := flag.NewFlagSet("project "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	branch := fs.String("branch", "", "the branch whose pushes run the pipeline (default main)")
	slack := fs.String("slack-webhook-parameter", "", "the SSM parameter or secret NAME of this project's own Slack webhook")
	db := dbFlags(fs, getenv)
	// The name comes first (lp project add NAME --branch …); flags may follow it.
	rest := args[1:]
	name := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{err.Error()}
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 || name == "" {
		return usageError{projectUsage}
	}
	if err := pipeline.ValidateProjectName(name); err != nil {
		return usageError{err.Error()}
	}
	store, err := db.openProjects(ctx)
	if err != nil {
		return err
	}
	switch args[0] {
	case "add":
		p := pipeline.Project{Name: name, Branch: *branch, SlackWebhookParameter: *slack}
		if p.Branch == "" {
			p.Branch = pipeline.DefaultBranch
		}
		if err := p.Validate(); err != nil {
			return usageError{err.Error()}
		}
		if err := store.Declare(ctx, p, *branch != "", time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "project %s declared (branch %s). The control plane creates repository %s and pipeline %s within minutes: watch lp projects.\n",
			name, p.Branch, name, pipeline.PipelineOf(name))
		return nil
	case "remove":
		if *branch != "" || *slack != "" {
			return usageError{"lp project remove NAME takes no other option"}
		}
		d, ok, err := store.GetProject(ctx, name)
		if err != nil {
			return err
		}
		if ok && !d.Declared {
			return fmt.Errorf("project %s is declared by the control plane's Projects parameter, not by lp project add: remove it there (sam deploy)", name)
		}
		if err := store.Remove(ctx, name); errors.Is(err, pipeline.ErrNotFound) {
			return fmt.Errorf("project %s is not declared", name)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "project %s removed: the control plane deletes stack %s within minutes; repository %s and the runs are kept.\n",
			name, pipeline.PipelineStackOf(name), name)
		return nil
	}
	return usageError{projectUsage}
}

// projectsCmd is "lp projects": every project with its repository, state and last run.
func projectsCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("projects", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	db := dbFlags(fs, getenv)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usageError{"lp projects [--json]"}
	}
	store, err := db.openProjects(ctx)
	if err != nil {
		return err
	}
	items, err := store.ListProjects(ctx)
	if err != nil {
		return err
	}
	runs, err := db.open(ctx)
	if err != nil {
		return err
	}
	type row struct {
		Name          string                 `json:"name"`
		Branch        string                 `json:"branch"`
		Pipeline      string                 `json:"pipeline"`
		Declared      string                 `json:"declaredBy"`
		Removing      bool                   `json:"removing,omitempty"`
		Status        pipeline.ProjectStatus `json:"status"`
		LastRun       string                 `json:"lastRun,omitempty"`
		LastRunStatus string                 `json:"lastRunStatus,omitempty"`
	}
	var rows []row
	for _, it := range items {
		r := row{Name: it.Name, Branch: it.Branch, Pipeline: pipeline.PipelineOf(it.Name), Status: it.Status, Removing: it.Removed,
			Declared: "Projects parameter"}
		if it.Declared {
			r.Declared = "lp project add"
		}
		if r.Branch == "" {
			r.Branch = "(parameter)"
		}
		if last, err := runs.List(ctx, r.Pipeline, 1); err == nil && len(last) > 0 {
			r.LastRun, r.LastRunStatus = last[0].StartedAt.UTC().Format(time.RFC3339), string(last[0].Status)
		}
		rows = append(rows, r)
	}
	if *asJSON {
		if rows == nil {
			rows = []row{}
		}
		return writeJSON(stdout, rows)
	}
	tw := newTable(stdout)
	tw.row("PROJECT", "BRANCH", "STATE", "STACK", "LAST STEP", "LAST RUN", "REPOSITORY", "REASON")
	for _, r := range rows {
		state := string(r.Status.State)
		if state == "" {
			state = "declared"
		}
		if r.Removing && r.Status.State != pipeline.ProjectRemoving {
			state += " (removal asked)"
		}
		last := ""
		if !r.Status.LastStepAt.IsZero() {
			last = r.Status.LastStepAt.Local().Format("2006-01-02 15:04")
		}
		run := r.LastRunStatus
		if r.LastRun != "" {
			run += " " + r.LastRun
		}
		tw.row(r.Name, r.Branch, state, r.Status.StackStatus, last, run, r.Status.RepositoryCloneURL, short(r.Status.Reason, 120))
	}
	tw.flush()
	if len(rows) == 0 {
		fmt.Fprintln(stdout, "no projects declared: lp project add NAME")
	}
	return nil
}

// openProjects returns the PROJECT items' store over the runs table (dynalite with --endpoint).
func (o *dbOptions) openProjects(ctx context.Context) (*runstore.Projects, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.region))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	var clientOpts []func(*dynamodb.Options)
	if o.endpoint != "" {
		clientOpts = append(clientOpts, func(do *dynamodb.Options) {
			do.BaseEndpoint = aws.String(o.endpoint)
			do.DisableValidateResponseChecksum = true
		})
		if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
			cfg.Credentials = staticLocal{}
		}
		// A local table is created on first use, as lp runs does.
		if _, err := o.open(ctx); err != nil {
			return nil, err
		}
	}
	return runstore.NewProjects(dynamodb.NewFromConfig(cfg, clientOpts...), o.table), nil
}
