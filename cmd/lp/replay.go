package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// replayReport is the --json document. Its shape is a contract: the scenarios under
// testdata/scenarios check it.
type replayReport struct {
	Runs          []replayRun          `json:"runs"`
	Notifications []replayNotification `json:"notifications"`
	Rejected      int                  `json:"rejected"`
	// StoreErrors counts events the store could not take (an item too large, a throttled
	// table): the replay reports each on stderr and goes on with the next.
	StoreErrors int `json:"storeErrors"`
	Ignored     int `json:"ignored"`
	Skipped     int `json:"skipped"`
	// Pushes counts the CodeCommit push events, which a replay does not run: starting a run
	// takes CodeCommit and CodePipeline, and the runs the pushes started are told by their own
	// events. Each is named on stderr; they are neither rejected nor skipped events.
	Pushes  int                 `json:"pushes"`
	Metrics map[string]keysJSON `json:"metrics"` // per pipeline, over the replayed window (metrics.go)
}

type replayRun struct {
	Pipeline    string            `json:"pipeline"`
	ExecutionID string            `json:"executionId"`
	Status      string            `json:"status"`
	Attempt     int               `json:"attempt"`
	CommitID    string            `json:"commitId"`
	Message     string            `json:"commitMessage,omitempty"`
	StartedAt   time.Time         `json:"startedAt"`
	EndedAt     *time.Time        `json:"endedAt,omitempty"`
	Stages      map[string]string `json:"stages"`
}

type replayNotification struct {
	Type        string     `json:"type"`
	Pipeline    string     `json:"pipeline"`
	ExecutionID string     `json:"executionId"`
	Stage       string     `json:"stage,omitempty"`
	Action      string     `json:"action,omitempty"`
	ErrorCode   string     `json:"errorCode,omitempty"`
	Summary     string     `json:"summary,omitempty"`
	BrokenSince *time.Time `json:"brokenSince,omitempty"`
}

// collector is the replay's notifier in memory: it records what would be sent.
type collector struct{}

func (collector) Notify(context.Context, pipeline.Notification, pipeline.Run) error { return nil }

// tee passes each decision on to the dispatcher the replay uses, and keeps the ones that this
// replay dispatched (sent in memory, queued in a table) for the report.
type tee struct {
	next pipeline.Dispatcher
	sent []pipeline.Notification
}

func (t *tee) Dispatch(ctx context.Context, n pipeline.Notification, run pipeline.Run) (bool, error) {
	ok, err := t.next.Dispatch(ctx, n, run)
	if ok {
		t.sent = append(t.sent, n)
	}
	return ok, err
}

func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlags("replay")
	asJSON := fs.Bool("json", false, "print one JSON document")
	var render renderMode
	fs.Var(&render, "render", "print each Slack and SNS message as people see it; --render=json for the payloads")
	strict := fs.Bool("strict", false, "exit 1 when any event was rejected")
	verbose := fs.Bool("v", false, "print the handlers' log lines on stderr")
	svg := fs.String("svg", "", "write the delivery-metrics picture of the replayed window to FILE (metrics.go)")
	homeFlag := fs.String("home", getenv("LP_HOME"), "the control plane's ACCOUNT/REGION, e.g. 111111111111/eu-west-1 (LP_HOME): "+
		"pipelines elsewhere are kept apart under their ARN, as the deployed function does; unset, every event is the home's")
	db := dbFlags(fs, getenv)
	if err := parse(fs, replayHelp, args, stdout); err != nil {
		return err
	}
	home, err := parseHome(*homeFlag)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"no files given"}
	}
	var inputs []input
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		inputs = append(inputs, split(name, data)...)
	}

	// In memory, decided notifications are claimed and collected. Into a table (--endpoint),
	// the replay is one more on-pipeline-event: they are queued for the notifier function,
	// which sends them, so that a replay into a live table never consumes a real notification.
	clock := pipeline.SystemClock{}
	mem := runstore.NewMemory()
	var runs pipeline.RunStore = mem
	notes := &tee{next: &pipeline.Direct{Claims: mem, Notifier: collector{}, Clock: clock}}
	var outcomes pipeline.OutcomeStore = mem
	if db.endpoint != "" {
		store, err := db.open(ctx)
		if err != nil {
			return err
		}
		runs, outcomes, notes.next = store, store, runstore.Outbox{Store: store}
	}
	logw := io.Discard
	if *verbose {
		logw = stderr
	}
	h := &recording.PipelineEvents{
		Recorder: pipeline.NewRecorder(runs, outcomes, notes, clock),
		Log:      slog.New(slog.NewJSONHandler(logw, nil)),
		Clock:    clock,
		Home:     home,
	}

	report := replayReport{Runs: []replayRun{}, Notifications: []replayNotification{}}
	touched := replayInputs(ctx, h.Handle, inputs, &report, stderr)

	final := map[pipeline.Key]pipeline.Run{}
	for k := range touched {
		run, err := pipeline.LoadRun(ctx, runs, k)
		if err != nil {
			return fmt.Errorf("read back run %s: %w", k.ExecutionID, err)
		}
		final[k] = run
	}
	ordered := make([]pipeline.Run, 0, len(final))
	for _, r := range final {
		ordered = append(ordered, r)
	}
	slices.SortFunc(ordered, pipeline.CompareRuns)
	for _, r := range ordered {
		report.Runs = append(report.Runs, toReplayRun(r))
	}
	if report.Metrics = replayMetrics(ordered); *svg != "" {
		if err := replaySVG(*svg, ordered); err != nil {
			return err
		}
	}
	for _, n := range notes.sent {
		report.Notifications = append(report.Notifications, toReplayNotification(n, final[pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}]))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
		return replayVerdict(report, len(inputs), *strict)
	}
	if render != "json" { // --render=json prints one JSON document, the payloads
		printReplay(stdout, report, ordered)
	}
	if render != "" {
		if err := renderNotifications(stdout, render, notes.sent, final); err != nil {
			return err
		}
	}
	return replayVerdict(report, len(inputs), *strict)
}

// regionOf reads the region from the run's links, for the console URLs.
func regionOf(run pipeline.Run) string {
	for _, st := range run.Stages {
		for _, a := range st.Actions {
			if u := a.Result.URL; u != "" {
				if _, rest, ok := strings.Cut(u, "region="); ok {
					region, _, _ := strings.Cut(rest, "&")
					return region
				}
			}
		}
	}
	return "us-east-1"
}

func toReplayRun(r pipeline.Run) replayRun {
	out := replayRun{Pipeline: r.Pipeline, ExecutionID: r.ExecutionID, Status: string(r.Status), Attempt: r.Attempt,
		CommitID: r.Commit.ID, Message: r.Commit.Message, StartedAt: r.StartedAt, Stages: map[string]string{}}
	if !r.EndedAt.IsZero() {
		t := r.EndedAt
		out.EndedAt = &t
	}
	for name := range r.Stages {
		// A stage whose stage events were lost gets its status from its actions (issue 9,
		// defect 10).
		out.Stages[name] = string(r.StageStatus(name))
	}
	return out
}

func toReplayNotification(n pipeline.Notification, run pipeline.Run) replayNotification {
	out := replayNotification{Type: string(n.Type), Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}
	switch n.Type {
	case pipeline.NotifyFailed, pipeline.NotifyPushToStart:
		f := run.FailureAt(n.Attempt)
		out.Stage, out.Action, out.ErrorCode, out.Summary = f.Stage, f.Action, f.Result.ErrorCode, f.Result.Summary
	case pipeline.NotifyRecovered:
		t := n.BrokenSince
		out.BrokenSince = &t
	}
	return out
}

func printReplay(w io.Writer, rep replayReport, runs []pipeline.Run) {
	printRuns(w, runs, time.Time{}, false, false, false) // fits 100 columns (runs.go)
	fmt.Fprintln(w)
	if len(rep.Notifications) == 0 {
		fmt.Fprintln(w, "notifications: none")
	}
	notifyLines(w, rep.Notifications) // one line each, cut to fit (render.go)
	fmt.Fprintf(w, "\n%d runs, %d notifications; events: %d duplicate or stale, %d rejected, %d skipped, %d store errors\n",
		len(rep.Runs), len(rep.Notifications), rep.Ignored, rep.Rejected, rep.Skipped, rep.StoreErrors)
	switch {
	case rep.Pushes == 1:
		fmt.Fprintln(w, "1 CodeCommit push not replayed: its run is told by its pipeline events")
	case rep.Pushes > 1:
		fmt.Fprintf(w, "%d CodeCommit pushes not replayed: their runs are told by their pipeline events\n", rep.Pushes)
	}
}

// input is one event of a replay file, or the reason it could not be read as one.
type input struct {
	where string
	data  []byte
	err   string
}

// split reads a replay file: a JSON array of events, one JSON event (as in events/), or one
// JSON event per line. Blank lines are skipped.
func split(name string, data []byte) []input {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return []input{{where: name, err: "not a valid JSON array of events: " + err.Error()}}
		}
		out := make([]input, 0, len(list))
		for i, raw := range list {
			out = append(out, input{where: fmt.Sprintf("%s[%d]", name, i), data: raw})
		}
		return out
	}
	if json.Valid(trimmed) {
		return []input{{where: name, data: trimmed}}
	}
	var out []input
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		out = append(out, input{where: fmt.Sprintf("%s:%d", name, line), data: bytes.Clone(text)})
	}
	if err := sc.Err(); err != nil {
		out = append(out, input{where: name, err: err.Error()})
	}
	return out
}

// replayInputs hands each input to handle (on-pipeline-event's handler), counting in report what
// was rejected, skipped, ignored or not recorded, and returns the runs the recorded events touched.
func replayInputs(ctx context.Context, handle func(context.Context, json.RawMessage) (lambdaio.Response, error), inputs []input, report *replayReport, stderr io.Writer) map[pipeline.Key]bool {
	touched := map[pipeline.Key]bool{}
	for _, in := range inputs {
		if in.err != "" {
			report.Rejected++
			fmt.Fprintf(stderr, "%s: rejected: %s\n", in.where, in.err)
			continue
		}
		if d, err := ebevent.Decode(in.data); err == nil && d.Push != nil {
			// Pushes start executions through CodeCommit and CodePipeline, which a replay
			// does not have (nor does it write push claims into a live table); the
			// executions' own events tell the rest. Counted on their own, and named.
			report.Pushes++
			fmt.Fprintf(stderr, "%s: not replayed: a CodeCommit push (%s %s %s of %s); its run is told by its pipeline events\n",
				in.where, d.Push.Kind, d.Push.RefType, d.Push.RefName, d.Push.Repository)
			continue
		}
		resp, err := handle(ctx, in.data)
		if err != nil {
			// One event the store refused must not cost the rest of the file (issue 9,
			// defect 9): count it, say which, go on.
			report.StoreErrors++
			fmt.Fprintf(stderr, "%s: not recorded: %v\n", in.where, err)
			continue
		}
		switch resp.Outcome {
		case lambdaio.OutcomeRejected:
			report.Rejected++
			fmt.Fprintf(stderr, "%s: rejected: %s\n", in.where, resp.Reason)
			continue
		case lambdaio.OutcomeIgnored:
			report.Ignored++
		}
		touched[pipeline.Key{Pipeline: resp.Pipeline, ExecutionID: resp.ExecutionID}] = true
	}

	return touched
}

// parseHome reads --home: ACCOUNT/REGION, or "" for the zero Home (every event the home's).
func parseHome(s string) (pipeline.Home, error) {
	if s == "" {
		return pipeline.Home{}, nil
	}
	account, region, ok := strings.Cut(s, "/")
	if !ok || !accountIDRE.MatchString(account) || region == "" || strings.ContainsAny(region, "/: ") {
		return pipeline.Home{}, usageError{fmt.Sprintf("--home %q: want ACCOUNT/REGION, e.g. 111111111111/eu-west-1", s)}
	}
	return pipeline.Home{Account: account, Region: region}, nil
}

var accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)
