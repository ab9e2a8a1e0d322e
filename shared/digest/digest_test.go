package digest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Monday 7 Dec 2026, 09:00 UTC: the digest reports 2026-W49 (Mon 30 Nov – Mon 7 Dec) against
// 2026-W48 (Mon 23 Nov – Mon 30 Nov).
var monday = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

func at(month time.Month, day, h, m int) time.Time {
	return time.Date(2026, month, day, h, m, 0, 0, time.UTC)
}

var (
	all     = []string{"Source", "CreateUpdatePipeline", "BuildAndTest", "CreateUpdateLambda"}
	toBuild = []string{"Source", "CreateUpdatePipeline", "BuildAndTest"}
)

func runOf(pl, id, commit string, start, end time.Time, status pipeline.Status, stages ...string) pipeline.Run {
	r := pipeline.Run{Pipeline: pl, ExecutionID: id, StartedAt: start, EndedAt: end,
		Progress: pipeline.Progress{Status: status, Attempt: 1, At: end},
		Commit:   pipeline.Commit{ID: commit}, Stages: map[string]pipeline.Stage{}}
	for _, s := range stages {
		r.Stages[s] = pipeline.Stage{Name: s}
	}
	r.Outcomes = []pipeline.Outcome{{Pipeline: pl, ExecutionID: id, Attempt: 1, Status: status, At: end}}
	return r
}

// history: shop ran in both weeks; quiet only in the week before; idle never.
func history() []pipeline.Run {
	return []pipeline.Run{
		runOf("shop-pipeline", "r0", "c0", at(11, 24, 9, 0), at(11, 24, 9, 15), pipeline.StatusSucceeded, all...),
		runOf("shop-pipeline", "r1", "c1", at(11, 30, 10, 0), at(11, 30, 10, 10), pipeline.StatusFailed, toBuild...),
		runOf("shop-pipeline", "r2", "c2", at(11, 30, 12, 0), at(11, 30, 12, 20), pipeline.StatusSucceeded, all...),
		runOf("shop-pipeline", "r3", "c3", at(12, 2, 9, 0), at(12, 2, 9, 30), pipeline.StatusSucceeded, all...),
		runOf("quiet-pipeline", "q0", "d0", at(11, 25, 9, 0), at(11, 25, 9, 20), pipeline.StatusSucceeded, all...),
	}
}

type runs []pipeline.Run

func (rs runs) ListSince(_ context.Context, name string, since time.Time) ([]pipeline.Run, error) {
	var out []pipeline.Run
	for _, r := range rs {
		if r.Pipeline == name && !r.Began().Before(since) {
			out = append(out, r)
		}
	}
	return out, nil
}

// claims is the runs table's claim items, as runstore.Dynamo keeps them: a lease, a state,
// the channels that delivered.
type claims struct {
	mu    sync.Mutex
	items map[string]*claim
}

type claim struct {
	attempts int
	state    string
	until    time.Time
	channels map[string]bool
}

func newClaims() *claims { return &claims{items: map[string]*claim{}} }

func (c *claims) Claim(_ context.Context, n pipeline.Notification, now time.Time, lease time.Duration) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[n.Key()]
	if ok && (it.state != pipeline.ClaimPending || now.Before(it.until)) {
		return 0, nil
	}
	if !ok {
		it = &claim{channels: map[string]bool{}}
		c.items[n.Key()] = it
	}
	it.state, it.until = pipeline.ClaimPending, now.Add(lease)
	it.attempts++
	return it.attempts, nil
}

func (c *claims) Sent(_ context.Context, n pipeline.Notification, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[n.Key()].state = pipeline.ClaimSent
	return nil
}

func (c *claims) Release(_ context.Context, n pipeline.Notification, r pipeline.Retry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.items[n.Key()]
	it.until = r.RetryAt
	for _, ch := range r.Delivered {
		it.channels[ch] = true
	}
	return nil
}

func (c *claims) ChannelSent(_ context.Context, n pipeline.Notification, channel string, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[n.Key()].channels[channel] = true
	return nil
}

func (c *claims) Queued(_ context.Context, n pipeline.Notification) (pipeline.Queued, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[n.Key()]
	if !ok {
		return pipeline.Queued{}, pipeline.ErrNotFound
	}
	ch := map[string]bool{}
	for k, v := range it.channels {
		ch[k] = v
	}
	return pipeline.Queued{Notification: n, State: it.state, Channels: ch}, nil
}

// channel records the digests it delivered; fail makes its next sends fail.
type channel struct {
	name string
	mu   sync.Mutex
	got  []dora.Digest
	fail int
}

func (c *channel) Name() string { return c.name }

func (c *channel) SendDigest(_ context.Context, d dora.Digest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail > 0 {
		c.fail--
		return errors.New("slack is down")
	}
	c.got = append(c.got, d)
	return nil
}

func (c *channel) projects() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.got {
		out = append(out, d.Project+" "+d.Week)
	}
	return out
}

type fixture struct {
	now         time.Time
	claims      *claims
	slack, sns  *channel
	declaredSet []pipeline.Project
}

func newFixture() *fixture {
	return &fixture{now: monday, claims: newClaims(), slack: &channel{name: "slack"}, sns: &channel{name: "sns"},
		declaredSet: []pipeline.Project{{Name: "idle"}, {Name: "quiet"}, {Name: "shop"}}}
}

func (f *fixture) sender(rs []pipeline.Run) *Sender {
	return &Sender{Declared: f.declaredSet, Runs: runs(rs), Claims: f.claims, Marks: f.claims,
		Channels: []Channel{f.slack, f.sns}, Rule: dora.DefaultRule(),
		Clock: pipeline.ClockFunc(func() time.Time { return f.now }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestOneDigestPerProjectAndWeekWhenFiredTwice(t *testing.T) {
	f := newFixture()
	rep, err := f.sender(history()).Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Report{Week: "2026-W49", Sent: []string{"shop"}, Quiet: []string{"idle", "quiet"}, Done: []string{}}, rep)

	// The schedule fires again (EventBridge delivers at least once), from a second instance,
	// later the same week: nothing more goes out.
	f.now = monday.Add(3*24*time.Hour + 5*time.Hour)
	rep, err = f.sender(history()).Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"shop"}, rep.Done)
	assert.Empty(t, rep.Sent)

	assert.Equal(t, []string{"shop 2026-W49"}, f.slack.projects())
	assert.Equal(t, []string{"shop 2026-W49"}, f.sns.projects())
	assert.Equal(t, pipeline.ClaimSent, f.claims.items["digest#shop-pipeline#2026-W49"].state, "claimed under digest#<pipeline>#<ISO week>")

	// The next week's schedule: shop had no run in W50, so no message.
	f.now = monday.Add(7 * 24 * time.Hour)
	rep, err = f.sender(history()).Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"idle", "quiet", "shop"}, rep.Quiet)
	assert.Len(t, f.slack.got, 1)
}

func TestNumbersAreDoraComputeOnAHandCheckedHistory(t *testing.T) {
	f := newFixture()
	_, err := f.sender(history()).Send(context.Background())
	require.NoError(t, err)
	require.Len(t, f.sns.got, 1)
	d := f.sns.got[0]

	assert.Equal(t, "shop", d.Project)
	assert.Equal(t, "shop-pipeline", d.Pipeline)
	assert.Equal(t, dora.Window{Since: at(11, 30, 0, 0), Until: at(12, 7, 0, 0)}, d.Current.Window)
	assert.Equal(t, dora.Window{Since: at(11, 23, 0, 0), Until: at(11, 30, 0, 0)}, d.Previous.Window)

	// W49 by hand: r2 and r3 deployed (2 in 7 days); c1 waited for r2 (10:00 → 12:20, 2h20m),
	// c2 20m, c3 30m: median 30m; 1 of 3 decisive runs failed; r1's failure at 10:10 was
	// restored by r2 at 12:20 (2h10m).
	c := d.Current
	assert.Equal(t, 2, c.Deployments)
	assert.InDelta(t, 2.0/7, c.DeploymentsPerDay, 1e-9)
	assert.Equal(t, 3, c.LeadTime.Count)
	assert.Equal(t, 30*time.Minute, c.LeadTime.Median)
	assert.Equal(t, 3, c.DecisiveRuns)
	assert.Equal(t, 1, c.FailedRuns)
	assert.InDelta(t, 1.0/3, c.ChangeFailureRate, 1e-9)
	assert.Equal(t, 1, c.TimeToRestore.Count)
	assert.Equal(t, 2*time.Hour+10*time.Minute, c.TimeToRestore.Median)

	// W48 by hand: r0 deployed c0 in 15m; nothing failed.
	p := d.Previous
	assert.Equal(t, 1, p.Deployments)
	assert.Equal(t, 15*time.Minute, p.LeadTime.Median)
	assert.Equal(t, 1, p.DecisiveRuns)
	assert.Equal(t, 0, p.FailedRuns)
	assert.Equal(t, 0, p.TimeToRestore.Count)

	// And exactly what dora.Compute says over the same runs.
	keys := dora.Compute(history(), c.Window, dora.DefaultRule())
	require.Len(t, keys, 2)
	assert.Equal(t, keys[1], c)
}

func TestISOWeekBoundary(t *testing.T) {
	for _, c := range []struct {
		at    time.Time
		week  string
		since time.Time
	}{
		{time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC), "2026-W49", at(11, 30, 0, 0)},
		{time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "2026-W50", at(12, 7, 0, 0)},
		// Not UTC: the week is UTC's.
		{time.Date(2026, 12, 7, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "2026-W49", at(11, 30, 0, 0)},
		// 2026 has 53 ISO weeks; 1 Jan 2027 (a Friday) is in its last.
		{time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC), "2026-W53", at(12, 28, 0, 0)},
		{time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), "2027-W01", time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)},
	} {
		since, until, week := pipeline.ISOWeek(c.at)
		assert.Equal(t, c.week, week, c.at)
		assert.Equal(t, c.since, since, c.at)
		assert.Equal(t, 7*24*time.Hour, until.Sub(since))
	}

	// A run that ended on Sunday 23:59:59 is in W49's digest; one that ended at Monday 00:00
	// is in W50's.
	f := newFixture()
	f.declaredSet = []pipeline.Project{{Name: "late"}, {Name: "next"}}
	_, err := f.sender([]pipeline.Run{
		runOf("late-pipeline", "l1", "x", at(12, 6, 23, 0), time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC), pipeline.StatusSucceeded, all...),
		runOf("next-pipeline", "n1", "y", at(12, 6, 23, 50), at(12, 7, 0, 0), pipeline.StatusSucceeded, all...),
	}).Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"late 2026-W49"}, f.sns.projects())
	assert.Equal(t, 1, f.sns.got[0].Current.Deployments)
}

func TestSlackFailureRetriedWithoutDuplicatingSNS(t *testing.T) {
	f := newFixture()
	f.slack.fail = 1
	_, err := f.sender(history()).Send(context.Background())
	require.ErrorContains(t, err, "slack is down")
	assert.Empty(t, f.slack.got)
	assert.Len(t, f.sns.got, 1, "SNS delivered on the first try")

	// Lambda retries the invocation: the claim was handed back, SNS's mark stays.
	rep, err := f.sender(history()).Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"shop"}, rep.Sent)
	assert.Len(t, f.slack.got, 1)
	assert.Len(t, f.sns.got, 1, "no second e-mail")

	rep, err = f.sender(history()).Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"shop"}, rep.Done)
	assert.Len(t, f.slack.got, 1)
}

func TestTableDeclaredProjects(t *testing.T) {
	f := newFixture()
	f.declaredSet = nil
	s := f.sender(history())
	s.Projects = tableProjects{{Project: pipeline.Project{Name: "shop"}, Declared: true}}
	rep, err := s.Send(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"shop"}, rep.Sent)
}

type tableProjects []pipeline.ProjectDeclaration

func (p tableProjects) ListProjects(context.Context) ([]pipeline.ProjectDeclaration, error) {
	return p, nil
}

func TestIsRequest(t *testing.T) {
	assert.True(t, IsRequest([]byte(Payload)))
	assert.False(t, IsRequest([]byte(`{"Records":[]}`)))
	assert.False(t, IsRequest([]byte(`not json`)))
}
