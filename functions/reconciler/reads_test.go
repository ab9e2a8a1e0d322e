package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
	"github.com/lambda-pipeline/lambda-pipeline/shared/testing/harness"
)

func TestMain(m *testing.M) { dynalitetest.Main(m) }

// itemsRead counts what the store reads from the table: requests, and the items they return
// (GetItem: one when found; Query: the page's items), which is what DynamoDB bills reads by
// (per 4 KB of them).
type itemsRead struct {
	runstore.DynamoAPI
	requests, items atomic.Int64
}

func (c *itemsRead) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.DynamoAPI.GetItem(ctx, in, opts...)
	c.requests.Add(1)
	if err == nil && out.Item != nil {
		c.items.Add(1)
	}
	return out, err
}

func (c *itemsRead) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.DynamoAPI.Query(ctx, in, opts...)
	c.requests.Add(1)
	if err == nil {
		c.items.Add(int64(len(out.Items)))
	}
	return out, err
}

func (c *itemsRead) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.DynamoAPI.Scan(ctx, in, opts...)
	c.requests.Add(1)
	if err == nil {
		c.items.Add(int64(len(out.Items)))
	}
	return out, err
}

// views answers the reconciler's questions from what the history says each execution did.
type views struct {
	final map[string]pipeline.State
	asked atomic.Int64
}

func (v *views) Execution(_ context.Context, k pipeline.Key) (pipeline.ExecutionView, error) {
	v.asked.Add(1)
	s, ok := v.final[k.ExecutionID]
	if !ok {
		return pipeline.ExecutionView{}, fmt.Errorf("execution %s: %w", k.ExecutionID, pipeline.ErrNotFound)
	}
	return pipeline.ExecutionView{State: s}, nil
}

// runEvents is one run of the seed pipeline's four stages, as its events tell it: 18 events,
// the run failing in its build when failed is set (then 15).
func runEvents(pl, exec string, start time.Time, failed bool) []pipeline.Event {
	var evs []pipeline.Event
	at := start
	add := func(lvl pipeline.Level, stage, action string, s pipeline.State) {
		evs = append(evs, pipeline.Event{ID: fmt.Sprintf("%s-%d", exec, len(evs)), Time: at, Level: lvl, Pipeline: pl, ExecutionID: exec,
			Stage: stage, Action: action, State: s, Attempt: 1,
			Trigger: pipeline.Trigger{Type: "StartPipelineExecution", Detail: "arn:aws:sts::111111111111:assumed-role/x/y"}})
		at = at.Add(20 * time.Second)
	}
	add(pipeline.LevelPipeline, "", "", pipeline.StateStarted)
	for _, st := range [][2]string{{"Source", "Source"}, {"CreateUpdatePipeline", "Deploy"}, {"BuildAndTest", "Build"}, {"CreateUpdateLambda", "DeployFunction"}} {
		add(pipeline.LevelStage, st[0], "", pipeline.StateStarted)
		add(pipeline.LevelAction, st[0], st[1], pipeline.StateStarted)
		if failed && st[0] == "BuildAndTest" {
			add(pipeline.LevelAction, st[0], st[1], pipeline.StateFailed)
			add(pipeline.LevelStage, st[0], "", pipeline.StateFailed)
			add(pipeline.LevelPipeline, "", "", pipeline.StateFailed)
			return evs
		}
		add(pipeline.LevelAction, st[0], st[1], pipeline.StateSucceeded)
		add(pipeline.LevelStage, st[0], "", pipeline.StateSucceeded)
	}
	add(pipeline.LevelPipeline, "", "", pipeline.StateSucceeded)
	return evs
}

// passCost is what one reconciler pass read from the table and asked CodePipeline.
type passCost struct{ requests, items, asked int64 }

// readsPerPass stores days of settled history of one pipeline (a run every two hours, one in
// five failing and the next one green again), then a run that ended 24 minutes before the
// pass and one that started 5 minutes before it, and returns what a reconciler pass read once
// the reconciler has been running (steady), and what the first pass over the pipeline, 10
// minutes earlier, read (first: it has no checkpoint yet).
func readsPerPass(t *testing.T, db runstore.DynamoAPI, table string, days int) (steady, first passCost) {
	t.Helper()
	ctx := context.Background()
	pl := fmt.Sprintf("history-%02dd", days)
	pass := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := harness.NewClock(pass)
	counter := &itemsRead{DynamoAPI: db}
	store := runstore.NewDynamo(counter, table, clock)
	v := &views{final: map[string]pipeline.State{}}
	record := func(exec string, start time.Time, failed, ends bool) {
		evs := runEvents(pl, exec, start, failed)
		if !ends {
			evs = evs[:4]
		}
		for _, ev := range evs {
			clock.Set(ev.Time.Add(2 * time.Second)) // recorded as it is delivered
			if _, err := store.Append(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if ev.EndsAttempt() {
				o := pipeline.Outcome{Pipeline: pl, ExecutionID: exec, Attempt: 1, Status: ev.State.Status(), At: ev.Time, Trigger: ev.Trigger}
				if _, err := store.AddOutcome(ctx, o, ev.Time); err != nil {
					t.Fatal(err)
				}
			}
		}
		v.final[exec] = evs[len(evs)-1].State
		if !ends {
			v.final[exec] = pipeline.StateStarted
		}
	}
	n := 0
	for start := pass.Add(-time.Duration(days) * 24 * time.Hour); start.Before(pass.Add(-2 * time.Hour)); start = start.Add(2 * time.Hour) {
		n++
		record(fmt.Sprintf("%08x-0000-4000-8000-%012x", days, n), start, n%5 == 0, true)
	}
	record(fmt.Sprintf("%08x-0000-4000-8000-%012x", days, n+1), pass.Add(-30*time.Minute), false, true)
	record(fmt.Sprintf("%08x-0000-4000-8000-%012x", days, n+2), pass.Add(-5*time.Minute), false, false)

	r := &reconcile.Reconciler{Runs: store, Executions: v, Recorder: store.Recorder(), Log: slog.New(slog.DiscardHandler), Clock: clock, PipelineName: pl}
	measure := func(at time.Time) passCost {
		t.Helper()
		clock.Set(at)
		r0, i0, a0 := counter.requests.Load(), counter.items.Load(), v.asked.Load()
		if _, err := r.Handle(ctx, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		return passCost{counter.requests.Load() - r0, counter.items.Load() - i0, v.asked.Load() - a0}
	}
	first = measure(pass.Add(-10 * time.Minute))
	return measure(pass), first
}

// TestReconcilerReadsDoNotGrowWithHistory (issue 9, defect 12 (a)): a pass reads what is
// open, what changed since the last pass and what may still change (the last hour's ends,
// failed runs CodePipeline may still retry), not every run of the lookback. The same current
// work over 1, 8 and 30 days of settled history costs the same reads.
func TestReconcilerReadsDoNotGrowWithHistory(t *testing.T) {
	db := dynalitetest.Start(t).Client(t)
	table := dynalitetest.CreateTable(t, db, runstore.TableInput(dynalitetest.UniqueTableName(t)))
	got := map[int]int64{}
	for _, days := range []int{1, 8, 30} {
		steady, first := readsPerPass(t, db, table, days)
		t.Logf("%2d days of history: a pass reads %d items in %d requests and asks CodePipeline about %d executions (the first pass: %d items, %d requests, %d executions)",
			days, steady.items, steady.requests, steady.asked, first.items, first.requests, first.asked)
		got[days] = steady.items
	}
	// The decisions of the last hour's ends walk back to where their failure streak began
	// (pipeline.OutcomeStore.AddOutcome), which depends on the runs just before, not on how
	// many there are: a few items either way.
	const streakWalk = 4
	if got[30] > got[1]+streakWalk || got[8] > got[1]+streakWalk {
		t.Errorf("items read per pass grow with history: %d (1 day), %d (8 days), %d (30 days)", got[1], got[8], got[30])
	}
}
