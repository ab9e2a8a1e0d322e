package pipeline

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func fold(events []Event) Run {
	var run Run
	for _, ev := range events {
		run, _ = Apply(run, ev)
	}
	return run
}

type recorded struct {
	name   string
	events []Event
	status Status
	stages map[string]Status
}

func recordedSequences() []recorded {
	return []recorded{
		{"success", succeeded("p", "e-01", t0), StatusSucceeded,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded, "BuildAndTest": StatusSucceeded, "CreateUpdateLambda": StatusSucceeded}},
		{"fails in Source", failedAt("p", "e-02", t0, 0), StatusFailed, map[string]Status{"Source": StatusFailed}},
		{"fails in CreateUpdatePipeline", failedAt("p", "e-03", t0, 1), StatusFailed,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusFailed}},
		{"fails in BuildAndTest", failedAt("p", "e-04", t0, 2), StatusFailed,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded, "BuildAndTest": StatusFailed}},
		{"fails in CreateUpdateLambda", failedAt("p", "e-05", t0, 3), StatusFailed,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded, "BuildAndTest": StatusSucceeded, "CreateUpdateLambda": StatusFailed}},
		{"superseded", superseded("p", "e-06", t0), StatusSuperseded, map[string]Status{"Source": StatusSucceeded}},
		{"stopped", stopped("p", "e-07", t0), StatusStopped,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded, "BuildAndTest": StatusStopped}},
		{"canceled by self-update", canceled("p", "e-08", t0), StatusCanceled,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded}},
		{"fails, FAILED event without trigger (AWS's documented shape)", dropTerminalTrigger(failedAt("p", "e-16", t0, 2)), StatusFailed,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded, "BuildAndTest": StatusFailed}},
		{"retried and passed", retried("p", "e-09", t0), StatusSucceeded,
			map[string]Status{"Source": StatusSucceeded, "CreateUpdatePipeline": StatusSucceeded, "BuildAndTest": StatusSucceeded, "CreateUpdateLambda": StatusSucceeded}},
	}
}

func dropTerminalTrigger(events []Event) []Event {
	out := append([]Event(nil), events...)
	for i, ev := range out {
		if ev.Level == LevelPipeline && ev.State.Status().Terminal() {
			out[i].Trigger = Trigger{}
		}
	}
	return out
}

func stageStatuses(r Run) map[string]Status {
	out := map[string]Status{}
	for name, st := range r.Stages {
		out[name] = st.Status
	}
	return out
}

func TestFoldInOrder(t *testing.T) {
	for _, seq := range recordedSequences() {
		t.Run(seq.name, func(t *testing.T) {
			run := fold(seq.events)
			assert.Equal(t, seq.status, run.Status)
			assert.Equal(t, seq.stages, stageStatuses(run))
			assert.Equal(t, seq.events[0].Time, run.StartedAt)
			if run.Status.Terminal() {
				assert.Equal(t, seq.events[len(seq.events)-1].Time, run.EndedAt)
			}
			if _, ok := run.Stages["Source"]; ok && run.Stages["Source"].Status == StatusSucceeded {
				assert.NotEmpty(t, run.Commit.ID, "commit id from the Source action")
				assert.Equal(t, "Fix the thing", run.Commit.Message)
			}
		})
	}
}

func TestFoldSameEventTwiceChangesNothing(t *testing.T) {
	for _, seq := range recordedSequences() {
		run := fold(seq.events)
		for _, ev := range seq.events {
			again, effects := Apply(run, ev)
			require.Equal(t, run, again, "%s: event %s applied twice", seq.name, ev.ID)
			require.Len(t, effects, 1)
			require.IsType(t, Ignored{}, effects[0])
		}
	}
}

// shuffleWithDuplicates returns the events in random order, with about a fifth of them twice.
func shuffleWithDuplicates(rng *rand.Rand, events []Event) []Event {
	out := append([]Event(nil), events...)
	for _, ev := range events {
		if rng.IntN(5) == 0 {
			out = append(out, ev)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestFoldAnyOrderSameRecord is the property the run record rests on: for each recorded
// sequence, random permutations with duplicates end in exactly the in-order record.
func TestFoldAnyOrderSameRecord(t *testing.T) {
	const trials = 10_000
	rng := rand.New(rand.NewPCG(1, 2))
	seqs := recordedSequences()
	want := make([]Run, len(seqs))
	for i, s := range seqs {
		want[i] = fold(s.events)
	}
	for trial := 0; trial < trials; trial++ {
		i := trial % len(seqs)
		got := fold(shuffleWithDuplicates(rng, seqs[i].events))
		if !assert.Equal(t, want[i], got, "%s, trial %d", seqs[i].name, trial) {
			return
		}
	}
}

func TestFoldEndedEffectOncePerAttempt(t *testing.T) {
	events := retried("p", "e-10", t0)
	var run Run
	var ended []Outcome
	for _, ev := range append(events, events...) {
		var effects []Effect
		run, effects = Apply(run, ev)
		for _, e := range effects {
			if x, ok := e.(Ended); ok {
				ended = append(ended, x.Outcome)
			}
		}
	}
	require.Len(t, ended, 2)
	assert.Equal(t, StatusFailed, ended[0].Status)
	assert.Equal(t, 1, ended[0].Attempt)
	assert.Equal(t, StatusSucceeded, ended[1].Status)
	assert.Equal(t, 2, ended[1].Attempt)
	assert.Equal(t, run.Outcomes, ended)
}

func TestTerminalNotReplacedByLateNonTerminal(t *testing.T) {
	events := failedAt("p", "e-11", t0, 2)
	run := fold(events)
	// A late STARTED for the failed stage, with a later time than the FAILED.
	late := events[len(events)-2]
	require.Equal(t, LevelStage, late.Level)
	late.State, late.ID, late.Time = StateStarted, "late", late.Time.Add(time.Minute)
	next, effects := Apply(run, late)
	assert.Equal(t, StatusFailed, next.Stages["BuildAndTest"].Status)
	assert.Equal(t, []Effect{Ignored{Reason: ReasonStale}}, effects)
}

func TestFailureLocatesStageAndAction(t *testing.T) {
	f := fold(failedAt("p", "e-12", t0, 2)).Failure()
	assert.Equal(t, "BuildAndTest", f.Stage)
	assert.Equal(t, "Build", f.Action)
	assert.Equal(t, "JobFailed", f.Result.ErrorCode)
	art, ok := fold(failedAt("p", "e-12", t0, 2)).Artifact(ArtifactBuildOutput)
	require.True(t, ok)
	assert.Equal(t, "e-12/out.zip", art.Key)

	// A stage event that never came: the failed action still tells where.
	events := failedAt("p", "e-13", t0, 3)
	var kept []Event
	for _, ev := range events {
		if !(ev.Level == LevelStage && ev.State == StateFailed) {
			kept = append(kept, ev)
		}
	}
	f = fold(kept).Failure()
	assert.Equal(t, "CreateUpdateLambda", f.Stage)
	assert.Equal(t, "DeployFunction", f.Action)

	assert.Equal(t, Failure{}, fold(succeeded("p", "e-14", t0)).Failure())
}

func TestWithPushWinsOverSourceSummary(t *testing.T) {
	run := fold(succeeded("p", "e-15", t0))
	run = WithPush(run, Commit{ID: run.Commit.ID, Message: "Fix the thing\n\nLonger body", Author: "Ana <ana@example.com>", PushedAt: t0})
	assert.Equal(t, "Ana <ana@example.com>", run.Commit.Author)
	assert.Equal(t, "Fix the thing\n\nLonger body", run.Commit.Message)
	// Events after the push do not undo it.
	run, _ = Apply(run, succeeded("p", "e-15", t0)[3])
	assert.Equal(t, "Ana <ana@example.com>", run.Commit.Author)
}

func FuzzFoldOrder(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint8(0))
	f.Add(uint64(7), uint64(9), uint8(8))
	f.Fuzz(func(t *testing.T, a, b uint64, which uint8) {
		seqs := recordedSequences()
		seq := seqs[int(which)%len(seqs)]
		rng := rand.New(rand.NewPCG(a, b))
		want := fold(seq.events)
		got := fold(shuffleWithDuplicates(rng, seq.events))
		if !assert.ObjectsAreEqual(want, got) {
			t.Fatalf("%s: shuffled fold differs", seq.name)
		}
	})
}
