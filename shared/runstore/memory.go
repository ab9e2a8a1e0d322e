// Package runstore keeps the facts of runs — the observations their events carried, the pushes
// that started them, pipeline outcomes and notification claims — in DynamoDB for the deployed
// control plane (Dynamo), in memory for `lp replay` and tests (Memory). It does not fold or
// decide: the use cases in shared/pipeline do, over either store alike.
package runstore

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Memory is an in-process store with the same contracts as Dynamo (the contract suite in
// contract_test.go runs against both). It is safe for concurrent use.
type Memory struct {
	mu        sync.Mutex
	runs      map[pipeline.Key]*memRun
	outcomes  map[string][]pipeline.Outcome
	recovered map[string]map[string]recovery // per pipeline: failed attempt → the success that recovers it
	recovers  map[string]map[string]string   // per pipeline: success → the failed attempt it recovers
	claims    map[string]claim
	notes     map[string]pipeline.Notification // queued notifications, by key
	stream    []events.DynamoDBEventRecord     // records the table's stream would pass the notifier
	seq       int
	clock     pipeline.Clock
	push      memPushes
	foreign   map[string]bool // pipelines of other accounts and regions (foreign.go)
	// The table's TTL, modelled (memttl.go): zero retention, nothing expires.
	retention time.Duration
	checks    map[string]pipeline.Checkpoint // the reconciler's, by pipeline
}

// memRun is one run's history.
type memRun struct {
	obs    map[string]pipeline.Event // by observation id
	push   pipeline.Commit
	folded *pipeline.Run // the fold of obs and push, until either changes
	// exp and pushExp are the items' expiresAt (memttl.go); zero: never.
	exp     map[string]time.Time
	pushExp time.Time
	// placed is where Dynamo's index has the run's latest pipeline-level observation or
	// push: the later of its time and when it was stored (Changed).
	placed time.Time
}

// fold returns the run's fold, computed once per change.
func (r *memRun) fold(k pipeline.Key) pipeline.Run {
	if r.folded == nil {
		run := r.history(k).Fold()
		r.folded = &run
	}
	return *r.folded
}

type claim struct {
	sent       bool
	leaseUntil time.Time
	attempts   int
	queued     bool      // queued by the outbox (MemoryOutbox), as Dynamo's Outbox does
	queuedAt   time.Time // when it was queued
	channels   map[string]bool
	failed     bool   // given up (pipeline.ClaimFailed)
	reason     string // the last attempt's error
	expires    time.Time
}

var (
	_ pipeline.RunStore     = (*Memory)(nil)
	_ pipeline.OutcomeStore = (*Memory)(nil)
	_ pipeline.Claims       = (*Memory)(nil)
)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{runs: map[pipeline.Key]*memRun{}, outcomes: map[string][]pipeline.Outcome{},
		recovered: map[string]map[string]recovery{}, recovers: map[string]map[string]string{}, claims: map[string]claim{},
		notes: map[string]pipeline.Notification{}}
}

func (m *Memory) run(k pipeline.Key) *memRun {
	r := m.runs[k]
	if r == nil {
		r = &memRun{obs: map[string]pipeline.Event{}, exp: map[string]time.Time{}}
		m.runs[k] = r
	}
	return r
}

// Append stores ev's observation unless it is stored already.
func (m *Memory) Append(_ context.Context, ev pipeline.Event) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.run(ev.Key())
	id := ev.ObservationID()
	if _, dup := r.obs[id]; dup {
		return true, nil
	}
	r.obs[id] = ev
	r.exp[id] = m.expiry(m.now())
	r.folded = nil
	if ev.Level == pipeline.LevelPipeline {
		r.placed = laterOf(r.placed, laterOf(ev.Time, m.now()))
	}
	return false, nil
}

// RecordPush stores what on-push learnt of the commit of an execution.
func (m *Memory) RecordPush(_ context.Context, k pipeline.Key, c pipeline.Commit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.run(k)
	r.push, r.pushExp, r.folded = c, m.expiry(m.now()), nil
	r.placed = laterOf(r.placed, laterOf(c.PushedAt, m.now()))
	return nil
}

// Load returns one run's history.
func (m *Memory) Load(_ context.Context, k pipeline.Key) (pipeline.History, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[k]
	if !ok {
		return pipeline.History{}, pipeline.ErrNotFound
	}
	return r.history(k), nil
}

func (r *memRun) history(k pipeline.Key) pipeline.History {
	h := pipeline.History{Key: k, Push: r.push, Events: make([]pipeline.Event, 0, len(r.obs))}
	for _, ev := range r.obs {
		h.Events = append(h.Events, ev)
	}
	return h
}

// Runs returns every run, folded, oldest first (by start, then pipeline and execution id).
func (m *Memory) Runs() []pipeline.Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]pipeline.Run, 0, len(m.runs))
	for k, r := range m.runs {
		out = append(out, r.fold(k))
	}
	slices.SortFunc(out, pipeline.CompareRuns)
	return out
}

// AddOutcome records o and returns every decisive outcome of its pipeline.
// Like Dynamo's, outcomes never expire (dynamo_outcomes.go).
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

// recovery is who holds the recovery of a failed attempt.
type recovery struct {
	by         string
	leaseUntil time.Time
}

// attemptKey names one attempt of one execution.
func attemptKey(o pipeline.Outcome) string { return o.ExecutionID + "#" + strconv.Itoa(o.Attempt) }

// Recover records that by recovers the failure streak, unless another success holds one of
// its failures (see Dynamo.Recover for the rules), and lets go of the failure by held before.
func (m *Memory) Recover(_ context.Context, streak []pipeline.Outcome, by string, now time.Time) (bool, error) {
	if len(streak) == 0 {
		return false, errors.New("recover: no failure")
	}
	p := streak[0].Pipeline
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recovered[p] == nil {
		m.recovered[p], m.recovers[p] = map[string]recovery{}, map[string]string{}
	}
	for _, f := range streak {
		have := m.recovered[p][attemptKey(f)]
		if have.by == "" || have.by == by {
			continue
		}
		held := pipeline.Notification{Type: pipeline.NotifyRecovered, Pipeline: p, ExecutionID: have.by}
		if _, queued := m.claims[held.Key()]; queued || !now.After(have.leaseUntil) {
			return false, nil
		}
	}
	newest := attemptKey(streak[len(streak)-1])
	if m.recovered[p][newest].by != by {
		m.recovered[p][newest] = recovery{by: by, leaseUntil: now.Add(pipeline.RecoveryLease)}
	}
	if old, ok := m.recovers[p][by]; ok && old != newest && m.recovered[p][old].by == by {
		delete(m.recovered[p], old)
	}
	m.recovers[p][by] = newest
	return true, nil
}

// HasOutcomes reports whether the pipeline has a decisive outcome.
func (m *Memory) HasOutcomes(_ context.Context, p string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.outcomes[p]) > 0, nil
}

// Claim reserves n unless it was sent or given up, or another holder's lease is running. An
// approval's first Claim queues it, as Dynamo's does.
func (m *Memory) Claim(_ context.Context, n pipeline.Notification, now time.Time, lease time.Duration) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.claims[n.Key()]
	if ok && (c.sent || c.failed || now.Before(c.leaseUntil)) {
		return 0, nil
	}
	if queuedByClaim(n) {
		if !c.queued {
			c.queued, c.queuedAt = true, now
		}
		if c.channels == nil {
			c.channels = map[string]bool{}
		}
		m.notes[n.Key()] = n
	}
	c.leaseUntil = now.Add(lease)
	c.attempts++
	c.expires = m.expiry(now)
	m.claims[n.Key()] = c
	return c.attempts, nil
}

// Sent marks n delivered.
func (m *Memory) Sent(_ context.Context, n pipeline.Notification, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.claims[n.Key()]
	c.sent, c.leaseUntil = true, time.Time{}
	m.claims[n.Key()] = c
	return nil
}

// Release ends a failed attempt on a pending claim (see pipeline.Claims).
func (m *Memory) Release(_ context.Context, n pipeline.Notification, r pipeline.Retry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.claims[n.Key()]
	if !ok || c.sent || c.failed {
		return nil
	}
	if c.channels == nil {
		c.channels = map[string]bool{}
	}
	for _, ch := range r.Delivered {
		c.channels[ch] = true
	}
	c.leaseUntil, c.reason = r.RetryAt, r.Reason
	if r.GiveUp {
		c.failed, c.leaseUntil = true, time.Time{}
	}
	m.claims[n.Key()] = c
	return nil
}
