package pipeline

import (
	"slices"
	"testing"
	"time"
)

// decideAll replays a pipeline's decisive outcomes in the given order of learning, each decided
// on what was known then, and returns the messages, one per claim key, as "type#execution".
func decideAll(learnt []Outcome) []string {
	var known []Outcome
	sent := map[string]bool{}
	for _, o := range learnt {
		known = append(known, o)
		for _, n := range Decide(known, o, false) {
			sent[string(n.Type)+"#"+n.ExecutionID] = true
		}
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range sent {
			if !yield(k) {
				return
			}
		}
	})
}

// Issue 9, defect 8: two runs that end in the same second were ordered by their execution ids,
// so swapping two ids changed the messages. Now the start time orders them, and an exact tie
// puts the success first, whatever the ids.
func TestSameSecondEndsDoNotDependOnIDs(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	end := t0.Add(20 * time.Minute)
	green := Outcome{Pipeline: "app", ExecutionID: "e0", Attempt: 1, Status: StatusSucceeded, At: t0, Started: t0.Add(-5 * time.Minute)}
	tie := func(success, failure string, successStarted, failureStarted time.Time) []Outcome {
		return []Outcome{green,
			{Pipeline: "app", ExecutionID: success, Attempt: 1, Status: StatusSucceeded, At: end, Started: successStarted},
			{Pipeline: "app", ExecutionID: failure, Attempt: 1, Status: StatusFailed, At: end.Add(400 * time.Millisecond), Started: failureStarted}}
	}
	types := func(msgs []string) (failed, recovered int) {
		for _, m := range msgs {
			switch {
			case m[:len("failed")] == "failed":
				failed++
			case len(m) > len("recovered") && m[:len("recovered")] == "recovered":
				recovered++
			}
		}
		return failed, recovered
	}
	for _, c := range []struct {
		name                      string
		successStarted, failStart time.Time
		wantRecovered             int
	}{
		{"exact tie: the success counts first, the pipeline is red after it", t0.Add(time.Minute), t0.Add(time.Minute), 0},
		{"the success started later: it ran the newer revision", t0.Add(2 * time.Minute), t0.Add(time.Minute), 1},
		{"the failure started later", t0.Add(time.Minute), t0.Add(2 * time.Minute), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, ids := range [][2]string{{"e1", "e2"}, {"e2", "e1"}, {"zz", "aa"}} {
				h := tie(ids[0], ids[1], c.successStarted, c.failStart)
				for _, order := range [][]int{{0, 1, 2}, {0, 2, 1}, {2, 1, 0}, {1, 2, 0}} {
					learnt := []Outcome{h[order[0]], h[order[1]], h[order[2]]}
					failed, recovered := types(decideAll(learnt))
					if failed != 1 || recovered != c.wantRecovered {
						t.Errorf("ids %v, learnt in order %v: %d failed, %d recovered; want 1 failed, %d recovered",
							ids, order, failed, recovered, c.wantRecovered)
					}
				}
			}
		})
	}
}

func TestCompareOutcomesIsATotalOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var all []Outcome
	for i, id := range []string{"c", "a", "b"} {
		for _, st := range []Status{StatusSucceeded, StatusFailed} {
			for _, started := range []time.Time{{}, t0, t0.Add(time.Second)} {
				all = append(all, Outcome{Pipeline: "p", ExecutionID: id, Attempt: 1 + i%2, Status: st, At: t0.Add(time.Minute + time.Duration(i)*300*time.Millisecond), Started: started})
			}
		}
	}
	for _, a := range all {
		for _, b := range all {
			ab, ba := CompareOutcomes(a, b), CompareOutcomes(b, a)
			if (ab < 0) != (ba > 0) || (ab == 0) != (ba == 0) {
				t.Fatalf("not antisymmetric: %+v vs %+v: %d, %d", a, b, ab, ba)
			}
			for _, c := range all {
				if ab < 0 && CompareOutcomes(b, c) < 0 && CompareOutcomes(a, c) >= 0 {
					t.Fatalf("not transitive: %+v < %+v < %+v", a, b, c)
				}
			}
		}
	}
}
