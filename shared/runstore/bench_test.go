package runstore

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkDynamoRecord appends a whole execution's events against dynalite and reports the
// DynamoDB requests each event cost (target: 1 write, 0 reads).
func BenchmarkDynamoRecord(b *testing.B) {
	events := scenario(b, "success")
	store := newDynamo(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := events[i%len(events)]
		ev.ExecutionID = fmt.Sprintf("%s-%d", ev.ExecutionID, i/len(events))
		if _, err := store.Append(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	writes, reads := requests(store)
	b.ReportMetric(float64(writes)/float64(b.N), "writes/event")
	b.ReportMetric(float64(reads)/float64(b.N), "reads/event")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMemoryRecord is the same through the in-memory store.
func BenchmarkMemoryRecord(b *testing.B) {
	events := scenario(b, "success")
	store := NewMemory()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ev := events[i%len(events)]
		ev.ExecutionID = fmt.Sprintf("%s-%d", ev.ExecutionID, i/len(events))
		if _, err := store.Append(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
