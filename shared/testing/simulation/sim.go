package simulation

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	// LateRecovery counts second "recovered" messages of one streak whose earlier failure was
	// learnt only after the recovery went out (documented in docs/notifications.md).
	LateRecovery int
	LostToDLQ    int // events and pushes whose every invocation failed
	Violations   []string
	Deliveries   []Delivery
	Injected     []Fault
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
	pushes   map[string]*pushstart.Pushes // by account/region/name
	notifier *delivery.Notifications
	recs     map[string]*reconcile.Reconciler // by pipeline name

	shard         []events.DynamoDBEventRecord
	shardRetries  int
	notifierAt    *task
	notifierCalls map[string]int
	greens        map[string]string // recovered#<execution> → the green streak it belongs to
	report        Report
}

func (s *sim) at(t time.Time, do func()) *task {
	s.seq++
	x := &task{at: t, seq: s.seq, do: do}
	heap.Push(&s.queue, x)
	return x
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
		notifierCalls: map[string]int{}, greens: map[string]string{}, pushes: map[string]*pushstart.Pushes{}, recs: map[string]*reconcile.Reconciler{}}
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
		for t := start.Truncate(reconcilePeriod).Add(reconcilePeriod); !t.After(end); t = t.Add(reconcilePeriod) {
			s.at(t, s.reconcile)
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

func (s *sim) wire() {
	log := slog.New(slog.DiscardHandler)
	s.mem = runstore.NewMemory().WithClock(s.clock)
	s.st = &store{m: s.mem, in: s.in, rcv: s.rcv}
	s.cp = &codePipeline{in: s.in, clock: s.clock, execs: map[string]*Exec{}, byCmt: map[string]*Exec{}, starts: map[string]map[string]bool{}}
	for _, e := range s.w.Execs {
		s.cp.execs[e.ID] = e
		s.cp.byCmt[e.Commit] = e
	}
	rec := pipeline.NewRecorder(s.st, s.st, outbox{s.st}, s.clock)
	s.events = &recording.PipelineEvents{Recorder: rec, Log: log, Clock: s.clock}
	slack := &notify.SlackChannel{Log: log, Poster: notify.Slack{URL: "https://hooks.slack.com/services/T0/B0/sim",
		Client: &http.Client{Transport: slackTransport{in: s.in, rcv: s.rcv}},
		Sleep:  func(context.Context, time.Duration) error { return nil }}}
	sender := &delivery.Sender{Channels: []notify.Channel{channel{slack}, channel{&notify.SNS{API: snsAPI{in: s.in, rcv: s.rcv}, TopicARN: "arn:aws:sns:eu-west-1:111111111111:t"}}},
		Marks: s.st, Log: log, Clock: s.clock}
	s.notifier = &delivery.Notifications{Queue: s.st, Runs: s.st, Claims: s.st, Sender: sender, Log: log, Clock: s.clock}
	for _, p := range s.w.Pipes {
		s.pushes[p.Account+"/"+p.Region+"/"+p.Name] = &pushstart.Pushes{Commits: codeCommit{s.in}, Pipelines: s.cp, Store: s.st, Log: log, Clock: s.clock,
			PipelineName: p.Name, RepositoryName: p.Name, Branch: "main"}
		if s.recs[p.Name] == nil {
			s.recs[p.Name] = &reconcile.Reconciler{Runs: s.st, Executions: s.cp, Discover: s.cp, Recorder: rec, Log: log, Clock: s.clock,
				PipelineName: p.Name, Requeue: s.st.Requeue}
		}
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
		h := s.pushes[p.Account+"/"+p.Region+"/"+p.Repository]
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

func (s *sim) reconcile() {
	names := make([]string, 0, len(s.recs))
	for n := range s.recs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ctx, _ := withKill(context.Background())
		_, _ = s.recs[n].Handle(ctx, json.RawMessage(`{}`))
	}
}

// truth returns the messages the ground truth calls for, and the executions that must stay
// silent.
func (s *sim) truth(known map[string]bool) (want map[string]string, silent map[string]bool) {
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
			want[string(pipeline.NotifyPushToStart)+"#"+e.ID] = "the first run on an empty repository"
			continue
		}
		decisive := false
		for _, a := range e.Attempts {
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
		// One recovery per red→green: any success of the green streak may tell it (the
		// first when outcomes are learnt in order).
		streak := ""
		for i := 1; i < len(list); i++ {
			switch {
			case list[i].at.Status == pipeline.StatusFailed:
				streak = ""
			case list[i-1].at.Status == pipeline.StatusFailed:
				streak = "streak:" + list[i].e.ID
				want[streak] = "red to green"
				s.greens[string(pipeline.NotifyRecovered)+"#"+list[i].e.ID] = streak
			case streak != "":
				s.greens[string(pipeline.NotifyRecovered)+"#"+list[i].e.ID] = streak
			}
		}
	}
	return want, silent
}

func outcomeOf(e *Exec, a Attempt) pipeline.Outcome {
	return pipeline.Outcome{Pipeline: e.Pipe.Name, ExecutionID: e.ID, Attempt: a.N, Status: a.Status, At: a.At}
}

// check compares what happened with the ground truth.
func (s *sim) check() {
	runs := map[string]pipeline.Run{}
	known := map[string]bool{}
	for _, r := range s.mem.Runs() {
		runs[r.ExecutionID], known[r.ExecutionID] = r, true
	}
	want, silent := s.truth(known)
	v := func(format string, args ...any) {
		s.report.Violations = append(s.report.Violations, fmt.Sprintf(format, args...))
	}
	for _, ch := range []string{notify.ChannelSlack, notify.ChannelSNS} {
		// Recoveries count per green streak.
		got, ambiguous := map[string]int{}, map[string]bool{}
		keysOf := map[string]map[string]bool{} // streak → distinct recovery keys
		for orig, n := range s.rcv.got[ch] {
			k := orig
			exec := orig
			if g, ok := s.greens[exec]; ok {
				k = g
				if keysOf[g] == nil {
					keysOf[g] = map[string]bool{}
				}
				keysOf[g][orig] = true
			}
			got[k] += n
			ambiguous[k] = ambiguous[k] || s.rcv.ambiguous[ch][orig]
		}
		for g, keys := range keysOf {
			if len(keys) > 1 && got[g] == len(keys) && !ambiguous[g] {
				// The documented late-discovery case (docs/notifications.md): runs of the
				// pipeline were learnt out of the order they ended, and two successes of the
				// streak each told its recovery (issue 9, open).
				s.report.LateRecovery += len(keys) - 1
				got[g] = 1
			}
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
		if !ok {
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
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
