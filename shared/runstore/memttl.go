package runstore

import (
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// The table's time to live, modelled in Memory. Dynamo stamps every item it writes with
// expiresAt (now + retention) and DynamoDB deletes the item some time after that passes
// (docs/aws-behaviour.md, DynamoDB). Given a retention (WithRetention) and a clock, Memory
// stamps the same items at the same writes, and ExpireTTL deletes what TTL would have deleted
// by then, so that the simulation and the store contract can run histories longer than the
// retention. Without a retention nothing expires (lp replay, most tests).

// WithRetention makes m model the table's TTL: items written from now on expire retention
// after their write, by m's clock (WithClock), and ExpireTTL removes them.
func (m *Memory) WithRetention(retention time.Duration) *Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retention = retention
	return m
}

// expiry is the expiresAt of an item written at t; zero (never) without a retention.
func (m *Memory) expiry(t time.Time) time.Time {
	if m.retention <= 0 || t.IsZero() {
		return time.Time{}
	}
	return t.Add(m.retention)
}

func expired(exp, now time.Time) bool { return !exp.IsZero() && exp.Before(now) }

// ExpireTTL deletes the items whose expiresAt passed by now, as DynamoDB's TTL does in the
// background, and returns how many it deleted. A run whose every item expired is forgotten;
// the pipelines' outcomes stay, as they carry no TTL.
func (m *Memory) ExpireTTL(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, r := range m.runs {
		for id, exp := range r.exp {
			if expired(exp, now) {
				delete(r.obs, id)
				delete(r.exp, id)
				r.folded = nil
				n++
			}
		}
		if expired(r.pushExp, now) {
			r.push, r.pushExp, r.folded = pipeline.Commit{}, time.Time{}, nil
			n++
		}
		if len(r.obs) == 0 && r.push == (pipeline.Commit{}) {
			delete(m.runs, k)
		}
	}
	// Outcomes carry no TTL (dynamo_outcomes.go).
	for key, c := range m.claims {
		if expired(c.expires, now) {
			delete(m.claims, key)
			delete(m.notes, key)
			n++
		}
	}
	t := m.pushes()
	for key := range t.claims {
		if expired(t.claimExp[key], now) {
			delete(t.claims, key)
			delete(t.claimExp, key)
			n++
		}
	}
	for key, list := range t.skips {
		kept := list[:0]
		for _, s := range list {
			if expired(m.expiry(s.At), now) {
				n++
				continue
			}
			kept = append(kept, s)
		}
		t.skips[key] = kept
	}
	return n
}
