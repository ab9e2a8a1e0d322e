package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// The scale replay (issue 12): many projects' pipelines, one run each, their events
// interleaved as EventBridge would deliver them to the one on-pipeline-event function of the
// account. The runs come from the recorded single-run scenarios of cmd/lp/testdata, each
// renamed to its own pipeline (p0042-pipeline) and event ids. Their execution ids are kept:
// pipelines of the same template share them, as nothing stops two pipelines' executions from
// looking alike, and their runs must not mix all the same (runs are keyed by pipeline).

// scaleTemplates are the recorded scenarios of one execution each.
var scaleTemplates = []string{
	"../../cmd/lp/testdata/scenarios/retried-and-passed.ndjson",
	"../../cmd/lp/testdata/scenarios/shared/success.ndjson",
	"../../cmd/lp/testdata/scenarios/shared/deploy-fails.ndjson",
	"../../cmd/lp/testdata/scenarios/shared/stopped-by-hand.ndjson",
}

type scaleEvent struct {
	Pipeline string
	Raw      json.RawMessage
	// Ending: a pipeline-level terminal state (the event that ends an attempt).
	Ending bool
}

// scaleReplay returns the events of n pipelines' runs, interleaved in a deterministic random
// order that keeps each run's own order, and each pipeline's events in order.
func scaleReplay(tb testing.TB, n int) (all []scaleEvent, byPipeline map[string][]scaleEvent) {
	tb.Helper()
	var templates [][]map[string]any
	for _, path := range scaleTemplates {
		f, err := os.Open(path)
		if err != nil {
			tb.Fatal(err)
		}
		var evs []map[string]any
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				tb.Fatalf("%s: %v", filepath.Base(path), err)
			}
			evs = append(evs, m)
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			tb.Fatal(err)
		}
		templates = append(templates, evs)
	}
	byPipeline = make(map[string][]scaleEvent, n)
	var names []string
	for i := range n {
		name := pipeline.PipelineOf(fmt.Sprintf("p%04d", i))
		names = append(names, name)
		for _, tmpl := range templates[i%len(templates)] {
			byPipeline[name] = append(byPipeline[name], renamed(tb, tmpl, name, fmt.Sprintf("%08x", i), ""))
		}
	}
	// Interleave: repeatedly take the next event of a pipeline picked at random.
	rng := rand.New(rand.NewPCG(12, 2026))
	next := make(map[string]int, n)
	active := slices.Clone(names)
	for len(active) > 0 {
		k := rng.IntN(len(active))
		p := active[k]
		all = append(all, byPipeline[p][next[p]])
		if next[p]++; next[p] == len(byPipeline[p]) {
			active[k] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
	return all, byPipeline
}

// renamed is the template event as pipeline name's: its pipeline, the resource ARN, and the
// first 8 characters of its event id replaced by idPrefix (and of its execution id by
// execPrefix, unless empty).
func renamed(tb testing.TB, tmpl map[string]any, name, idPrefix, execPrefix string) scaleEvent {
	tb.Helper()
	var m map[string]any
	b, _ := json.Marshal(tmpl)
	_ = json.Unmarshal(b, &m) // a deep copy
	uniq := func(id, prefix string) string {
		if len(id) < 8 {
			tb.Fatalf("id %q too short to rename", id)
		}
		return prefix + id[8:]
	}
	m["id"] = uniq(m["id"].(string), idPrefix)
	d := m["detail"].(map[string]any)
	d["pipeline"] = name
	if execPrefix != "" {
		d["execution-id"] = uniq(d["execution-id"].(string), execPrefix)
	}
	if res, ok := m["resources"].([]any); ok && len(res) > 0 {
		arn := res[0].(string)
		m["resources"] = []any{arn[:strings.LastIndex(arn, ":")+1] + name}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	state, _ := d["state"].(string)
	ending := m["detail-type"] == "CodePipeline Pipeline Execution State Change" &&
		slices.Contains([]string{"SUCCEEDED", "FAILED", "STOPPED", "CANCELED", "SUPERSEDED"}, state)
	return scaleEvent{Pipeline: name, Raw: raw, Ending: ending}
}

// notifications counts the notifications sent per pipeline.
type notifications struct {
	mu  sync.Mutex
	per map[string][]string
}

func (c *notifications) Notify(_ context.Context, n pipeline.Notification, run pipeline.Run) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.Pipeline != run.Pipeline {
		return fmt.Errorf("notification of %s about a run of %s", n.Pipeline, run.Pipeline)
	}
	c.per[n.Pipeline] = append(c.per[n.Pipeline], string(n.Type))
	return nil
}

// outcome is what replaying a pipeline's events leaves: its run's status and notifications.
type outcome struct {
	Status        string
	Notifications []string
}

func replayMemory(tb testing.TB, events []scaleEvent) map[string]outcome {
	tb.Helper()
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	sent := &notifications{per: map[string][]string{}}
	h := &recording.PipelineEvents{
		Recorder: runstore.NewMemory().Recorder(sent, pipeline.ClockFunc(func() time.Time { return at })),
		Log:      slog.New(slog.DiscardHandler),
	}
	out := map[string]outcome{}
	for _, ev := range events {
		resp, err := h.Handle(ctx, ev.Raw)
		if err != nil || resp.Pipeline != ev.Pipeline {
			tb.Fatalf("%s: %+v, %v", ev.Pipeline, resp, err)
		}
		o := out[ev.Pipeline]
		o.Status = resp.Status
		out[ev.Pipeline] = o
	}
	for p, ns := range sent.per {
		o := out[p]
		o.Notifications = ns
		out[p] = o
	}
	return out
}

// TestReplayOfAThousandPipelinesKeepsEveryRunItsOwn: 1,000 pipelines' runs, interleaved,
// leave each pipeline exactly what its run alone leaves (status and notifications): runs and
// messages of different projects never mix, whatever the interleaving.
func TestReplayOfAThousandPipelinesKeepsEveryRunItsOwn(t *testing.T) {
	const n = 1000
	all, byPipeline := scaleReplay(t, n)
	if per := float64(len(all)) / n; per < 15 {
		t.Fatalf("%.1f events per run, want a realistic run", per)
	}
	got := replayMemory(t, all)
	if len(got) != n {
		t.Fatalf("%d pipelines recorded, want %d", len(got), n)
	}
	// Each template's first pipeline, replayed alone, is the reference for its others.
	alone := make([]outcome, len(scaleTemplates))
	for i := range alone {
		ref := pipeline.PipelineOf(fmt.Sprintf("p%04d", i))
		alone[i] = replayMemory(t, byPipeline[ref])[ref]
		if alone[i].Status == "FAILED" && len(alone[i].Notifications) == 0 {
			t.Errorf("%s failed without a notification: %+v", ref, alone[i])
		}
	}
	for i := range n {
		p, want := pipeline.PipelineOf(fmt.Sprintf("p%04d", i)), alone[i%len(scaleTemplates)]
		if g := got[p]; g.Status != want.Status || !slices.Equal(g.Notifications, want.Notifications) {
			t.Fatalf("%s interleaved: %+v; its run alone: %+v", p, g, want)
		}
	}
}

// counting is a DynamoDB client that counts write requests, in total and per partition key.
type counting struct {
	runstore.DynamoAPI
	writes atomic.Int64
	mu     sync.Mutex
	perPK  map[string]int
}

func (c *counting) wrote(pk types.AttributeValue) {
	c.writes.Add(1)
	s, _ := pk.(*types.AttributeValueMemberS)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil {
		c.perPK[s.Value]++
	}
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.wrote(in.Item["pk"])
	return c.DynamoAPI.PutItem(ctx, in, opts...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.wrote(in.Key["pk"])
	return c.DynamoAPI.UpdateItem(ctx, in, opts...)
}

// TestReplayOnDynamoWritesOncePerEventAndSpreadsKeys replays a 100-pipeline sample through the
// deployed store (dynalite): every event that does not end an attempt costs exactly one
// write, an ending event a bounded few (observation, outcome, outbox claims), and no partition
// key takes more writes than the events of one run (no hot partition).
func TestReplayOnDynamoWritesOncePerEventAndSpreadsKeys(t *testing.T) {
	const n = 100
	all, byPipeline := scaleReplay(t, n)
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, runstore.TableInput(dynalitetest.UniqueTableName(t)))
	c := &counting{DynamoAPI: db, perPK: map[string]int{}}
	at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	store := runstore.NewDynamo(c, table, pipeline.ClockFunc(func() time.Time { return at }))
	h := &recording.PipelineEvents{Recorder: store.Recorder(), Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	var endingWrites, endings int64
	for _, ev := range all {
		before := c.writes.Load()
		if _, err := h.Handle(ctx, ev.Raw); err != nil {
			t.Fatalf("%s: %v", ev.Pipeline, err)
		}
		w := c.writes.Load() - before
		switch {
		case !ev.Ending && w != 1:
			t.Fatalf("%s: a non-ending event cost %d writes, want 1:\n%s", ev.Pipeline, w, ev.Raw)
		case ev.Ending && (w < 1 || w > 6):
			// The observation, the outcome, the failure's message, and a recovery that
			// the failure's decision finds (a success that ended after it, learnt first):
			// its guard, its pointer and its message (OutcomeStore.Recover).
			t.Fatalf("%s: an ending event cost %d writes, want 1 to 6:\n%s", ev.Pipeline, w, ev.Raw)
		case ev.Ending:
			endingWrites += w
			endings++
		}
	}
	maxRun := 0
	for _, evs := range byPipeline {
		maxRun = max(maxRun, len(evs))
	}
	hottest, hotKey := 0, ""
	for pk, w := range c.perPK {
		if w > hottest {
			hottest, hotKey = w, pk
		}
	}
	if hottest > maxRun {
		t.Errorf("partition %s took %d writes, more than the %d events of the longest run", hotKey, hottest, maxRun)
	}
	if len(c.perPK) < n {
		t.Errorf("%d partition keys written for %d pipelines' runs", len(c.perPK), n)
	}
	t.Logf("%d events of %d pipelines: %d writes (%.3f per event); %d ending events at %.2f writes each; %d partition keys, the hottest %d writes (longest run %d events)",
		len(all), n, c.writes.Load(), float64(c.writes.Load())/float64(len(all)), endings, float64(endingWrites)/float64(max(endings, 1)), len(c.perPK), hottest, maxRun)
}

func TestMain(m *testing.M) { dynalitetest.Main(m) }

// BenchmarkReplayAccountScale replays the full size through the in-memory recorder:
// SCALE_PIPELINES (1,000) pipelines × SCALE_RUNS (50) runs each, interleaved (≈1 M events;
// `make bench-scale`). Each run is a template renamed on the fly, so the replay holds no more
// than the store does. It reports events per second and the notifications sent.
func BenchmarkReplayAccountScale(b *testing.B) {
	if os.Getenv("LP_BENCH_SCALE") == "" {
		b.Skip("about 100 s at full size: make bench-scale (LP_BENCH_SCALE=1)")
	}
	pipelines, runs := envInt(b, "SCALE_PIPELINES", 1000), envInt(b, "SCALE_RUNS", 50)
	var templates [][]string // each event with @@PIPE@@, @@ID@@ and @@EX@@ (8 characters) tokens
	for _, path := range scaleTemplates {
		_, byPipeline := scaleReplayFrom(b, path)
		templates = append(templates, byPipeline)
	}
	for b.Loop() {
		// The order: each pipeline's runs one after the other, pipelines interleaved at random.
		rng := rand.New(rand.NewPCG(12, 2026))
		remaining := make([]int, pipelines)
		for i := range remaining {
			remaining[i] = runs * len(templates[i%len(templates)])
		}
		active := make([]int, pipelines)
		for i := range active {
			active[i] = i
		}
		next := make([]int, pipelines)
		sent := &notifications{per: map[string][]string{}}
		at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
		h := &recording.PipelineEvents{
			Recorder: runstore.NewMemory().Recorder(sent, pipeline.ClockFunc(func() time.Time { return at })),
			Log:      slog.New(slog.DiscardHandler),
		}
		ctx := context.Background()
		events := 0
		for len(active) > 0 {
			k := rng.IntN(len(active))
			i := active[k]
			tmpl := templates[i%len(templates)]
			r, e := next[i]/len(tmpl), next[i]%len(tmpl)
			raw := strings.NewReplacer("@@PIPE@@", pipeline.PipelineOf(fmt.Sprintf("p%04d", i)),
				"@@ID@@", fmt.Sprintf("%04x%04x", i, r), "@@EX@@", fmt.Sprintf("%08x", r)).Replace(tmpl[e])
			if _, err := h.Handle(ctx, json.RawMessage(raw)); err != nil {
				b.Fatal(err)
			}
			events++
			if next[i]++; next[i] == remaining[i] {
				active[k] = active[len(active)-1]
				active = active[:len(active)-1]
			}
		}
		total := 0
		for _, ns := range sent.per {
			total += len(ns)
		}
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(total), "notifications")
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	}
}

// scaleReplayFrom returns the events of one template with tokens for the pipeline name and
// the first 8 characters of the event and execution ids.
func scaleReplayFrom(tb testing.TB, path string) (string, []string) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatal(err)
		}
		out = append(out, string(renamed(tb, m, "@@PIPE@@", "@@ID@@", "@@EX@@").Raw))
	}
	return path, out
}

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
