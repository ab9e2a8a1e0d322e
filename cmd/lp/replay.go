package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
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
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON document")
	render := fs.Bool("render", false, "print the Slack and SNS messages that would be sent")
	verbose := fs.Bool("v", false, "print the handlers' log lines on stderr")
	db := dbFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return usageError{"no files given: lp replay [--json] FILE..."}
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
	for _, n := range notes.sent {
		report.Notifications = append(report.Notifications, toReplayNotification(n, final[pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}]))
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	printReplay(stdout, report, ordered)
	if *render {
		return renderNotifications(stdout, notes.sent, final)
	}
	return nil
}

// renderNotifications prints each decided notification as the notifier would send it. A
// replay makes no AWS look-ups (build log, stack events, artifact link): the messages say so.
func renderNotifications(w io.Writer, sent []pipeline.Notification, runs map[pipeline.Key]pipeline.Run) error {
	for _, n := range sent {
		run := runs[pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}]
		d := pipeline.Details{Region: regionOf(run), Degraded: []string{"lp replay makes no AWS look-ups (build log, stack events, artifact link)"}}
		m := notify.Compose(n, run, d)
		payload, err := notify.RenderSlack(m)
		if err != nil {
			return fmt.Errorf("render %s for Slack: %w", n.Key(), err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, payload, "", "  "); err != nil {
			return err
		}
		sns := notify.RenderSNS(m)
		fmt.Fprintf(w, "\n==== %s\n---- Slack (incoming webhook payload)\n%s\n---- SNS\nSubject: %s\nAttributes: %v\n\n%s\n",
			n.Key(), pretty.String(), sns.Subject, sns.Attributes, sns.Body)
	}
	return nil
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
	tw := newTable(w)
	tw.row("STARTED", "PIPELINE", "EXECUTION", "COMMIT", "STATUS", "DURATION", "FAILING STAGE")
	for _, r := range runs {
		f := r.Failure()
		where := f.Stage
		if f.Action != "" {
			where += "/" + f.Action
		}
		tw.row(r.StartedAt.Format("2006-01-02 15:04:05"), r.Pipeline, r.ExecutionID, short(r.Commit.ID, 8), string(r.Status), duration(r.Duration(r.StartedAt)), where)
	}
	tw.flush()
	fmt.Fprintln(w)
	if len(rep.Notifications) == 0 {
		fmt.Fprintln(w, "notifications: none")
	}
	for _, n := range rep.Notifications {
		switch n.Type {
		case string(pipeline.NotifyFailed):
			fmt.Fprintf(w, "notify FAILED     %s %s at %s/%s: %s %s\n", n.Pipeline, n.ExecutionID, n.Stage, n.Action, n.ErrorCode, n.Summary)
		case string(pipeline.NotifyRecovered):
			fmt.Fprintf(w, "notify RECOVERED  %s %s (broken since %s)\n", n.Pipeline, n.ExecutionID, n.BrokenSince.Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "notify %-10s %s %s\n", n.Type, n.Pipeline, n.ExecutionID)
		}
	}
	fmt.Fprintf(w, "\n%d runs, %d notifications, %d events ignored (duplicate or stale), %d rejected, %d skipped, %d not recorded (store errors)\n",
		len(rep.Runs), len(rep.Notifications), rep.Ignored, rep.Rejected, rep.Skipped, rep.StoreErrors)
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
			// does not have; the executions' own events tell the rest.
			report.Skipped++
			fmt.Fprintf(stderr, "%s: skipped: a CodeCommit push (%s %s); replay records pipeline events\n", in.where, d.Push.Kind, d.Push.RefName)
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
