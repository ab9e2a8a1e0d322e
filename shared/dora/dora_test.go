package dora

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// t0 is a Monday, midnight UTC; every history below is placed from it.
var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time { return t0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }

const pl = "shop-pipeline"

// runOf builds a run record as the fold leaves it: started, ended in status, with the stages it
// reached and one outcome per attempt (attempts lists the earlier attempts' statuses and ends).
func runOf(id, commit string, start, end time.Time, status pipeline.Status, stages ...string) pipeline.Run {
	r := pipeline.Run{Pipeline: pl, ExecutionID: id, StartedAt: start, EndedAt: end,
		Progress: pipeline.Progress{Status: status, Attempt: 1, At: end},
		Commit:   pipeline.Commit{ID: commit}, Stages: map[string]pipeline.Stage{}}
	for _, s := range stages {
		r.Stages[s] = pipeline.Stage{Name: s}
	}
	r.Outcomes = []pipeline.Outcome{{Pipeline: pl, ExecutionID: id, Attempt: 1, Status: status, At: end}}
	return r
}

var all = []string{"Source", "CreateUpdatePipeline", "BuildAndTest", "CreateUpdateLambda"}
var toBuild = []string{"Source", "CreateUpdatePipeline", "BuildAndTest"}

func pushed(r pipeline.Run, t time.Time) pipeline.Run { r.Commit.PushedAt = t; return r }

func day(w time.Time) Window { return Window{Since: w, Until: w.Add(24 * time.Hour)} }

func TestSummarize(t *testing.T) {
	assert.Equal(t, Durations{}, Summarize(nil))
	assert.Equal(t, Durations{Count: 1, Median: time.Minute, Mean: time.Minute}, Summarize([]time.Duration{time.Minute}))
	// Odd: the middle one. Even: the mean of the two middle ones.
	assert.Equal(t, Durations{Count: 3, Median: 2 * time.Minute, Mean: 5 * time.Minute},
		Summarize([]time.Duration{12 * time.Minute, time.Minute, 2 * time.Minute}))
	assert.Equal(t, Durations{Count: 4, Median: 75 * time.Minute, Mean: 87*time.Minute + 30*time.Second},
		Summarize([]time.Duration{190 * time.Minute, 10 * time.Minute, 130 * time.Minute, 20 * time.Minute}))
}

// A green deploy, two failures in a row, then a fix.
//
//	A pushed 00:50, 01:00–01:10 SUCCEEDED (deploy)
//	B pushed 02:00, 02:00–02:10 FAILED in BuildAndTest
//	C pushed 03:00, 03:00–03:10 FAILED in BuildAndTest
//	D pushed 05:00, 05:00–05:10 SUCCEEDED (deploy; delivers B, C and D)
func TestStreak(t *testing.T) {
	runs := []pipeline.Run{
		pushed(runOf("d", "dddd", at(5, 0), at(5, 10), pipeline.StatusSucceeded, all...), at(5, 0)),
		pushed(runOf("a", "aaaa", at(1, 0), at(1, 10), pipeline.StatusSucceeded, all...), at(0, 50)),
		pushed(runOf("b", "bbbb", at(2, 0), at(2, 10), pipeline.StatusFailed, toBuild...), at(2, 0)),
		pushed(runOf("c", "cccc", at(3, 0), at(3, 10), pipeline.StatusFailed, toBuild...), at(3, 0)),
	}
	k := ComputePipeline(runs, pl, day(t0), DefaultRule())

	assert.Equal(t, 2, k.Deployments)
	assert.InDelta(t, 2.0, k.DeploymentsPerDay, 1e-9)
	// Lead times: A 20m, B 3h10m, C 2h10m, D 10m → median (20m+2h10m)/2, mean 350m/4.
	assert.Equal(t, []Change{
		{CommitID: "aaaa", ExecutionID: "a", CommittedAt: at(0, 50), DeployedAt: at(1, 10), DeployedBy: "a"},
		{CommitID: "bbbb", ExecutionID: "b", CommittedAt: at(2, 0), DeployedAt: at(5, 10), DeployedBy: "d"},
		{CommitID: "cccc", ExecutionID: "c", CommittedAt: at(3, 0), DeployedAt: at(5, 10), DeployedBy: "d"},
		{CommitID: "dddd", ExecutionID: "d", CommittedAt: at(5, 0), DeployedAt: at(5, 10), DeployedBy: "d"},
	}, k.Changes)
	assert.Equal(t, Durations{Count: 4, Median: 75 * time.Minute, Mean: 87*time.Minute + 30*time.Second}, k.LeadTime)

	assert.Equal(t, 4, k.DecisiveRuns)
	assert.Equal(t, 2, k.FailedRuns)
	assert.InDelta(t, 0.5, k.ChangeFailureRate, 1e-9)

	// One streak: from B's end to D's end.
	assert.Equal(t, []Restore{{BrokenSince: at(2, 10), FirstFailed: "b", Failures: 2, RestoredAt: at(5, 10), RestoredBy: "d"}}, k.Restores)
	assert.Equal(t, Durations{Count: 1, Median: 3 * time.Hour, Mean: 3 * time.Hour}, k.TimeToRestore)
	assert.Nil(t, k.BrokenSince)

	assert.Equal(t, []Day{{Start: t0, Deployments: 2, Failures: 2}}, k.Daily)
}

// A change's lead time starts when it was committed (the committer date on-push looks up),
// not when it was pushed: a commit made at 00:20 and pushed at 00:50 waited 30 minutes on a
// machine first. A commit dated after its push (a clock ahead) counts from the push, and a
// run with no push recorded from its start.
func TestLeadTimeStartsAtTheCommit(t *testing.T) {
	a := pushed(runOf("a", "aaaa", at(1, 0), at(1, 10), pipeline.StatusSucceeded, all...), at(0, 50))
	a.Commit.CommittedAt = at(0, 20)
	b := pushed(runOf("b", "bbbb", at(2, 0), at(2, 10), pipeline.StatusSucceeded, all...), at(1, 55))
	b.Commit.CommittedAt = at(3, 0) // the committer's clock was ahead
	c := runOf("c", "cccc", at(4, 0), at(4, 10), pipeline.StatusSucceeded, all...)
	k := ComputePipeline([]pipeline.Run{a, b, c}, pl, day(t0), DefaultRule())
	assert.Equal(t, []Change{
		{CommitID: "aaaa", ExecutionID: "a", CommittedAt: at(0, 20), DeployedAt: at(1, 10), DeployedBy: "a"},
		{CommitID: "bbbb", ExecutionID: "b", CommittedAt: at(1, 55), DeployedAt: at(2, 10), DeployedBy: "b"},
		{CommitID: "cccc", ExecutionID: "c", CommittedAt: at(4, 0), DeployedAt: at(4, 10), DeployedBy: "c"},
	}, k.Changes)
	assert.Equal(t, Durations{Count: 3, Median: 15 * time.Minute, Mean: 25 * time.Minute}, k.LeadTime) // 50m, 15m, 10m
}

// A run whose attempt 1 failed in CreateUpdateLambda and whose stage retry (attempt 2)
// succeeded counts once, as a success and a deploy; the failed attempt still opens a streak
// that the retry closes.
func TestRetriedToGreen(t *testing.T) {
	r := runOf("r", "rrrr", at(1, 0), at(3, 0), pipeline.StatusSucceeded, all...)
	r.Attempt = 2
	r.Outcomes = []pipeline.Outcome{
		{Pipeline: pl, ExecutionID: "r", Attempt: 2, Status: pipeline.StatusSucceeded, At: at(3, 0)},
		{Pipeline: pl, ExecutionID: "r", Attempt: 1, Status: pipeline.StatusFailed, At: at(1, 20)},
	}
	k := ComputePipeline([]pipeline.Run{r}, pl, day(t0), DefaultRule())

	assert.Equal(t, 1, k.Deployments)
	assert.Equal(t, 1, k.DecisiveRuns)
	assert.Equal(t, 0, k.FailedRuns)
	assert.True(t, k.HasChangeFailureRate())
	assert.Zero(t, k.ChangeFailureRate)
	assert.Equal(t, Durations{Count: 1, Median: 2 * time.Hour, Mean: 2 * time.Hour}, k.LeadTime)
	assert.Equal(t, []Restore{{BrokenSince: at(1, 20), FirstFailed: "r", Failures: 1, RestoredAt: at(3, 0), RestoredBy: "r"}}, k.Restores)
	assert.Equal(t, []Day{{Start: t0, Deployments: 1, Failures: 0}}, k.Daily)
}

// Superseded, stopped and cancelled runs neither count as decisive nor break a streak, and a
// deploy that passed the deploy stage is not one unless the run SUCCEEDED. Their commits are
// changes the next deploy delivers.
//
//	f  01:00–01:10 FAILED
//	s  02:00–02:05 SUPERSEDED by g (commit ssss)
//	x  02:30–02:40 STOPPED after CreateUpdateLambda started (commit xxxx)
//	c  02:50–02:55 CANCELED by a self-update
//	g  02:03–03:10 SUCCEEDED (deploy)
func TestSupersededStoppedCancelled(t *testing.T) {
	runs := []pipeline.Run{
		runOf("f", "ffff", at(1, 0), at(1, 10), pipeline.StatusFailed, toBuild...),
		runOf("s", "ssss", at(2, 0), at(2, 5), pipeline.StatusSuperseded, "Source"),
		runOf("g", "gggg", at(2, 3), at(3, 10), pipeline.StatusSucceeded, all...),
		runOf("x", "xxxx", at(2, 30), at(2, 40), pipeline.StatusStopped, all...),
		runOf("c", "cccc", at(2, 50), at(2, 55), pipeline.StatusCanceled, "Source", "CreateUpdatePipeline"),
	}
	k := ComputePipeline(runs, pl, day(t0), DefaultRule())

	assert.Equal(t, 1, k.Deployments, "only g deployed; x was stopped in the deploy stage")
	assert.Equal(t, 2, k.DecisiveRuns)
	assert.Equal(t, 1, k.FailedRuns)
	assert.InDelta(t, 0.5, k.ChangeFailureRate, 1e-9)
	// One streak from f to g: the superseded, stopped and cancelled runs in between say nothing.
	assert.Equal(t, []Restore{{BrokenSince: at(1, 10), FirstFailed: "f", Failures: 1, RestoredAt: at(3, 10), RestoredBy: "g"}}, k.Restores)
	// f and s started before g: g delivers them. x and c started after g: nothing delivered them.
	var delivered []string
	for _, c := range k.Changes {
		assert.Equal(t, "g", c.DeployedBy)
		delivered = append(delivered, c.CommitID)
	}
	assert.Equal(t, []string{"ffff", "ssss", "gggg"}, delivered)
	// f 2h10m, s 1h10m, g 1h7m.
	assert.Equal(t, 70*time.Minute, k.LeadTime.Median)
}

// A failure streak that begins before the window and ends in it counts in the window of its
// end, measured in full; the window before it ends broken.
//
//	f  day 0, 21:50–22:00 FAILED
//	g  day 1, 01:50–02:00 SUCCEEDED (deploy)
func TestWindowCutsStreak(t *testing.T) {
	runs := []pipeline.Run{
		pushed(runOf("f", "ffff", at(21, 50), at(22, 0), pipeline.StatusFailed, toBuild...), at(21, 50)),
		pushed(runOf("g", "gggg", at(25, 50), at(26, 0), pipeline.StatusSucceeded, all...), at(25, 50)),
	}
	w := day(at(24, 0))
	k := ComputePipeline(runs, pl, w, DefaultRule())

	assert.Equal(t, 1, k.Deployments)
	assert.Equal(t, 1, k.DecisiveRuns, "f ended before the window")
	assert.Zero(t, k.FailedRuns)
	assert.Equal(t, []Restore{{BrokenSince: at(22, 0), FirstFailed: "f", Failures: 1, RestoredAt: at(26, 0), RestoredBy: "g"}}, k.Restores)
	assert.Equal(t, 4*time.Hour, k.TimeToRestore.Median)
	// f's commit was pushed before the window and delivered in it: 4h10m; g's own 10m.
	assert.Equal(t, Durations{Count: 2, Median: 2*time.Hour + 10*time.Minute, Mean: 2*time.Hour + 10*time.Minute}, k.LeadTime)

	prev := ComputePipeline(runs, pl, w.Previous(), DefaultRule())
	assert.Equal(t, day(t0), prev.Window)
	assert.Zero(t, prev.Deployments)
	assert.Equal(t, 1, prev.FailedRuns)
	assert.InDelta(t, 1.0, prev.ChangeFailureRate, 1e-9)
	assert.Empty(t, prev.Restores)
	assert.Zero(t, prev.TimeToRestore.Count)
	require.NotNil(t, prev.BrokenSince, "the previous window ends broken")
	assert.Equal(t, at(22, 0), *prev.BrokenSince)
	assert.Empty(t, prev.Changes, "f's commit was delivered after the window")
}

func TestNoDeploys(t *testing.T) {
	t.Run("no runs", func(t *testing.T) {
		assert.Empty(t, Compute(nil, day(t0), DefaultRule()))
		k := ComputePipeline(nil, pl, day(t0), DefaultRule())
		assert.Zero(t, k.Deployments)
		assert.Zero(t, k.DeploymentsPerDay)
		assert.False(t, k.HasChangeFailureRate())
		assert.Zero(t, k.LeadTime.Count)
		assert.Zero(t, k.TimeToRestore.Count)
		assert.Equal(t, []Day{{Start: t0}}, k.Daily)
	})
	t.Run("only failures and a run in progress", func(t *testing.T) {
		going := runOf("p", "pppp", at(9, 0), time.Time{}, pipeline.StatusInProgress, "Source")
		going.Outcomes = nil
		runs := []pipeline.Run{
			runOf("a", "aaaa", at(1, 0), at(1, 10), pipeline.StatusFailed, toBuild...),
			runOf("b", "bbbb", at(2, 0), at(2, 10), pipeline.StatusFailed, all...),
			going,
		}
		ks := Compute(runs, day(t0), DefaultRule())
		require.Len(t, ks, 1)
		k := ks[0]
		assert.Zero(t, k.Deployments)
		assert.Empty(t, k.Changes)
		assert.Zero(t, k.LeadTime.Count)
		assert.Equal(t, 2, k.DecisiveRuns)
		assert.InDelta(t, 1.0, k.ChangeFailureRate, 1e-9)
		assert.Empty(t, k.Restores)
		require.NotNil(t, k.BrokenSince)
		assert.Equal(t, at(1, 10), *k.BrokenSince)
	})
	t.Run("successes that never reach the deploy stage", func(t *testing.T) {
		runs := []pipeline.Run{runOf("a", "aaaa", at(1, 0), at(1, 10), pipeline.StatusSucceeded, toBuild...)}
		k := ComputePipeline(runs, pl, day(t0), DefaultRule())
		assert.Zero(t, k.Deployments)
		assert.Equal(t, 1, k.DecisiveRuns)
		// With a rule that names another stage, the same run is a deploy.
		k = ComputePipeline(runs, pl, day(t0), Rule{DeployStage: "BuildAndTest"})
		assert.Equal(t, 1, k.Deployments)
	})
}

// Runs without recorded outcomes (older records) are judged by their own status, and a run
// counts in the window of its end, with a day per 24 hours from the window's start.
func TestDailyAndOutcomeFallback(t *testing.T) {
	var runs []pipeline.Run
	for i, d := range []int{0, 0, 2} {
		r := runOf(string(rune('a'+i)), "", at(24*d+1, 0), at(24*d+1, 10), pipeline.StatusSucceeded, all...)
		r.Outcomes = nil
		runs = append(runs, r)
	}
	f := runOf("f", "", at(24+5, 0), at(24+5, 10), pipeline.StatusFailed, toBuild...)
	f.Outcomes = nil
	runs = append(runs, f)
	w := Window{Since: t0, Until: at(60, 0)} // two and a half days
	k := ComputePipeline(runs, pl, w, DefaultRule())
	assert.Equal(t, []Day{
		{Start: t0, Deployments: 2},
		{Start: at(24, 0), Failures: 1},
		{Start: at(48, 0), Deployments: 1},
	}, k.Daily)
	assert.InDelta(t, 3/2.5, k.DeploymentsPerDay, 1e-9)
	assert.Empty(t, k.Changes, "no commit recorded, no change")
	assert.Equal(t, []Restore{{BrokenSince: at(29, 10), FirstFailed: "f", Failures: 1, RestoredAt: at(49, 10), RestoredBy: "c"}}, k.Restores)
}

func TestComputeGroupsByPipeline(t *testing.T) {
	a := runOf("a", "aaaa", at(1, 0), at(1, 10), pipeline.StatusSucceeded, all...)
	b := runOf("b", "bbbb", at(2, 0), at(2, 10), pipeline.StatusFailed, toBuild...)
	b.Pipeline = "api-pipeline"
	ks := Compute([]pipeline.Run{a, b}, day(t0), DefaultRule())
	require.Len(t, ks, 2)
	assert.Equal(t, "api-pipeline", ks[0].Pipeline)
	assert.Equal(t, 0, ks[0].Deployments)
	assert.Equal(t, 1, ks[0].FailedRuns)
	assert.Equal(t, pl, ks[1].Pipeline)
	assert.Equal(t, 1, ks[1].Deployments)
	assert.Zero(t, ks[1].FailedRuns, "b's failure belongs to the other pipeline")
}
