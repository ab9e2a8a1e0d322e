package simulation

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
	"github.com/lambda-pipeline/lambda-pipeline/shared/ebevent"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
	"github.com/lambda-pipeline/lambda-pipeline/shared/reconcile"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// Options shape one simulated seed.
type Options struct {
	Features  Features
	FaultRate float64 // per call; 0.03 when zero and Schedule is nil
	Loss      float64 // per event delivery: lost for good; 0.02 when zero
	Duplicate float64 // per event: delivered again later; 0.08 when zero
	// Schedule, when set, replays exactly these faults (and no random ones).
	Schedule []Fault
	// Deliveries, when set, replays exactly these deliveries instead of drawing them.
	Deliveries []Delivery
}

// Delivery is one delivery of one event to its function, at a simulated time.
type Delivery struct {
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"event"`
}

// Report is what one seed did and what it broke.
type Report struct {
	Seed        uint64
	Runs        int // executions simulated
	Events      int // deliveries made (duplicates included)
	Faults      map[FaultKind]int
	AtLeastOnce int // duplicate messages of the documented at-least-once case
	LostToDLQ   int // events and pushes whose every invocation failed
	// Unknowable counts the attempts of pipelines of another account or region whose
	// terminal event never reached the store: CodePipeline here cannot be asked about
	// them, so no invariant holds the control plane to them (docs/simulation.md).
	Unknowable int
	// PushesRedriven counts runs the push re-drive started: their pushes' every on-push
	// invocation failed, or EventBridge lost them, or the re-drive came first.
	PushesRedriven int
	// PushesSuperseded counts pushed commits that nothing started because a later push moved
	// the branch past them first (only heads are re-driven, docs/pushes.md).
	PushesSuperseded int
	Violations       []string
	Deliveries       []Delivery
	Injected         []Fault
}

// Failed reports whether an invariant broke.
func (r Report) Failed() bool { return len(r.Violations) > 0 }

const (
	notifierRetries   = 10 // NotifierStream MaximumRetryAttempts (template.yaml)
	reconcilePeriod   = 10 * time.Minute
	asyncRetries      = 2 // Lambda asynchronous invocation: two retries, after 1 and 2 minutes
	maxPostsPerNotice = 60
)

// task is one scheduled piece of work.
type task struct {
	at  time.Time
	seq int
	do  func()
}

type tasks []*task

func (t tasks) Len() int { return len(t) }
func (t tasks) Less(i, j int) bool {
	if !t[i].at.Equal(t[j].at) {
		return t[i].at.Before(t[j].at)
	}
	return t[i].seq < t[j].seq
}
func (t tasks) Swap(i, j int) { t[i], t[j] = t[j], t[i] }
func (t *tasks) Push(x any)   { *t = append(*t, x.(*task)) }
func (t *tasks) Pop() any {
	old := *t
	x := old[len(old)-1]
	*t = old[:len(old)-1]
	return x
}

// clock is the simulated clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type sim struct {
	w     *World
	opt   Options
	clock *clock
	queue tasks
	seq   int
	in    *injector
	mem   *runstore.Memory
	st    *store
	cp    *codePipeline
	rcv   *receiver

	events   *recording.PipelineEvents
	pushes   map[string]*pushstart.Pushes // by repository name, as on-push routes them
	notifier *delivery.Notifications
	recs     map[string]*reconcile.Reconciler // by pipeline identity
	rec      *pipeline.Recorder
	redrives map[string]*pushstart.Redrive // by account/region/name

	shard         []events.DynamoDBEventRecord
	shardRetries  int
	notifierAt    *task
	notifierCalls map[string]int
	reds          map[string]string       // failed attempt (failureKey) → the red→green streak it belongs to
	known         map[string]bool         // executions the store knew before TTL deleted them
	knew          map[string]pipeline.Run // their records as they stood then
	report        Report
}

func (s *sim) at(t time.Time, do func()) *task {
	s.seq++
	x := &task{at: t, seq: s.seq, do: do}
	heap.Push(&s.queue, x)
	return x
}

// atFirst schedules do at t, before the tasks already scheduled for t.
func (s *sim) atFirst(t time.Time, do func()) {
	x := &task{at: t, seq: -1, do: do}
	heap.Push(&s.queue, x)
}

// Run simulates one seed.
func Run(seed uint64, opt Options) Report {
	if opt.FaultRate == 0 && opt.Schedule == nil {
		opt.FaultRate = 0.03
	}
	if opt.Loss == 0 {
		opt.Loss = 0.02
	}
	if opt.Duplicate == 0 {
		opt.Duplicate = 0.08
	}
	w := Generate(seed, opt.Features)
	s := &sim{w: w, opt: opt, clock: &clock{}, in: newInjector(seed, opt.FaultRate, opt.Schedule), rcv: newReceiver(),
		notifierCalls: map[string]int{}, reds: map[string]string{}, known: map[string]bool{}, knew: map[string]pipeline.Run{}, pushes: map[string]*pushstart.Pushes{}, recs: map[string]*reconcile.Reconciler{},
		redrives: map[string]*pushstart.Redrive{}}
	s.report = Report{Seed: seed, Runs: len(w.Execs)}
	s.wire()
	deliveries := opt.Deliveries
	if deliveries == nil {
		deliveries = s.draw()
	}
	s.report.Deliveries = deliveries
	var last time.Time
	for _, d := range deliveries {
		d := d
		s.at(d.At, func() { s.deliver(d.Data, 0) })
		if d.At.After(last) {
			last = d.At
		}
	}
	for _, e := range w.Execs {
		if e.FinalAt.After(last) {
			last = e.FinalAt
		}
	}
	if len(w.Execs) > 0 {
		start := w.Execs[0].Start
		for _, e := range w.Execs {
			if e.Start.Before(start) {
				start = e.Start
			}
		}
		end := last.Add(3 * time.Hour)
		// The schedules' ticks, but none in a quiet stretch (nothing delivered, started or
		// ended in the three hours before): there they find nothing to do, and an idle gap
		// would cost hundreds of them.
		busy := activity(w, deliveries)
		for t := start.Truncate(reconcilePeriod).Add(reconcilePeriod); !t.After(end); t = t.Add(reconcilePeriod) {
			if busySince(busy, t.Add(-quiet), t) {
				s.at(t, s.expire) // the table's TTL, before the schedules look
				s.at(t, s.reconcile)
			}
		}
		// And when activity resumes after a quiet stretch, before anything else happens then:
		// what expired while all was quiet is gone (DynamoDB's own sweep may take a few days
		// more; readers filter expired items meanwhile, docs/aws-behaviour.md).
		for i, t := range busy {
			if i > 0 && t.Sub(busy[i-1]) > quiet {
				s.atFirst(t, s.expire)
			}
		}
		s.clock.now = start
	}
	for s.queue.Len() > 0 {
		x := heap.Pop(&s.queue).(*task)
		if x.at.After(s.clock.now) {
			s.clock.now = x.at
		}
		x.do()
		s.pump()
	}
	s.report.Faults = s.in.mix
	s.report.Injected = s.in.faults()
	s.check()
	return s.report
}

// quiet is how long after the last activity the schedules' ticks stop.
const quiet = 3 * time.Hour

// activity returns, sorted, the times something happens: deliveries, pushes, starts and ends.
func activity(w *World, deliveries []Delivery) []time.Time {
	var out []time.Time
	for _, d := range deliveries {
		out = append(out, d.At)
	}
	for _, e := range w.Execs {
		out = append(out, e.Start, e.FinalAt)
		if e.Push != nil {
			out = append(out, e.Push.At)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// busySince reports whether something happens in [from, to].
func busySince(times []time.Time, from, to time.Time) bool {
	i, _ := slices.BinarySearchFunc(times, from, func(a, b time.Time) int { return a.Compare(b) })
	return i < len(times) && !times[i].After(to)
}

// expire is the table's TTL at work. The runs it deletes were known: the truth keeps them.
func (s *sim) expire() {
	for _, r := range s.mem.Runs() {
		s.known[r.ExecutionID] = true
		// Items expire one by one: keep the record that knew the most endings.
		if old, ok := s.knew[r.ExecutionID]; !ok || len(r.Outcomes) >= len(old.Outcomes) {
			s.knew[r.ExecutionID] = r
		}
	}
	s.mem.ExpireTTL(s.clock.now)
}

func (s *sim) wire() {
	log := slog.New(slog.DiscardHandler)
	s.mem = runstore.NewMemory().WithClock(s.clock).WithRetention(Retention)
	s.st = &store{m: s.mem, in: s.in, rcv: s.rcv}
	s.cp = &codePipeline{in: s.in, clock: s.clock, execs: map[string]*Exec{}, byCmt: map[string]*Exec{}, starts: map[string]map[string]bool{}}
	for _, e := range s.w.Execs {
		s.cp.execs[e.ID] = e
		s.cp.byCmt[e.Commit] = e
	}
	rec := pipeline.NewRecorder(s.st, s.st, outbox{s.st}, s.clock)
	s.events = &recording.PipelineEvents{Recorder: rec, Log: log, Clock: s.clock, Home: Home, Foreign: s.st}
	s.rec = rec
	slack := &notify.SlackChannel{Log: log, Poster: notify.Slack{URL: "https://hooks.slack.com/services/T0/B0/sim",
		Client: &http.Client{Transport: slackTransport{in: s.in, rcv: s.rcv}},
		Sleep:  func(context.Context, time.Duration) error { return nil }}}
	sender := &delivery.Sender{Channels: []notify.Channel{channel{slack}, channel{&notify.SNS{API: snsAPI{in: s.in, rcv: s.rcv}, TopicARN: "arn:aws:sns:eu-west-1:111111111111:t"}}},
		Marks: s.st, Log: log, Clock: s.clock}
	s.notifier = &delivery.Notifications{Queue: s.st, Runs: s.st, Claims: s.st, Sender: sender, Log: log, Clock: s.clock}
	for _, p := range s.w.Pipes {
		if !Home.Owns(p.Account, p.Region) {
			// The control plane starts and reconciles the home's pipelines: the deployed
			// on-push and reconciler know the declared projects, which are the home's.
			continue
		}
		h := &pushstart.Pushes{Commits: codeCommit{s.in}, Pipelines: s.cp, Store: s.st, Log: log, Clock: s.clock,
			PipelineName: p.Name, RepositoryName: p.Name, Branch: "main", Home: Home}
		s.pushes[p.Name] = h
		s.redrives[pipeKey(p)] = &pushstart.Redrive{Pushes: h, Branches: branches{in: s.in, w: s.w, pipe: p, clock: s.clock},
			Executions: pipeLister{cp: s.cp, pipe: p, clock: s.clock}, Region: p.Region, Workers: 1}
		s.recs[p.Name] = &reconcile.Reconciler{Runs: s.st, Executions: s.cp, Discover: s.cp, Recorder: rec, Log: log, Clock: s.clock,
			PipelineName: p.Name, Requeue: s.st.Requeue}
	}
}

// draw decides, from the seed, how EventBridge delivers each event: after a delay (reordering),
// sometimes twice, sometimes never.
func (s *sim) draw() []Delivery {
	rng := rand.New(rand.NewPCG(s.w.Seed, 0xde11))
	var out []Delivery
	add := func(r Raw) {
		if rng.Float64() < s.opt.Loss {
			return
		}
		delay := time.Duration(rng.IntN(5000)) * time.Millisecond
		if rng.IntN(20) == 0 {
			delay = time.Duration(rng.IntN(600)) * time.Second
		}
		out = append(out, Delivery{At: r.At.Add(delay), Data: r.Data})
		if rng.Float64() < s.opt.Duplicate {
			out = append(out, Delivery{At: r.At.Add(delay + time.Duration(rng.IntN(300))*time.Second), Data: r.Data})
		}
	}
	for _, e := range s.w.Execs {
		if e.Push != nil {
			add(*e.Push)
		}
		for _, r := range e.Events {
			add(r)
		}
	}
	slices.SortStableFunc(out, func(a, b Delivery) int { return a.At.Compare(b.At) })
	return out
}

// deliver invokes the function an event is for; a failed invocation is retried as Lambda
// retries asynchronous invocations, then lost to the dead-letter queue.
func (s *sim) deliver(data json.RawMessage, attempt int) {
	s.report.Events++
	ctx, _ := withKill(context.Background())
	var err error
	if bytes.Contains(data, []byte(`"source":"aws.codecommit"`)) {
		p, derr := ebevent.DecodePush(data)
		if derr != nil {
			return
		}
		// One on-push for the home's repositories: a push of another account or region
		// reaches it too (forwarded), and is skipped there.
		h := s.pushes[p.Repository]
		if h == nil {
			return
		}
		_, err = h.Handle(ctx, data)
	} else {
		_, err = s.events.Handle(ctx, data)
	}
	if err == nil {
		return
	}
	if attempt >= asyncRetries {
		s.report.LostToDLQ++
		return
	}
	s.at(s.clock.now.Add(time.Duration(attempt+1)*time.Minute), func() { s.deliver(data, attempt+1) })
}

// pump moves the stream's new records to the notifier's shard and schedules its invocation.
func (s *sim) pump() {
	s.shard = append(s.shard, s.mem.TakeStream()...)
	if len(s.shard) > 0 && s.notifierAt == nil {
		s.notifierAt = s.at(s.clock.now.Add(time.Second), s.notify)
	}
}

// notify is one notifier invocation on the head of the shard, as the event source mapping
// makes it: up to 10 records; a failed record and those after it are retried; after
// MaximumRetryAttempts the failed record goes to the on-failure destination.
func (s *sim) notify() {
	s.notifierAt = nil
	n := min(len(s.shard), 10)
	batch := slices.Clone(s.shard[:n])
	for _, r := range batch {
		s.notifierCalls[r.Change.Keys["pk"].String()]++
	}
	ctx, kl := withKill(context.Background())
	resp, err := s.notifier.Handle(ctx, events.DynamoDBEvent{Records: batch})
	failedAt := -1
	if err != nil || kl.dead("") {
		failedAt = 0
	} else if len(resp.BatchItemFailures) > 0 {
		id := resp.BatchItemFailures[0].ItemIdentifier
		failedAt = slices.IndexFunc(batch, func(r events.DynamoDBEventRecord) bool { return r.Change.SequenceNumber == id })
	}
	if failedAt < 0 {
		s.shard = s.shard[n:]
		s.shardRetries = 0
		return
	}
	s.shard = s.shard[failedAt:]
	s.shardRetries++
	if s.shardRetries > notifierRetries {
		s.shard = s.shard[1:] // to the on-failure destination
		s.shardRetries = 0
		s.report.LostToDLQ++
	}
	if len(s.shard) > 0 {
		s.notifierAt = s.at(s.clock.now.Add(time.Duration(s.shardRetries)*10*time.Second), s.notify)
	}
}

// reconcile is one pass of the reconciler as functions/reconciler runs it: the home's
// pipelines (the declared projects), then the pipelines of other accounts and regions that
// on-pipeline-event remembered in the table, whose decisions it takes again without asking
// CodePipeline.
func (s *sim) reconcile() {
	names := make([]string, 0, len(s.recs))
	for n, r := range s.recs {
		if !pipeline.ParsePipelineID(r.PipelineName).Foreign() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	ctx, _ := withKill(context.Background())
	if foreign, err := s.st.ForeignPipelines(ctx); err == nil {
		for _, id := range foreign {
			if s.recs[id] == nil {
				s.recs[id] = &reconcile.Reconciler{Runs: s.st, Executions: s.cp, Recorder: s.rec, Log: slog.New(slog.DiscardHandler), Clock: s.clock,
					PipelineName: id}
			}
			names = append(names, id)
		}
	}
	for _, n := range names {
		ctx, _ := withKill(context.Background())
		_, _ = s.recs[n].Handle(ctx, json.RawMessage(`{}`))
	}
	// The push re-drive's schedule (on-push, every 10 minutes like the reconciler's).
	for _, k := range sortedKeys(s.redrives) {
		ctx, _ := withKill(context.Background())
		rep, _ := s.redrives[k].Pass(ctx)
		s.report.PushesRedriven += len(rep.Started)
	}
}

// knowable reports whether the control plane can know how attempt a of e ended. It can for
// the home's pipelines, whose lost events the reconciler learns from CodePipeline; for a
// pipeline of another account or region only when the attempt's terminal event reached the
// store (runs holds what the store folded): CodePipeline here cannot be asked about it.
func knowable(e *Exec, a Attempt, runs map[string]pipeline.Run) bool {
	if !e.Pipe.Foreign() {
		return true
	}
	_, ok := runs[e.ID].OutcomeOf(a.N)
	return ok
}

// truth returns the messages the ground truth calls for, and the executions that must stay
// silent. Pipelines are told apart by account, region and name (Pipe), as the control plane
// tells them apart by identity.
func (s *sim) truth(runs map[string]pipeline.Run, known map[string]bool) (want map[string]string, silent map[string]bool) {
	want, silent = map[string]string{}, map[string]bool{}
	type dec struct {
		e  *Exec
		at Attempt
	}
	byPipe := map[Pipe][]dec{}
	for _, e := range s.w.Execs {
		if !known[e.ID] {
			// No delivery of any of its events or its push reached a store: nothing can
			// know the run (EventBridge losing all of a run's events is not modelled as a
			// defect; the shrinker makes such runs).
			continue
		}
		if e.EmptyRepo {
			last := e.Attempts[len(e.Attempts)-1]
			switch o, _ := runs[e.ID].OutcomeOf(last.N); {
			case !knowable(e, last, runs):
				s.report.Unknowable++
			case e.Pipe.Foreign() && !pipeline.IsPushToStart(runs[e.ID], o):
				// Nothing the store holds proves an empty repository (neither the
				// CreatePipeline trigger nor the Source action's error reached it), and
				// CodePipeline cannot be asked about another account's pipeline: a failure
				// is told rather than swallowed (docs/notifications.md).
				want[string(pipeline.NotifyFailed)+"#"+e.ID] = "a failed run nothing proves a push to start"
			default:
				want[string(pipeline.NotifyPushToStart)+"#"+e.ID] = "the first run on an empty repository"
			}
			continue
		}
		decisive := false
		for _, a := range e.Attempts {
			if !knowable(e, a, runs) {
				// The end of a foreign pipeline's attempt that never reached the store:
				// it is neither told nor part of the pipeline's streaks.
				s.report.Unknowable++
				continue
			}
			if a.Status.Decisive() {
				byPipe[e.Pipe] = append(byPipe[e.Pipe], dec{e, a})
				decisive = true
			}
			if a.Status == pipeline.StatusFailed {
				want[string(pipeline.NotifyFailed)+"#"+e.ID] = "a failed run"
			}
		}
		if !decisive {
			silent[e.ID] = true
		}
	}
	for _, list := range byPipe {
		slices.SortStableFunc(list, func(a, b dec) int {
			return pipeline.CompareOutcomes(outcomeOf(a.e, a.at), outcomeOf(b.e, b.at))
		})
		// One recovery per red→green, counted by the failure its sender holds the recovery of
		// (the store's guard is on the newest failure the sender knew): any success of the
		// green streak may tell it, and which one depends on the order runs are learnt in.
		var red []string
		for _, d := range list {
			if d.at.Status == pipeline.StatusFailed {
				red = append(red, failureKey(d.e.ID, d.at.N))
				continue
			}
			if len(red) > 0 {
				streak := "streak:" + d.e.ID
				want[streak] = "red to green"
				for _, f := range red {
					s.reds[f] = streak
				}
			}
			red = nil
		}
	}
	return want, silent
}

func outcomeOf(e *Exec, a Attempt) pipeline.Outcome {
	o := pipeline.Outcome{Pipeline: e.Pipe.ID(), ExecutionID: e.ID, Attempt: a.N, Status: a.Status, At: a.At}
	if e.Pipe.V2() {
		o.Started = e.Start
	}
	return o
}

// check compares what happened with the ground truth.
func (s *sim) check() {
	runs := map[string]pipeline.Run{}
	known := s.known           // the runs TTL deleted, and those still there
	ever := maps.Clone(s.knew) // what the store held, TTL or not, for knowable
	for _, r := range s.mem.Runs() {
		runs[r.ExecutionID], known[r.ExecutionID] = r, true
		if old, ok := ever[r.ExecutionID]; !ok || len(r.Outcomes) >= len(old.Outcomes) {
			ever[r.ExecutionID] = r
		}
	}
	want, silent := s.truth(ever, known)
	v := func(format string, args ...any) {
		s.report.Violations = append(s.report.Violations, fmt.Sprintf(format, args...))
	}
	for _, ch := range []string{notify.ChannelSlack, notify.ChannelSNS} {
		// Recoveries count per green streak.
		got, ambiguous := map[string]int{}, map[string]bool{}
		for orig, n := range s.rcv.got[ch] {
			k := orig
			if by, ok := strings.CutPrefix(orig, string(pipeline.NotifyRecovered)+"#"); ok {
				if g, ok := s.reds[s.rcv.holds[by]]; ok {
					k = g
				}
			}
			got[k] += n
			ambiguous[k] = ambiguous[k] || s.rcv.ambiguous[ch][orig]
		}

		keys := sortedKeys(want)
		for _, k := range keys {
			switch n := got[k]; {
			case n == 0:
				v("%s: %s never delivered (%s)", ch, k, want[k])
			case n > 1 && ambiguous[k]:
				s.report.AtLeastOnce += n - 1
			case n > 1:
				v("%s: %s delivered %d times", ch, k, n)
			}
		}
		for _, k := range sortedKeys(got) {
			if _, ok := want[k]; !ok {
				_, exec, _ := strings.Cut(k, "#")
				why := "not called for"
				if silent[exec] {
					why = "the run was superseded, stopped or cancelled"
				}
				v("%s: %s delivered %d times: %s", ch, k, got[k], why)
			}
		}
	}
	for k, n := range s.rcv.tries {
		if n > maxPostsPerNotice {
			v("%s attempted %d times", k, n)
		}
	}
	for k, n := range s.notifierCalls {
		if n > notifierRetries*8 {
			v("%s handled by %d notifier invocations", k, n)
		}
	}
	// Run state: every run the store knows, whose end the reconciler has had time to see,
	// ends as CodePipeline says.
	for _, e := range s.w.Execs {
		r, ok := runs[e.ID]
		if !ok || !knowable(e, e.Attempts[len(e.Attempts)-1], runs) {
			continue
		}
		if r.Status != e.Final.Status() {
			v("run %s (%s) is %s, CodePipeline says %s", e.ID, e.Kind, r.Status, e.Final.Status())
		}
	}
	for _, n := range s.mem.Pending() {
		v("notification %s still pending at the end", n.Key())
	}
	for cmt, tokens := range s.cp.starts {
		if len(tokens) > 1 {
			v("commit %s started with %d different tokens", cmt, len(tokens))
		}
	}
	// Every pushed commit is started exactly once (one token, above): the last one of each
	// branch always, by on-push or else by the re-drive; an earlier one whose every push
	// delivery failed may have been superseded by the next push before a re-drive pass saw
	// it at the head.
	end := s.clock.now
	for _, e := range s.w.Execs {
		if e.Push == nil || e.Pipe.Foreign() || len(s.cp.starts[e.Commit]) > 0 {
			continue
		}
		if s.w.head(e.Pipe, end) == e {
			v("commit %s, the head of %s, was pushed and never started", e.Commit, pipeKey(e.Pipe))
			continue
		}
		s.report.PushesSuperseded++
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
