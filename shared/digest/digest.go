// Package digest is the notifier's weekly use case: for every declared project whose pipeline
// ran in the last complete ISO week, it computes the four delivery keys of that week and of
// the week before (shared/dora) and sends one message through each channel, once per project
// and week however often the schedule fires or Lambda retries (docs/metrics.md, "The weekly
// digest").
package digest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Payload is what the schedule (template.yaml, WeeklyDigestSchedule) sends the notifier.
const Payload = `{"lp":"weekly-digest"}`

// IsRequest reports whether a notifier invocation's payload asks for the digest, rather than
// being a batch of the table's stream.
func IsRequest(raw []byte) bool {
	var p struct {
		LP string `json:"lp"`
	}
	return json.Unmarshal(raw, &p) == nil && p.LP == "weekly-digest"
}

// Runs lists a pipeline's runs (runstore.Dynamo).
type Runs interface {
	// ListSince returns the pipeline's runs that started at or after since.
	ListSince(ctx context.Context, pipelineName string, since time.Time) ([]pipeline.Run, error)
}

// Projects lists the projects the table declares (runstore.Projects); the parameter's come
// in Sender.Declared.
type Projects interface {
	ListProjects(ctx context.Context) ([]pipeline.ProjectDeclaration, error)
}

// Marks remembers which channels delivered a claimed digest (runstore.Dynamo, the same
// per-channel marks as the notifications'), so that a retry after one channel failed does not
// send through the other again.
type Marks interface {
	ChannelSent(ctx context.Context, n pipeline.Notification, channel string, now time.Time) error
	Queued(ctx context.Context, n pipeline.Notification) (pipeline.Queued, error)
}

// Channel delivers a digest (notify.SlackChannel, notify.SNS).
type Channel interface {
	Name() string
	SendDigest(ctx context.Context, d dora.Digest) error
}

// Lease is how long one invocation holds a project's digest claim: longer than the
// notifier's timeout, so that a live sender is never overtaken.
const Lease = 90 * time.Second

// Sender sends the weekly digests.
type Sender struct {
	Declared []pipeline.Project // the Projects parameter's
	Projects Projects           // nil: the parameter's only
	Runs     Runs
	Claims   pipeline.Claims
	Marks    Marks // nil: no per-channel marks (a retry may repeat a channel that delivered)
	Channels []Channel
	Rule     dora.Rule
	Clock    pipeline.Clock
	Log      *slog.Logger
}

// Report says what one invocation did, per project.
type Report struct {
	Week string   `json:"week"`
	Sent []string `json:"sent"` // projects whose digest this call sent
	// Quiet projects had no run that ended in the week; Done ones were sent before (or are
	// being sent by a concurrent invocation).
	Quiet []string `json:"quiet"`
	Done  []string `json:"done"`
}

// Send sends the digest of the last complete ISO week (the week before the one Clock is in)
// for every declared project that had a run end in it. The error joins every project's
// failure; the projects that succeeded are not repeated when the invocation is retried.
func (s *Sender) Send(ctx context.Context) (Report, error) {
	cur, week := LastWeek(s.Clock.Now())
	rep := Report{Week: week, Sent: []string{}, Quiet: []string{}, Done: []string{}}

	projects := s.Declared
	if s.Projects != nil {
		table, err := s.Projects.ListProjects(ctx)
		if err != nil {
			return rep, fmt.Errorf("list projects: %w", err)
		}
		projects = pipeline.Desired(s.Declared, table)
	}
	var errs []error
	for _, p := range projects {
		outcome, err := s.project(ctx, p.Name, cur, week)
		if err != nil {
			errs = append(errs, fmt.Errorf("digest of %s for %s: %w", p.Name, week, err))
			continue
		}
		switch outcome {
		case sent:
			rep.Sent = append(rep.Sent, p.Name)
		case quiet:
			rep.Quiet = append(rep.Quiet, p.Name)
		case done:
			rep.Done = append(rep.Done, p.Name)
		}
	}
	return rep, errors.Join(errs...)
}

// LastWeek returns the last complete ISO week before now (UTC) and its name: on any day of
// 2026-W50 it is 2026-W49, Monday 30 Nov 00:00 to Monday 7 Dec 00:00.
func LastWeek(now time.Time) (dora.Window, string) {
	this, _, _ := pipeline.ISOWeek(now)
	since, until, name := pipeline.ISOWeek(this.AddDate(0, 0, -7))
	return dora.Window{Since: since, Until: until}, name
}

type result int

const (
	sent result = iota
	quiet
	done
)

func (s *Sender) project(ctx context.Context, project string, cur dora.Window, week string) (result, error) {
	name := pipeline.PipelineOf(project)
	prev := cur.Previous()
	// One more week before the previous one, so that a streak or a change that began there
	// is measured in full (dora.Compute's contract).
	runs, err := s.Runs.ListSince(ctx, name, prev.Previous().Since)
	if err != nil {
		return 0, err
	}
	if !ranIn(runs, cur) {
		return quiet, nil
	}
	d := dora.Digest{Project: project, Pipeline: name, Week: week,
		Current: dora.ComputePipeline(runs, name, cur, s.Rule), Previous: dora.ComputePipeline(runs, name, prev, s.Rule)}
	n := pipeline.DigestNotification(name, week, cur.Until)
	attempt, err := s.Claims.Claim(ctx, n, s.Clock.Now(), Lease)
	if err != nil {
		return 0, err
	}
	if attempt == 0 {
		return done, nil
	}
	if err := s.deliver(ctx, n, d); err != nil {
		// Free the claim for the schedule's retry at once; if even that fails, the lease runs
		// out on its own. A digest is retried as long as the week's schedule retries it.
		if rerr := s.Claims.Release(ctx, n, pipeline.Retry{RetryAt: s.Clock.Now(), Reason: err.Error()}); rerr != nil {
			err = errors.Join(err, fmt.Errorf("release claim: %w", rerr))
		}
		return 0, err
	}
	if err := s.Claims.Sent(ctx, n, s.Clock.Now()); err != nil {
		return 0, err
	}
	s.Log.InfoContext(ctx, "weekly digest sent", "project", project, "week", week,
		"deployments", d.Current.Deployments, "decisiveRuns", d.Current.DecisiveRuns)
	return sent, nil
}

// ranIn reports whether a run of the pipeline ended in the window (whatever its outcome: a
// stopped run is activity too), or started in it and is still going.
func ranIn(runs []pipeline.Run, w dora.Window) bool {
	for _, r := range runs {
		if end, ok := dora.EndOf(r); ok && w.Contains(end) || !ok && w.Contains(r.Began()) {
			return true
		}
	}
	return false
}

// deliver sends d through each channel that has not delivered it yet, side by side.
func (s *Sender) deliver(ctx context.Context, n pipeline.Notification, d dora.Digest) error {
	doneBefore := map[string]bool{}
	if s.Marks != nil {
		q, err := s.Marks.Queued(ctx, n)
		if err != nil {
			return fmt.Errorf("read claim: %w", err)
		}
		doneBefore = q.Channels
	}
	errs := make([]error, len(s.Channels))
	var wg sync.WaitGroup
	for i, ch := range s.Channels {
		if doneBefore[ch.Name()] {
			continue
		}
		wg.Go(func() {
			if err := ch.SendDigest(ctx, d); err != nil {
				errs[i] = fmt.Errorf("%s: %w", ch.Name(), err)
				return
			}
			if s.Marks != nil {
				errs[i] = s.Marks.ChannelSent(ctx, n, ch.Name(), s.Clock.Now())
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
