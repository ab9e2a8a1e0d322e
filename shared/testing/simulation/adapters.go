package simulation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// store is runstore.Memory behind the fault injector: every call may be throttled, fail with
// a 5xx, lose its answer after landing, or kill the function after landing.
type store struct {
	m   *runstore.Memory
	in  *injector
	rcv *receiver
}

var readFaults = []FaultKind{FaultThrottle, FaultServer, FaultTimeout}
var writeFaults = []FaultKind{FaultThrottle, FaultServer, FaultTimeout, FaultKill}

// read runs a read through the injector.
func (s *store) read(ctx context.Context, op, subject string) error {
	if killOf(ctx).dead("") {
		return errKilled
	}
	if k := s.in.decide(op, subject, readFaults...); k != "" {
		return errFault{k}
	}
	return nil
}

// write runs do through the injector: a throttle or 5xx refuses it, a timeout or a kill lets
// it land and then fails.
func (s *store) write(ctx context.Context, channel, op, subject string, do func() error) error {
	kl := killOf(ctx)
	if kl.dead(channel) {
		return errKilled
	}
	k := s.in.decide(op, subject, writeFaults...)
	switch k {
	case FaultThrottle, FaultServer:
		return errFault{k}
	}
	if err := do(); err != nil {
		return err
	}
	switch k {
	case FaultTimeout:
		return errFault{k}
	case FaultKill:
		kl.kill(channel)
		return errFault{k}
	}
	return nil
}

func (s *store) Append(ctx context.Context, ev pipeline.Event) (dup bool, err error) {
	err = s.write(ctx, "", "Append", ev.ExecutionID+"|"+ev.ObservationID(), func() (err error) {
		dup, err = s.m.Append(ctx, ev)
		return err
	})
	return dup, err
}

func (s *store) Load(ctx context.Context, k pipeline.Key) (pipeline.History, error) {
	if err := s.read(ctx, "Load", k.ExecutionID); err != nil {
		return pipeline.History{}, err
	}
	return s.m.Load(ctx, k)
}

func (s *store) AddOutcome(ctx context.Context, o pipeline.Outcome, now time.Time) (h []pipeline.Outcome, err error) {
	err = s.write(ctx, "", "AddOutcome", o.ExecutionID+"|"+strconv.Itoa(o.Attempt), func() (err error) {
		h, err = s.m.AddOutcome(ctx, o, now)
		return err
	})
	return h, err
}

func (s *store) Recover(ctx context.Context, streak []pipeline.Outcome, by string, now time.Time) (ok bool, err error) {
	err = s.write(ctx, "", "Recover", by, func() (err error) {
		ok, err = s.m.Recover(ctx, streak, by, now)
		if ok {
			s.rcv.hold(by, streak[len(streak)-1])
		}
		return err
	})
	return ok, err
}

func (s *store) HasOutcomes(ctx context.Context, p string) (bool, error) {
	if err := s.read(ctx, "HasOutcomes", p); err != nil {
		return false, err
	}
	return s.m.HasOutcomes(ctx, p)
}

func (s *store) Claim(ctx context.Context, n pipeline.Notification, now time.Time, lease time.Duration) (ok int, err error) {
	err = s.write(ctx, "", "Claim", n.Key(), func() (err error) {
		ok, err = s.m.Claim(ctx, n, now, lease)
		return err
	})
	return ok, err
}

func (s *store) Sent(ctx context.Context, n pipeline.Notification, now time.Time) error {
	err := s.write(ctx, "", "Sent", n.Key(), func() error { return s.m.Sent(ctx, n, now) })
	s.unrecorded(ctx, n, err)
	return err
}

func (s *store) Release(ctx context.Context, n pipeline.Notification, r pipeline.Retry) error {
	err := s.write(ctx, "", "Release", n.Key(), func() error { return s.m.Release(ctx, n, r) })
	s.unrecorded(ctx, n, err)
	return err
}

func (s *store) ChannelSent(ctx context.Context, n pipeline.Notification, channel string, now time.Time) error {
	err := s.write(ctx, channel, "ChannelSent", n.Key()+"|"+channel, func() error { return s.m.ChannelSent(ctx, n, channel, now) })
	if err != nil {
		if kl := killOf(ctx); kl != nil {
			kl.mu.Lock()
			kl.unmarked[channel] = true
			kl.mu.Unlock()
		}
	}
	return err
}

// unrecorded notes the documented at-least-once case: a channel delivered, its own mark failed,
// and the write that should have recorded it with the claim (Sent or Release) failed too, or
// the function was killed before it.
func (s *store) unrecorded(ctx context.Context, n pipeline.Notification, err error) {
	kl := killOf(ctx)
	if err == nil || kl == nil {
		return
	}
	kl.mu.Lock()
	defer kl.mu.Unlock()
	for ch := range kl.unmarked {
		s.rcv.mark(ch, n)
	}
}

func (s *store) FromStream(ctx context.Context, rec events.DynamoDBEventRecord) (pipeline.Queued, bool, error) {
	if err := s.read(ctx, "FromStream", rec.Change.Keys["pk"].String()); err != nil {
		return pipeline.Queued{}, false, err
	}
	return s.m.FromStream(ctx, rec)
}

func (s *store) Queued(ctx context.Context, n pipeline.Notification) (pipeline.Queued, error) {
	if err := s.read(ctx, "Queued", n.Key()); err != nil {
		return pipeline.Queued{}, err
	}
	return s.m.Queued(ctx, n)
}

func (s *store) ListSince(ctx context.Context, p string, since time.Time) ([]pipeline.Run, error) {
	if err := s.read(ctx, "ListSince", p); err != nil {
		return nil, err
	}
	return s.m.ListSince(ctx, p, since)
}

func (s *store) RememberForeign(ctx context.Context, id string) error {
	return s.write(ctx, "", "RememberForeign", id, func() error { return s.m.RememberForeign(ctx, id) })
}

func (s *store) ForeignPipelines(ctx context.Context) ([]string, error) {
	if err := s.read(ctx, "ForeignPipelines", "foreign"); err != nil {
		return nil, err
	}
	return s.m.ForeignPipelines(ctx)
}

func (s *store) Changed(ctx context.Context, p string, since time.Time) ([]pipeline.Change, error) {
	if err := s.read(ctx, "Changed", p); err != nil {
		return nil, err
	}
	return s.m.Changed(ctx, p, since)
}

func (s *store) Checkpoint(ctx context.Context, p string) (pipeline.Checkpoint, error) {
	if err := s.read(ctx, "Checkpoint", p); err != nil {
		return pipeline.Checkpoint{}, err
	}
	return s.m.Checkpoint(ctx, p)
}

func (s *store) SaveCheckpoint(ctx context.Context, p string, cp pipeline.Checkpoint) error {
	return s.write(ctx, "", "SaveCheckpoint", p, func() error { return s.m.SaveCheckpoint(ctx, p, cp) })
}

func (s *store) Requeue(ctx context.Context, cutoff, now time.Time) (n int, err error) {
	err = s.write(ctx, "", "Requeue", "pending", func() (err error) {
		n, err = s.m.Requeue(ctx, cutoff, now)
		return err
	})
	return n, err
}

// outbox is runstore.MemoryOutbox behind the injector.
type outbox struct{ s *store }

func (o outbox) Dispatch(ctx context.Context, n pipeline.Notification, run pipeline.Run) (ok bool, err error) {
	err = o.s.write(ctx, "", "Queue", n.Key(), func() (err error) {
		ok, err = runstore.MemoryOutbox{Store: o.s.m}.Dispatch(ctx, n, run)
		return err
	})
	return ok, err
}

// Push store.
func (s *store) ClaimPush(ctx context.Context, p pipeline.Push, token string, now time.Time, lease time.Duration) (c pipeline.PushClaim, err error) {
	err = s.write(ctx, "", "ClaimPush", p.CommitID, func() (err error) {
		c, err = s.m.ClaimPush(ctx, p, token, now, lease)
		return err
	})
	return c, err
}

func (s *store) MarkPushStarted(ctx context.Context, p pipeline.Push, id string, now time.Time) error {
	return s.write(ctx, "", "MarkPushStarted", p.CommitID, func() error { return s.m.MarkPushStarted(ctx, p, id, now) })
}

func (s *store) MarkPushSkipped(ctx context.Context, p pipeline.Push, reason string, now time.Time) error {
	return s.write(ctx, "", "MarkPushSkipped", p.CommitID, func() error { return s.m.MarkPushSkipped(ctx, p, reason, now) })
}

func (s *store) ReleasePush(ctx context.Context, p pipeline.Push) error {
	return s.write(ctx, "", "ReleasePush", p.CommitID, func() error { return s.m.ReleasePush(ctx, p) })
}

func (s *store) RecordSkip(ctx context.Context, p pipeline.Push, reason string, now time.Time) error {
	return s.write(ctx, "", "RecordSkip", p.CommitID, func() error { return s.m.RecordSkip(ctx, p, reason, now) })
}

func (s *store) RecordPush(ctx context.Context, k pipeline.Key, c pipeline.Commit) error {
	return s.write(ctx, "", "RecordPush", c.ID, func() error { return s.m.RecordPush(ctx, k, c) })
}

// codePipeline is the fake CodePipeline: it answers from the ground truth at the simulated now.
type codePipeline struct {
	in     *injector
	clock  pipeline.Clock
	execs  map[string]*Exec // by execution id
	byCmt  map[string]*Exec // by commit
	starts map[string]map[string]bool
	mu     sync.Mutex
}

func (c *codePipeline) Execution(ctx context.Context, k pipeline.Key) (pipeline.ExecutionView, error) {
	if k := c.in.decide("GetPipelineExecution", k.ExecutionID, readFaults...); k != "" {
		return pipeline.ExecutionView{}, errFault{k}
	}
	e, ok := c.execs[k.ExecutionID]
	if !ok || e.Pipe.Foreign() || e.Pipe.Name != k.Pipeline {
		// CodePipeline answers for its own account and region, and for the pipeline asked.
		return pipeline.ExecutionView{}, fmt.Errorf("execution %s: %w", k.ExecutionID, pipeline.ErrNotFound)
	}
	return e.view(c.clock.Now()), nil
}

// Started is ListPipelineExecutions: the pipeline's executions that had started by now, and
// at or after since, latest first.
func (c *codePipeline) Started(ctx context.Context, name string, since time.Time) ([]pipeline.ExecutionSummary, error) {
	if k := c.in.decide("ListPipelineExecutions", name, readFaults...); k != "" {
		return nil, errFault{k}
	}
	now := c.clock.Now()
	var out []pipeline.ExecutionSummary
	for _, e := range c.execs {
		if !e.Pipe.Foreign() && e.Pipe.Name == name && !e.Start.After(now) && !e.Start.Before(since) {
			out = append(out, pipeline.ExecutionSummary{ExecutionID: e.ID, State: e.view(now).State, StartTime: e.Start})
		}
	}
	slices.SortFunc(out, func(a, b pipeline.ExecutionSummary) int {
		if c := b.StartTime.Compare(a.StartTime); c != 0 {
			return c
		}
		return strings.Compare(b.ExecutionID, a.ExecutionID)
	})
	return out, nil
}

// Start is StartPipelineExecution: the execution of the commit, the same for every token.
func (c *codePipeline) Start(ctx context.Context, name, commitID, token string) (string, error) {
	if killOf(ctx).dead("") {
		return "", errKilled
	}
	k := c.in.decide("StartPipelineExecution", commitID, FaultThrottle, FaultServer, FaultTimeout)
	if k == FaultThrottle || k == FaultServer {
		return "", errFault{k}
	}
	e, ok := c.byCmt[commitID]
	if !ok {
		return "", fmt.Errorf("no execution for commit %s", commitID)
	}
	c.mu.Lock()
	if c.starts[commitID] == nil {
		c.starts[commitID] = map[string]bool{}
	}
	c.starts[commitID][token] = true
	c.mu.Unlock()
	if k == FaultTimeout {
		return "", errFault{k}
	}
	return e.ID, nil
}

// Recent is ListPipelineExecutions for the push re-drive (pipeLister narrows it to one
// pipeline of one account and region).
func (c *codePipeline) recent(p Pipe, now time.Time) []pipeline.ExecutionSummary {
	c.mu.Lock()
	defer c.mu.Unlock()
	var list []*Exec
	for _, e := range c.execs {
		if e.Pipe != p {
			continue
		}
		// An execution a push starts exists once StartPipelineExecution was called for its
		// commit (by on-push or the re-drive); the others (the pipeline's creation run)
		// from their start.
		if e.Push != nil && len(c.starts[e.Commit]) == 0 || e.Push == nil && e.Start.After(now) {
			continue
		}
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b *Exec) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	out := make([]pipeline.ExecutionSummary, 0, min(len(list), codepipelineapi.RecentPage))
	for _, e := range list[:min(len(list), codepipelineapi.RecentPage)] {
		out = append(out, pipeline.ExecutionSummary{ExecutionID: e.ID, State: e.view(now).State, StartTime: e.Start,
			Trigger: pipeline.Trigger{Type: e.Trigger}, Revisions: []string{e.Commit}})
	}
	return out
}

// pipeLister is ListPipelineExecutions of one pipeline, behind the injector.
type pipeLister struct {
	cp    *codePipeline
	pipe  Pipe
	clock pipeline.Clock
}

func (l pipeLister) Recent(ctx context.Context, name string) ([]pipeline.ExecutionSummary, error) {
	if killOf(ctx).dead("") {
		return nil, errKilled
	}
	if k := l.cp.in.decide("ListPipelineExecutions", pipeKey(l.pipe), readFaults...); k != "" {
		return nil, errFault{k}
	}
	return l.cp.recent(l.pipe, l.clock.Now()), nil
}

// branches is GetBranch of one pipeline's repository: the commit of its latest push.
type branches struct {
	in    *injector
	w     *World
	pipe  Pipe
	clock pipeline.Clock
}

func (b branches) Head(ctx context.Context, repo, branch string) (string, error) {
	if killOf(ctx).dead("") {
		return "", errKilled
	}
	if k := b.in.decide("GetBranch", pipeKey(b.pipe), readFaults...); k != "" {
		return "", errFault{k}
	}
	if e := b.w.head(b.pipe, b.clock.Now()); e != nil {
		return e.Commit, nil
	}
	return "", fmt.Errorf("branch %s of %s: %w", branch, repo, pipeline.ErrNotFound)
}

func pipeKey(p Pipe) string { return p.Account + "/" + p.Region + "/" + p.Name }

// codeCommit is the fake GetCommit.
type codeCommit struct{ in *injector }

func (c codeCommit) GetCommit(ctx context.Context, repo, id string) (pushstart.CommitInfo, error) {
	if k := c.in.decide("GetCommit", id, readFaults...); k != "" {
		return pushstart.CommitInfo{}, errFault{k}
	}
	return pushstart.CommitInfo{Message: "change " + id[:8], AuthorName: "Ana", AuthorEmail: "ana@example.com", AuthorDate: "1772438400 +0000"}, nil
}

// receiver records what reached a channel, and which deliveries are the documented
// at-least-once case (a delivery that landed but whose answer was lost, or whose sender was
// killed right after it).
type receiver struct {
	mu        sync.Mutex
	got       map[string]map[string]int  // channel → notification key → deliveries
	ambiguous map[string]map[string]bool // channel → key → an earlier delivery's answer was lost
	tries     map[string]int             // channel|key → attempts
	holds     map[string]string          // recovering execution → the failed attempt whose recovery it holds
}

func newReceiver() *receiver {
	return &receiver{got: map[string]map[string]int{}, ambiguous: map[string]map[string]bool{}, tries: map[string]int{}, holds: map[string]string{}}
}

// hold records that the success by holds the recovery of the streak ending in failure f, as
// the store's pointer does (runstore's RECOVERER#<execution>): the store moves it when a
// failure learnt later changes by's streak.
func (r *receiver) hold(by string, f pipeline.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holds[by] = failureKey(f.ExecutionID, f.Attempt)
}

// failureKey names one failed attempt.
func failureKey(exec string, attempt int) string { return exec + "#" + strconv.Itoa(attempt) }

func (r *receiver) land(channel, key string, lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got[channel] == nil {
		r.got[channel], r.ambiguous[channel] = map[string]int{}, map[string]bool{}
	}
	r.got[channel][key]++
	if lost {
		r.ambiguous[channel][key] = true
	}
}

// mark makes n's deliveries on channel the documented at-least-once case.
func (r *receiver) mark(channel string, n pipeline.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ambiguous[channel] == nil {
		r.got[channel], r.ambiguous[channel] = map[string]int{}, map[string]bool{}
	}
	r.ambiguous[channel][string(n.Type)+"#"+n.ExecutionID] = true
}

func (r *receiver) try(channel, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries[channel+"|"+key]++
}

type noteKey struct{}

// channel wraps a real notify.Channel so that the fakes behind it know which notification a
// request carries (the request's context).
type channel struct{ notify.Channel }

func (c channel) Send(ctx context.Context, m notify.Message) error {
	return c.Channel.Send(context.WithValue(ctx, noteKey{}, messageKey(m)), m)
}

func messageKey(m notify.Message) string {
	return string(m.Type) + "#" + m.ExecutionID
}

// slackTransport is Slack's incoming webhook, in memory, behind the real notify.Slack poster.
type slackTransport struct {
	in  *injector
	rcv *receiver
}

func (t slackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key, _ := req.Context().Value(noteKey{}).(string)
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	t.rcv.try(notify.ChannelSlack, key)
	answer := func(code int, body string, h http.Header) *http.Response {
		if h == nil {
			h = http.Header{}
		}
		return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewBufferString(body)), Request: req}
	}
	kl := killOf(req.Context())
	if kl.dead(notify.ChannelSlack) {
		return nil, errKilled
	}
	switch t.in.decide("SlackPost", key, FaultSlack429, FaultSlack500, FaultTimeout, FaultSlackLost, FaultKill) {
	case FaultSlack429:
		return answer(http.StatusTooManyRequests, "rate_limited", http.Header{"Retry-After": {"1"}}), nil
	case FaultSlack500:
		return answer(http.StatusInternalServerError, "rollup_error", nil), nil
	case FaultTimeout:
		return nil, fmt.Errorf("injected: Slack did not answer: %w", context.DeadlineExceeded)
	case FaultSlackLost:
		t.rcv.land(notify.ChannelSlack, key, true)
		return nil, fmt.Errorf("injected: Slack's answer was lost: %w", context.DeadlineExceeded)
	case FaultKill:
		t.rcv.land(notify.ChannelSlack, key, true)
		kl.kill(notify.ChannelSlack)
		return nil, errKilled
	}
	t.rcv.land(notify.ChannelSlack, key, false)
	return answer(http.StatusOK, "ok", nil), nil
}

// snsAPI is SNS Publish, in memory, behind the real notify.SNS.
type snsAPI struct {
	in  *injector
	rcv *receiver
}

func (a snsAPI) Publish(ctx context.Context, _ *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	key, _ := ctx.Value(noteKey{}).(string)
	a.rcv.try(notify.ChannelSNS, key)
	kl := killOf(ctx)
	if kl.dead(notify.ChannelSNS) {
		return nil, errKilled
	}
	switch k := a.in.decide("SNSPublish", key, FaultThrottle, FaultServer, FaultTimeout, FaultKill); k {
	case FaultThrottle, FaultServer:
		return nil, errFault{k}
	case FaultTimeout:
		a.rcv.land(notify.ChannelSNS, key, true)
		return nil, errFault{k}
	case FaultKill:
		a.rcv.land(notify.ChannelSNS, key, true)
		kl.kill(notify.ChannelSNS)
		return nil, errFault{k}
	}
	a.rcv.land(notify.ChannelSNS, key, false)
	return &sns.PublishOutput{}, nil
}
