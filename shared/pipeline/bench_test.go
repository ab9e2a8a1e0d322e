package pipeline

import (
	"testing"
	"time"
)

// BenchmarkApply measures the pure fold: one event into a run that holds a whole execution.
func BenchmarkApply(b *testing.B) {
	events := failedAt("p", "e-bench", t0, 3)
	b.ReportAllocs()
	b.ResetTimer()
	var run Run
	for i := 0; i < b.N; i++ {
		if i%len(events) == 0 {
			run = Run{}
		}
		run, _ = Apply(run, events[i%len(events)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecide measures a notification decision over a 50-outcome history.
func BenchmarkDecide(b *testing.B) {
	var h []Outcome
	for i := 0; i < 50; i++ {
		s := StatusFailed
		if i%3 == 0 {
			s = StatusSucceeded
		}
		h = append(h, Outcome{Pipeline: "p", ExecutionID: string(rune('a' + i%26)), Attempt: 1 + i/26, Status: s, At: t0.Add(time.Duration(i) * time.Minute)})
	}
	o := Outcome{Pipeline: "p", ExecutionID: "z", Attempt: 1, Status: StatusSucceeded, At: t0.Add(time.Hour)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Decide(h, o, false)
	}
}
