// Package runstore keeps run records, pipeline outcomes and notification claims: in DynamoDB
// for the deployed control plane (Dynamo), in memory for `lp replay` and tests (Memory).
package runstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Memory is an in-process store with the same semantics as Dynamo. It is safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	runs     map[pipeline.Key]pipeline.Run
	outcomes map[string][]pipeline.Outcome
	claims   map[string]claim
	push     memPushes
	stats    Stats
}

type claim struct {
	sent       bool
	leaseUntil time.Time
}

// Stats counts what the store refused or did, for logs and benchmarks.
type Stats struct {
	Recorded   int64 // events that changed a record
	Duplicates int64 // events already recorded
	Stale      int64 // events outranked by what was recorded
}

var (
	_ pipeline.RunStore     = (*Memory)(nil)
	_ pipeline.OutcomeStore = (*Memory)(nil)
	_ pipeline.Claims       = (*Memory)(nil)
)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{runs: map[pipeline.Key]pipeline.Run{}, outcomes: map[string][]pipeline.Outcome{}, claims: map[string]claim{}}
}

// Record folds ev into its run.
func (m *Memory) Record(_ context.Context, ev pipeline.Event, now time.Time) (pipeline.Run, []pipeline.Effect, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := pipeline.Key{Pipeline: ev.Pipeline, ExecutionID: ev.ExecutionID}
	run, effects := pipeline.Apply(m.runs[k], ev, now)
	m.runs[k] = run
	m.stats.count(effects)
	return run, effects, nil
}

// RecordPush stores what on-push learnt of the commit of an execution.
func (m *Memory) RecordPush(_ context.Context, k pipeline.Key, c pipeline.Commit, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	run := m.runs[k]
	run.Pipeline, run.ExecutionID = k.Pipeline, k.ExecutionID
	m.runs[k] = pipeline.WithPush(run, c)
	return nil
}

// Get returns one run.
func (m *Memory) Get(_ context.Context, k pipeline.Key) (pipeline.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	run, ok := m.runs[k]
	if !ok {
		return pipeline.Run{}, pipeline.ErrNotFound
	}
	return run, nil
}

// Runs returns every run, oldest first (by start, then pipeline and execution id).
func (m *Memory) Runs() []pipeline.Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]pipeline.Run, 0, len(m.runs))
	for _, r := range m.runs {
		out = append(out, r)
	}
	slices.SortFunc(out, pipeline.CompareRuns)
	return out
}

// AddOutcome records o and returns every decisive outcome of its pipeline.
func (m *Memory) AddOutcome(_ context.Context, o pipeline.Outcome, _ time.Time) ([]pipeline.Outcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.outcomes[o.Pipeline]
	if !slices.ContainsFunc(list, func(x pipeline.Outcome) bool { return x.ExecutionID == o.ExecutionID && x.Attempt == o.Attempt }) {
		list = append(list, o)
		m.outcomes[o.Pipeline] = list
	}
	return slices.Clone(list), nil
}

// HasOutcomes reports whether the pipeline has a decisive outcome.
func (m *Memory) HasOutcomes(_ context.Context, p string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outcomes[p]) > 0, nil
}

// Claim reserves n unless it was sent or another holder's lease is running.
func (m *Memory) Claim(_ context.Context, n pipeline.Notification, now time.Time, lease time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.claims[n.Key()]
	if ok && (c.sent || now.Before(c.leaseUntil)) {
		return false, nil
	}
	m.claims[n.Key()] = claim{leaseUntil: now.Add(lease)}
	return true, nil
}

// Sent marks n delivered.
func (m *Memory) Sent(_ context.Context, n pipeline.Notification, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims[n.Key()] = claim{sent: true}
	return nil
}

// Release frees a pending claim.
func (m *Memory) Release(_ context.Context, n pipeline.Notification) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.claims[n.Key()]; !c.sent {
		delete(m.claims, n.Key())
	}
	return nil
}

// Stats returns the counters.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

func (s *Stats) count(effects []pipeline.Effect) {
	for _, e := range effects {
		if ig, ok := e.(pipeline.Ignored); ok {
			if ig.Reason == pipeline.ReasonDuplicate {
				s.Duplicates++
			} else {
				s.Stale++
			}
			return
		}
	}
	s.Recorded++
}
