package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// runsSince reads the runs the metrics are computed from.
type runsSince interface {
	ListSince(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Run, error)
	List(ctx context.Context, pipelineName string, limit int) ([]pipeline.Run, error)
}

// keysJSON is one pipeline's four keys over one window, as lp metrics --json and
// lp replay --json print them. Durations are in seconds; a key with nothing to measure is null.
type keysJSON struct {
	Since                     time.Time `json:"since"`
	Until                     time.Time `json:"until"`
	Deployments               int       `json:"deployments"`
	DeploymentFrequencyPerDay float64   `json:"deploymentFrequencyPerDay"`
	LeadTimeSeconds           *float64  `json:"leadTimeSeconds"`
	LeadTimeMeanSeconds       *float64  `json:"leadTimeMeanSeconds"`
	DecisiveRuns              int       `json:"decisiveRuns"`
	FailedRuns                int       `json:"failedRuns"`
	ChangeFailureRate         *float64  `json:"changeFailureRate"`
	Restores                  int       `json:"restores"`
	TimeToRestoreSeconds      *float64  `json:"timeToRestoreSeconds"`
	TimeToRestoreMeanSeconds  *float64  `json:"timeToRestoreMeanSeconds"`
}

func toKeysJSON(k dora.Keys) keysJSON {
	out := keysJSON{Since: k.Window.Since, Until: k.Window.Until, Deployments: k.Deployments,
		DeploymentFrequencyPerDay: k.DeploymentsPerDay, DecisiveRuns: k.DecisiveRuns, FailedRuns: k.FailedRuns,
		Restores: k.TimeToRestore.Count}
	out.LeadTimeSeconds, out.LeadTimeMeanSeconds = seconds(k.LeadTime)
	out.TimeToRestoreSeconds, out.TimeToRestoreMeanSeconds = seconds(k.TimeToRestore)
	if k.HasChangeFailureRate() {
		v := k.ChangeFailureRate
		out.ChangeFailureRate = &v
	}
	return out
}

func seconds(d dora.Durations) (median, mean *float64) {
	if d.Count == 0 {
		return nil, nil
	}
	m, a := d.Median.Seconds(), d.Mean.Seconds()
	return &m, &a
}

// pipelineMetrics is one element of lp metrics --json.
type pipelineMetrics struct {
	Pipeline string     `json:"pipeline"`
	Project  string     `json:"project,omitempty"`
	Current  keysJSON   `json:"current"`
	Previous keysJSON   `json:"previous"`
	Daily    []dora.Day `json:"daily"`
}

// replayMetrics computes the keys of every replayed pipeline over the replayed window: from the
// earliest to the latest time the records hold (the first and last event that counted),
// both included.
func replayMetrics(runs []pipeline.Run) map[string]keysJSON {
	out := map[string]keysJSON{}
	w, ok := recordedSpan(runs)
	if !ok {
		return out
	}
	for _, k := range dora.Compute(runs, w, dora.DefaultRule()) {
		j := toKeysJSON(k)
		j.Until = w.Until.Add(-time.Nanosecond) // the last event, as the window includes it
		out[k.Pipeline] = j
	}
	return out
}

// recordedSpan is the window from the earliest to the latest time in the records, the latest
// included (the window is half-open: it ends one nanosecond after it).
func recordedSpan(runs []pipeline.Run) (dora.Window, bool) {
	var first, last time.Time
	see := func(ts ...time.Time) {
		for _, t := range ts {
			if t.IsZero() {
				continue
			}
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
	}
	for _, r := range runs {
		see(r.StartedAt, r.EndedAt, r.At)
		for _, st := range r.Stages {
			see(st.StartedAt, st.At)
			for _, a := range st.Actions {
				see(a.StartedAt, a.At)
			}
		}
		for _, o := range r.Outcomes {
			see(o.At)
		}
	}
	if first.IsZero() {
		return dora.Window{}, false
	}
	return dora.Window{Since: first, Until: last.Add(time.Nanosecond)}, true
}

var metricsHelp = help{
	name:     "metrics",
	synopsis: "[--project P | --pipeline P] [--since 30d] [--until T] [--json] [--svg FILE] [--stack S | --table T]",
	summary:  "the four DORA keys per pipeline over a window, with the window before for the trend",
	example: `lp metrics --stack my-lambda-control-plane --project my-lambda --since 2w
lp metrics --endpoint http://127.0.0.1:8000 --json`,
}

func metricsCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("metrics")
	pipelineName := fs.String("pipeline", getenv("PIPELINE_NAME"), "only this pipeline: its name, or its ARN for a pipeline of another account or region")
	project := fs.String("project", "", "only this project's pipeline (<project>-pipeline)")
	sinceFlag := fs.String("since", "30d", "window length, back from --until: 30d, 2w, 36h")
	untilFlag := fs.String("until", "", "end of the window (RFC 3339), default now")
	deployStage := fs.String("deploy-stage", dora.DefaultDeployStage, "the stage whose success makes a run a deploy")
	asJSON := fs.Bool("json", false, "print JSON")
	svg := fs.String("svg", "", "also write a picture of the window to this SVG file")
	db := dbFlags(fs, getenv)
	if err := parse(fs, metricsHelp, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if *project != "" {
		*pipelineName = *project + "-pipeline"
	}
	length, err := parseSince(*sinceFlag)
	if err != nil {
		return usageError{err.Error()}
	}
	until := time.Now().UTC()
	if *untilFlag != "" {
		if until, err = time.Parse(time.RFC3339, *untilFlag); err != nil {
			return usageError{"--until: " + err.Error()}
		}
	}
	w := dora.Window{Since: until.Add(-length), Until: until}
	store, err := db.openRead(ctx)
	if err != nil {
		return err
	}
	runs, err := loadRuns(ctx, store, *pipelineName, w)
	if err != nil {
		return db.explain(err)
	}
	rule := dora.Rule{DeployStage: *deployStage}
	reports := metricsOf(runs, w, rule)
	if *svg != "" {
		if len(reports) != 1 {
			return usageError{fmt.Sprintf("--svg draws one pipeline; %d have runs: choose one with --pipeline", len(reports))}
		}
		if err := writeSVG(*svg, reports[0].cur, runs, rule); err != nil {
			return err
		}
	}
	if *asJSON {
		out := make([]pipelineMetrics, 0, len(reports))
		for _, r := range reports {
			out = append(out, pipelineMetrics{Pipeline: r.cur.Pipeline, Project: dora.ProjectOf(r.cur.Pipeline),
				Current: toKeysJSON(r.cur), Previous: toKeysJSON(r.prev), Daily: r.cur.Daily})
		}
		return writeJSON(stdout, out)
	}
	if len(reports) == 0 {
		fmt.Fprintf(stdout, "no runs from %s to %s\n", stamp(w.Previous().Since), stamp(w.Until))
		return nil
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printKeys(stdout, r.cur, r.prev, *sinceFlag)
	}
	return nil
}

// loadRuns reads the runs that can count in the window or the one before it, and those of one
// more window before them, so that changes and failure streaks that began before the previous
// window are measured from their beginning.
func loadRuns(ctx context.Context, store runsSince, pipelineName string, w dora.Window) ([]pipeline.Run, error) {
	from := w.Previous().Previous().Since
	var all []pipeline.Run
	var err error
	if pipelineName != "" {
		all, err = store.ListSince(ctx, pipelineName, from)
	} else {
		all, err = store.List(ctx, "", math.MaxInt32)
	}
	if err != nil {
		return nil, err
	}
	// A run that entered the pipeline after the window cannot count in it.
	var runs []pipeline.Run
	for _, r := range all {
		placed := r.StartedAt
		if placed.IsZero() {
			placed = r.Commit.PushedAt
		}
		if !placed.Before(from) && placed.Before(w.Until) {
			runs = append(runs, r)
		}
	}
	return runs, nil
}

type keysReport struct{ cur, prev dora.Keys }

// metricsOf computes the keys of every pipeline over the window and the window before it.
func metricsOf(runs []pipeline.Run, w dora.Window, rule dora.Rule) []keysReport {
	prev := dora.Compute(runs, w.Previous(), rule)
	var out []keysReport
	for i, k := range dora.Compute(runs, w, rule) {
		out = append(out, keysReport{cur: k, prev: prev[i]})
	}
	return out
}

// parseSince reads a window length: Nd (days), Nw (weeks), or a Go duration (36h).
func parseSince(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	switch {
	case strings.HasSuffix(s, "d"), strings.HasSuffix(s, "w"):
		var n int
		n, err = strconv.Atoi(s[:len(s)-1])
		d = time.Duration(n) * 24 * time.Hour
		if strings.HasSuffix(s, "w") {
			d *= 7
		}
	default:
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < time.Hour {
		return 0, fmt.Errorf("--since %q: want a length of at least an hour, such as 30d, 2w or 36h", s)
	}
	return d, nil
}

// printKeys prints one pipeline's table: the four keys, the previous window's values and the
// trend, then deploys and failures per day. It fits in 80 columns.
func printKeys(w io.Writer, cur, prev dora.Keys, label string) {
	fmt.Fprintf(w, "%s  last %s: %s → %s\n", pipeline.DisplayName(cur.Pipeline), label, stamp(cur.Window.Since), stamp(cur.Window.Until))
	tw := newTable(w)
	tw.row("  KEY", "NOW", "", "BEFORE", "TREND")
	tw.row("  deployment frequency", perDay(cur.DeploymentsPerDay), plural(cur.Deployments, "deploy"),
		perDay(prev.DeploymentsPerDay), dora.Trend(cur.DeploymentsPerDay, prev.DeploymentsPerDay, true, true, true))
	tw.row("  lead time (median)", median(cur.LeadTime), mean(cur.LeadTime), median(prev.LeadTime),
		dora.Trend(cur.LeadTime.Median.Seconds(), prev.LeadTime.Median.Seconds(), cur.LeadTime.Count > 0, prev.LeadTime.Count > 0, false))
	tw.row("  change failure rate", rate(cur), fmt.Sprintf("%d of %d runs", cur.FailedRuns, cur.DecisiveRuns), rate(prev),
		dora.Trend(cur.ChangeFailureRate, prev.ChangeFailureRate, cur.HasChangeFailureRate(), prev.HasChangeFailureRate(), false))
	tw.row("  time to restore (median)", median(cur.TimeToRestore), mean(cur.TimeToRestore), median(prev.TimeToRestore),
		dora.Trend(cur.TimeToRestore.Median.Seconds(), prev.TimeToRestore.Median.Seconds(), cur.TimeToRestore.Count > 0, prev.TimeToRestore.Count > 0, false))
	tw.flush()
	if cur.BrokenSince != nil {
		fmt.Fprintf(w, "  broken since %s\n", stamp(*cur.BrokenSince))
	}
	deploys, failures := sparklines(cur.Daily, 56)
	fmt.Fprintf(w, "  deploys   %s\n  failures  %s\n", deploys, failures)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// stamp prints a time in UTC to the minute.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func perDay(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "/day" }

func median(d dora.Durations) string {
	if d.Count == 0 {
		return "-"
	}
	return roundDuration(d.Median)
}

func mean(d dora.Durations) string {
	if d.Count == 0 {
		return ""
	}
	return "mean " + roundDuration(d.Mean)
}

// roundDuration keeps a duration readable: seconds under an hour, minutes above.
func roundDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0s"
	}
	return s
}

func rate(k dora.Keys) string {
	if !k.HasChangeFailureRate() {
		return "-"
	}
	return strconv.FormatFloat(100*k.ChangeFailureRate, 'f', 0, 64) + "%"
}

// sparklines draws deploys and failures per day, one cell per day, or per group of days when
// there are more than width days; both lines share one scale.
func sparklines(days []dora.Day, width int) (deploys, failures string) {
	per := (len(days) + width - 1) / width
	var dep, fail []int
	for i := 0; i < len(days); i += per {
		d, f := 0, 0
		for _, day := range days[i:min(i+per, len(days))] {
			d += day.Deployments
			f += day.Failures
		}
		dep, fail = append(dep, d), append(fail, f)
	}
	top := 0
	for i := range dep {
		top = max(top, dep[i], fail[i])
	}
	return spark(dep, top), spark(fail, top)
}

func spark(v []int, top int) string {
	const bars = "▁▂▃▄▅▆▇█"
	levels := []rune(bars)
	var b strings.Builder
	for _, n := range v {
		if n == 0 || top == 0 {
			b.WriteRune('·')
			continue
		}
		b.WriteRune(levels[(n*len(levels)-1)/top])
	}
	return b.String()
}
