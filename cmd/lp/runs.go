package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

var runsHelp = help{
	name:     "runs",
	synopsis: "[--pipeline P] [--limit N] [--wide] [--json] [--stack S | --table T] [--endpoint URL]",
	summary:  "recent runs, newest first",
	example: `lp runs --stack my-lambda-control-plane --pipeline my-lambda-pipeline
lp runs --endpoint http://127.0.0.1:8000 --json`,
}

func runsCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("runs")
	pipelineName := fs.String("pipeline", getenv("PIPELINE_NAME"), "only this pipeline's runs (PIPELINE_NAME): its name, or its ARN for a pipeline of another account or region")
	project := fs.String("project", "", "only this project's runs (its pipeline, <project>-pipeline)")
	limit := fs.Int("limit", 20, "at most this many runs, 1 to 1000")
	wide := fs.Bool("wide", false, "full ids, every column, no truncation")
	asJSON := fs.Bool("json", false, "print a JSON array (times that are not known are left out)")
	db := dbFlags(fs, getenv)
	if err := parse(fs, runsHelp, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *limit < 1 || *limit > 1000 {
		return usageError{"--limit must be from 1 to 1000"}
	}
	if *project != "" {
		*pipelineName = pipeline.PipelineOf(*project)
	}
	store, err := db.openRead(ctx)
	if err != nil {
		return err
	}
	runs, err := store.List(ctx, *pipelineName, *limit)
	if err != nil {
		return db.explain(err)
	}
	if *asJSON {
		if runs == nil {
			runs = []pipeline.Run{}
		}
		return writeJSON(stdout, runs)
	}
	if len(runs) == 0 {
		fmt.Fprintf(stdout, "no runs recorded in table %s\n", db.tableName)
		return nil
	}
	printRuns(stdout, runs, time.Now(), *wide, useColour(stdout, getenv), true)
	return nil
}

// printRuns prints runs as a table that fits defaultWidth unless wide. StartedAt is shown in
// local time when local is true (lp runs), in UTC otherwise (a replay's recorded times).
func printRuns(w io.Writer, runs []pipeline.Run, now time.Time, wide, colour, local bool) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "runs: none")
		return
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.ExecutionID
	}
	abbrev := shortIDs(ids)
	g := grid{cols: []column{
		{title: "STARTED"},
		{title: "PIPELINE", shrink: 3, min: 12},
		{title: "EXECUTION"},
		{title: "COMMIT"},
		{title: "AUTHOR", shrink: 2, min: 8, omitEmpty: true},
		{title: "STATUS", status: true},
		{title: "DURATION"},
		{title: "FAILING STAGE", shrink: 1, min: 12},
	}}
	for _, r := range runs {
		started := r.StartedAt
		if local {
			started = started.Local()
		}
		id, commitID, when := r.ExecutionID, r.Commit.ID, "-"
		if !started.IsZero() {
			when = started.Format("01-02 15:04") // the year: --wide or --json
		}
		if !wide {
			id, commitID = abbrev[id], short(commitID, 8)
		} else if !started.IsZero() {
			when = started.Format("2006-01-02 15:04:05")
		}
		end := now
		if !local {
			end = r.StartedAt // a replay's runs have ended; an unfinished one shows no duration
		}
		g.add(when, pipeline.DisplayName(r.Pipeline), id, commitID, r.Commit.Author, string(r.Status), duration(r.Duration(end)), failingAt(r))
	}
	width := defaultWidth
	if wide {
		width = 0
	}
	g.render(w, width, colour)
}

// failingAt is "Stage/Action" of the run's failure, "Stage" when no action is known, "" for none.
func failingAt(r pipeline.Run) string {
	f := r.Failure()
	return joinWhere(f.Stage, f.Action)
}

func joinWhere(stage, action string) string {
	switch {
	case stage == "":
		return ""
	case action == "":
		return stage
	}
	return stage + "/" + action
}

var showHelp = help{
	name:     "show",
	synopsis: "[--pipeline P] [--json] [--stack S | --table T] [--endpoint URL] EXECUTION_ID",
	summary:  "one run: stages, actions, durations, the full failure reason and links",
	example: `lp show a1f0c2d4-1111-4a5b-8c6d-000000000003
lp show --pipeline my-lambda-pipeline a1f0c2d4…0003     # an id as lp runs abbreviates it`,
}

func showCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("show")
	asJSON := fs.Bool("json", false, "print JSON (times that are not known are left out)")
	pipelineName := fs.String("pipeline", "", "the execution's pipeline (found through the index when omitted)")
	db := dbFlags(fs, getenv)
	if err := parse(fs, showHelp, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want one EXECUTION_ID"}
	}
	id := fs.Arg(0)
	store, err := db.openRead(ctx)
	if err != nil {
		return err
	}
	var run pipeline.Run
	if *pipelineName != "" {
		run, err = pipeline.LoadRun(ctx, store, pipeline.Key{Pipeline: *pipelineName, ExecutionID: id})
		if err == nil && run.StartedAt.IsZero() && len(run.Stages) == 0 && run.Status == "" {
			err = pipeline.ErrNotFound
		}
	} else {
		run, err = store.FindExecution(ctx, id)
	}
	if errors.Is(err, pipeline.ErrNotFound) {
		// An abbreviation, as lp runs prints them: look among the recent runs.
		var runs []pipeline.Run
		if runs, err = store.List(ctx, *pipelineName, 1000); err == nil {
			run, err = pickAbbreviated(runs, id)
		}
	}
	if err != nil {
		return fmt.Errorf("execution %s: %w", id, db.explain(err))
	}
	if *asJSON {
		return writeJSON(stdout, run)
	}
	printRun(stdout, run, time.Now(), useColour(stdout, getenv))
	printApprovals(ctx, stdout, store, run, time.Now())
	return nil
}

// pickAbbreviated finds the one run whose execution id matches abbrev.
func pickAbbreviated(runs []pipeline.Run, abbrev string) (pipeline.Run, error) {
	var found []pipeline.Run
	for _, r := range runs {
		if matchesShort(r.ExecutionID, abbrev) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return pipeline.Run{}, pipeline.ErrNotFound
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, r := range found {
		ids = append(ids, r.ExecutionID)
	}
	return pipeline.Run{}, fmt.Errorf("ambiguous: %d runs match (%s); give more of the id", len(found), strings.Join(ids, ", "))
}

// printRun prints one run's timeline: the header with the full failure reason, the stages and
// actions (detail cut to fit 100 columns), then every action's link on a line of its own.
func printRun(w io.Writer, r pipeline.Run, now time.Time, colour bool) {
	status := string(r.Status)
	if colour {
		status = paint(status)
	}
	fmt.Fprintf(w, "%s  %s  %s (attempt %d)\n", pipeline.DisplayName(r.Pipeline), r.ExecutionID, status, max(r.Attempt, 1))
	started := "-"
	if !r.StartedAt.IsZero() {
		started = r.StartedAt.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "started   %s   duration %s\n", started, duration(r.Duration(now)))
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
		where := joinWhere(f.Stage, f.Action)
		if where == "" {
			where = "an unknown stage (no stage events recorded)"
		}
		fmt.Fprintf(w, "failed in %s: %s\n", where, strings.TrimSpace(f.Result.ErrorCode+" "+f.Result.Summary))
	}
	fmt.Fprintln(w)
	g := grid{cols: []column{
		{title: "STAGE / ACTION", shrink: 2, min: 16},
		{title: "STATUS", status: true},
		{title: "ATTEMPT"},
		{title: "STARTED"},
		{title: "DURATION"},
		{title: "DETAIL", shrink: 1, min: 10, omitEmpty: true},
	}}
	type link struct{ name, url string }
	var links []link
	for _, name := range r.StageNames() {
		st := r.Stages[name]
		g.add(name, string(r.StageStatus(name)), fmt.Sprint(st.Attempt), clock(st.StartedAt), span(st.StartedAt, st.Progress, now), "")
		for _, an := range st.ActionNames() {
			a := st.Actions[an]
			g.add("  "+an, string(a.Status), fmt.Sprint(a.Attempt), clock(a.StartedAt), span(a.StartedAt, a.Progress, now),
				strings.TrimSpace(a.Result.ErrorCode+" "+firstLine(a.Result.Summary)))
			if a.Result.URL != "" {
				links = append(links, link{name + "/" + an, a.Result.URL})
			}
		}
	}
	g.render(w, defaultWidth, colour)
	if len(links) > 0 {
		fmt.Fprintln(w, "\nlinks")
		for _, l := range links {
			fmt.Fprintf(w, "  %s\n    %s\n", l.name, l.url)
		}
	}
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

// zeroTime is how encoding/json writes a time.Time nobody set.
const zeroTime = `"0001-01-01T00:00:00Z"`

// writeJSON writes v as indented JSON, leaving out every member whose value is the zero time:
// an unknown time is absent, not "0001-01-01T00:00:00Z". The domain types keep their own JSON
// tags; the CLI's output is cleaned here, members in their original order.
func writeJSON(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var clean bytes.Buffer
	if err := dropZeroTimes(&clean, raw); err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, clean.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// dropZeroTimes copies the JSON value raw to b without the object members whose value is the
// zero time.
func dropZeroTimes(b *bytes.Buffer, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return errors.New("empty JSON value")
	}
	switch raw[0] {
	case '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return err
		}
		b.WriteByte('{')
		first := true
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			var val json.RawMessage
			if err := dec.Decode(&val); err != nil {
				return err
			}
			if string(bytes.TrimSpace(val)) == zeroTime {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			key, _ := json.Marshal(tok.(string))
			b.Write(key)
			b.WriteByte(':')
			if err := dropZeroTimes(b, val); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return err
		}
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := dropZeroTimes(b, it); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	default:
		b.Write(raw)
	}
	return nil
}

// table is a plain aligned table, for output that is not a list of runs (lp metrics).
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table    { return &table{tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)} }
func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }
func (t *table) flush()              { t.tw.Flush() }
