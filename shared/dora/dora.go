// Package dora computes the four DORA delivery metrics (deployment frequency, lead time for
// changes, change failure rate, time to restore) from run records, and the CloudWatch
// embedded-metric-format line of a finished run. It is pure: no I/O and no clock; every time
// comes from the records or from the window the caller passes. docs/metrics.md states each rule
// and why.
package dora

import (
	"slices"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// DefaultDeployStage is the stage of this project's pipeline whose action deploys the
// application (infrastructure/lambda.yml): CreateUpdateLambda.
const DefaultDeployStage = "CreateUpdateLambda"

// Rule says which runs are deploys.
type Rule struct {
	// DeployStage names the stage whose action deploys the application. A run is a deploy when
	// it ended SUCCEEDED and its record has this stage (it reached it). Earlier stages
	// (CreateUpdatePipeline updates the pipeline itself) do not make a deploy.
	DeployStage string
}

// DefaultRule is the rule for the pipeline infrastructure/pipeline.yml defines.
func DefaultRule() Rule { return Rule{DeployStage: DefaultDeployStage} }

// IsDeploy reports whether the run deployed the application: it ended SUCCEEDED and reached the
// deploy stage. A run retried to green is a deploy; superseded, stopped and cancelled runs are
// not, even when they passed the deploy stage.
func (r Rule) IsDeploy(run pipeline.Run) bool {
	if run.Status != pipeline.StatusSucceeded {
		return false
	}
	stage := r.DeployStage
	if stage == "" {
		stage = DefaultDeployStage
	}
	_, ok := run.Stages[stage]
	return ok
}

// Window is the half-open interval [Since, Until).
type Window struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Contains reports whether t is in [Since, Until).
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Since) && t.Before(w.Until) }

// Days is the window's length in days (24 hours each), fractional.
func (w Window) Days() float64 { return w.Until.Sub(w.Since).Hours() / 24 }

// Previous is the window of the same length that ends where w starts.
func (w Window) Previous() Window {
	return Window{Since: w.Since.Add(-w.Until.Sub(w.Since)), Until: w.Since}
}

// Durations summarises duration samples. Count is 0 when there was none, and then Median and
// Mean are 0 and mean nothing.
type Durations struct {
	Count  int           `json:"count"`
	Median time.Duration `json:"median"`
	Mean   time.Duration `json:"mean"`
}

// Summarize returns the count, median and mean of the samples. The median of an even number of
// samples is the mean of the two middle ones.
func Summarize(samples []time.Duration) Durations {
	if len(samples) == 0 {
		return Durations{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	n := len(s)
	median := s[n/2]
	if n%2 == 0 {
		median = s[n/2-1] + (s[n/2]-s[n/2-1])/2
	}
	return Durations{Count: n, Median: median, Mean: sum / time.Duration(n)}
}

// Change is one change (a commit a run built) and the deploy that delivered it.
type Change struct {
	CommitID    string `json:"commitId"`
	ExecutionID string `json:"executionId"` // the first run that built the commit
	// CommittedAt is when the change entered the pipeline: the commit's push time, or the start
	// of its first run when the push was not recorded.
	CommittedAt time.Time `json:"committedAt"`
	DeployedAt  time.Time `json:"deployedAt"`
	DeployedBy  string    `json:"deployedBy"` // execution id of the deploy
}

// LeadTime is the change's lead time.
func (c Change) LeadTime() time.Duration { return max(c.DeployedAt.Sub(c.CommittedAt), 0) }

// Restore is one failure streak and the run that ended it.
type Restore struct {
	BrokenSince time.Time `json:"brokenSince"` // end of the streak's first failed run (attempt)
	FirstFailed string    `json:"firstFailed"` // its execution id
	Failures    int       `json:"failures"`    // failed attempts in the streak
	RestoredAt  time.Time `json:"restoredAt"`  // end of the run that succeeded
	RestoredBy  string    `json:"restoredBy"`
}

// Duration is the time to restore.
func (r Restore) Duration() time.Duration { return r.RestoredAt.Sub(r.BrokenSince) }

// Day counts one 24-hour slice of a window, starting at Start.
type Day struct {
	Start       time.Time `json:"start"`
	Deployments int       `json:"deployments"`
	Failures    int       `json:"failures"`
}

// Keys are the four keys of one pipeline over one window, with what they were computed from.
type Keys struct {
	Pipeline string `json:"pipeline"`
	Window   Window `json:"window"`

	// Deployments are the deploys that ended in the window; DeploymentsPerDay divides them by
	// the window's length in days.
	Deployments       int     `json:"deployments"`
	DeploymentsPerDay float64 `json:"deploymentsPerDay"`

	// LeadTime summarises the lead times of the changes delivered by those deploys.
	LeadTime Durations `json:"leadTime"`
	Changes  []Change  `json:"changes"`

	// DecisiveRuns ended in the window SUCCEEDED or FAILED (by their final attempt);
	// FailedRuns of them FAILED. ChangeFailureRate is FailedRuns/DecisiveRuns, 0 when there
	// was no decisive run (HasChangeFailureRate tells).
	DecisiveRuns      int     `json:"decisiveRuns"`
	FailedRuns        int     `json:"failedRuns"`
	ChangeFailureRate float64 `json:"changeFailureRate"`

	// TimeToRestore summarises the streaks that a success ended in the window.
	TimeToRestore Durations `json:"timeToRestore"`
	Restores      []Restore `json:"restores"`
	// BrokenSince is set when the window ends inside a failure streak: its start.
	BrokenSince *time.Time `json:"brokenSince,omitempty"`

	Daily []Day `json:"daily"`
}

// HasChangeFailureRate reports whether any run was decisive in the window.
func (k Keys) HasChangeFailureRate() bool { return k.DecisiveRuns > 0 }

// Compute returns the keys of every pipeline that has a run in runs, over the window, sorted
// by pipeline name.
//
// runs should reach back before w.Since: a change pushed before the window and deployed in it,
// and a failure streak that began before the window and ended in it, count in full in the
// window (their end is in it) only when their beginning is among runs; otherwise they are
// measured from the earliest run given.
func Compute(runs []pipeline.Run, w Window, rule Rule) []Keys {
	byPipeline := map[string][]pipeline.Run{}
	for _, r := range runs {
		byPipeline[r.Pipeline] = append(byPipeline[r.Pipeline], r)
	}
	names := make([]string, 0, len(byPipeline))
	for n := range byPipeline {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Keys, 0, len(names))
	for _, n := range names {
		out = append(out, ComputePipeline(byPipeline[n], n, w, rule))
	}
	return out
}

// ComputePipeline returns the keys of one pipeline over the window; runs of other pipelines
// are ignored.
func ComputePipeline(runs []pipeline.Run, name string, w Window, rule Rule) Keys {
	var own []pipeline.Run
	for _, r := range runs {
		if r.Pipeline == name {
			own = append(own, r)
		}
	}
	sortRuns(own)

	k := Keys{Pipeline: name, Window: w, Changes: []Change{}, Restores: []Restore{}, Daily: days(w)}
	day := func(t time.Time) *Day {
		i := int(t.Sub(w.Since) / (24 * time.Hour))
		return &k.Daily[min(i, len(k.Daily)-1)]
	}

	// Deployment frequency and change failure rate: each run once, by its final outcome.
	for _, r := range own {
		end, ended := EndOf(r)
		if !ended || !w.Contains(end) {
			continue
		}
		if rule.IsDeploy(r) {
			k.Deployments++
			day(end).Deployments++
		}
		if r.Status.Decisive() {
			k.DecisiveRuns++
			if r.Status == pipeline.StatusFailed {
				k.FailedRuns++
				day(end).Failures++
			}
		}
	}
	if d := w.Days(); d > 0 {
		k.DeploymentsPerDay = float64(k.Deployments) / d
	}
	if k.DecisiveRuns > 0 {
		k.ChangeFailureRate = float64(k.FailedRuns) / float64(k.DecisiveRuns)
	}

	// Lead time: every change delivered by a deploy that ended in the window.
	var leads []time.Duration
	for _, c := range changes(own, rule) {
		if w.Contains(c.DeployedAt) {
			k.Changes = append(k.Changes, c)
			leads = append(leads, c.LeadTime())
		}
	}
	k.LeadTime = Summarize(leads)

	// Time to restore: every streak a success ended in the window.
	restores, open := streaks(own, w.Until)
	var ttr []time.Duration
	for _, s := range restores {
		if w.Contains(s.RestoredAt) {
			k.Restores = append(k.Restores, s)
			ttr = append(ttr, s.Duration())
		}
	}
	k.TimeToRestore = Summarize(ttr)
	if open != nil {
		t := open.BrokenSince
		k.BrokenSince = &t
	}
	return k
}

// days slices the window into 24-hour days from Since; the last one may be shorter.
func days(w Window) []Day {
	n := int((w.Until.Sub(w.Since) + 24*time.Hour - 1) / (24 * time.Hour))
	out := make([]Day, max(n, 1))
	for i := range out {
		out[i].Start = w.Since.Add(time.Duration(i) * 24 * time.Hour)
	}
	return out
}

// EndOf returns when the run ended, and whether it has.
func EndOf(r pipeline.Run) (time.Time, bool) {
	if !r.EndedAt.IsZero() {
		return r.EndedAt, true
	}
	if r.Status.Terminal() && !r.At.IsZero() {
		return r.At, true
	}
	return time.Time{}, false
}

// sortRuns orders runs by when they entered the pipeline, then by execution id.
func sortRuns(runs []pipeline.Run) {
	slices.SortFunc(runs, func(a, b pipeline.Run) int {
		if c := a.Began().Compare(b.Began()); c != 0 {
			return c
		}
		return strings.Compare(a.ExecutionID, b.ExecutionID)
	})
}

// changes returns every commit the runs built that a deploy delivered. The tracked branch only
// moves forward, so a deploy delivers its own commit and every commit of the runs that started
// before it and that no earlier deploy delivered: a failed, superseded, stopped or cancelled
// run's commit is delivered by the next deploy. A commit built more than once is one change,
// from its first run. Runs must be sorted by placedAt.
func changes(runs []pipeline.Run, rule Rule) []Change {
	type deploy struct {
		run pipeline.Run
		end time.Time
	}
	var deploys []deploy
	for _, r := range runs {
		if end, ok := EndOf(r); ok && rule.IsDeploy(r) {
			deploys = append(deploys, deploy{r, end})
		}
	}
	seen := map[string]bool{}
	var out []Change
	for _, r := range runs {
		id := r.Commit.ID
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		// The first deploy to end among the runs placed at or after this one.
		var by *deploy
		for i, d := range deploys {
			if d.run.Began().Before(r.Began()) {
				continue
			}
			if by == nil || d.end.Before(by.end) {
				by = &deploys[i]
			}
		}
		if by == nil {
			continue
		}
		out = append(out, Change{CommitID: id, ExecutionID: r.ExecutionID, CommittedAt: r.EnteredAt(),
			DeployedAt: by.end, DeployedBy: by.run.ExecutionID})
	}
	return out
}

// streaks walks the decisive outcomes (one per attempt) that ended before until, in the order
// they ended, and returns the failure streaks a success ended, and the streak still open at
// until. A failed attempt that a retry turned green opens a streak like a failed run does, as
// the "recovered" notification tells it.
func streaks(runs []pipeline.Run, until time.Time) (restores []Restore, open *Restore) {
	var h []pipeline.Outcome
	for _, r := range runs {
		for _, o := range outcomesOf(r) {
			if o.At.Before(until) {
				h = append(h, o)
			}
		}
	}
	slices.SortFunc(h, pipeline.CompareOutcomes)
	for _, o := range h {
		switch {
		case o.Status == pipeline.StatusFailed && open == nil:
			open = &Restore{BrokenSince: o.At, FirstFailed: o.ExecutionID, Failures: 1}
		case o.Status == pipeline.StatusFailed:
			open.Failures++
		case open != nil:
			open.RestoredAt, open.RestoredBy = o.At, o.ExecutionID
			restores = append(restores, *open)
			open = nil
		}
	}
	return restores, open
}

// outcomesOf returns the run's decisive outcomes, one per attempt: those recorded, or the run's
// own final status when none was.
func outcomesOf(r pipeline.Run) []pipeline.Outcome {
	var out []pipeline.Outcome
	for _, o := range r.Outcomes {
		if !o.Status.Decisive() || slices.ContainsFunc(out, func(x pipeline.Outcome) bool { return x.Attempt == o.Attempt }) {
			continue
		}
		o.Pipeline, o.ExecutionID = r.Pipeline, r.ExecutionID
		out = append(out, o)
	}
	if len(out) == 0 && r.Status.Decisive() {
		if end, ok := EndOf(r); ok {
			out = append(out, pipeline.Outcome{Pipeline: r.Pipeline, ExecutionID: r.ExecutionID,
				Attempt: max(r.Attempt, 1), Status: r.Status, At: end, Trigger: r.Trigger})
		}
	}
	return out
}
