package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
)

// sleeps records the waits Post asks for instead of waiting, so the tests take no time.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newSlack(r *notifytest.SlackReceiver, sl *sleeps) *Slack {
	return &Slack{URL: r.URL(), Client: r.Client(), Sleep: sl.sleep, AttemptTimeout: 2 * time.Second}
}

func payload(t *testing.T) []byte {
	t.Helper()
	c := goldenCases()[0]
	p, err := RenderSlack(Compose(c.n, c.run, c.d))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), notifytest.WebhookSecret) {
		t.Errorf("the error leaks the webhook URL: %v", err)
	}
}

func TestSlackDeliversOnceAfterShortOutage(t *testing.T) {
	r := notifytest.NewSlack(t)
	r.FailNext(notifytest.RollupError, notifytest.Unavailable)
	var sl sleeps
	p := payload(t)
	if err := newSlack(r, &sl).Post(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Posts()); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	if d := r.Delivered(); len(d) != 1 || string(d[0]) != string(p) {
		t.Errorf("delivered %d messages, want the payload once", len(d))
	}
	if w := sl.all(); len(w) != 2 || w[0] <= 0 || w[1] <= 0 {
		t.Errorf("waits %v, want two backoffs", w)
	}
}

func TestSlackGivesUpAfterLongOutage(t *testing.T) {
	r := notifytest.NewSlack(t)
	for range 10 {
		r.FailNext(notifytest.RollupError)
	}
	var sl sleeps
	s := newSlack(r, &sl)
	s.MaxAttempts = 4
	err := s.Post(context.Background(), payload(t))
	if err == nil || IsPermanent(err) {
		t.Fatalf("want a retryable error, got %v", err)
	}
	if !strings.Contains(err.Error(), "giving up after 4 attempts") || !strings.Contains(err.Error(), "500 rollup_error") {
		t.Errorf("error %q should say how many attempts and the last answer", err)
	}
	if len(r.Posts()) != 4 || len(r.Delivered()) != 0 {
		t.Errorf("%d posts, %d delivered", len(r.Posts()), len(r.Delivered()))
	}
	assertNoSecret(t, err)
}

func TestSlackBackoffGrowsAndIsCapped(t *testing.T) {
	s := &Slack{BaseDelay: 100 * time.Millisecond, MaxDelay: 800 * time.Millisecond}
	for attempt, limit := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 9: 800 * time.Millisecond} {
		for range 50 {
			if d := s.backoff(attempt); d < limit/2 || d > limit {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, limit/2, limit)
			}
		}
	}
}

func TestSlackHonoursRetryAfter(t *testing.T) {
	r := notifytest.NewSlack(t)
	r.FailNext(notifytest.Reply{Status: 429, Body: "rate_limited", RetryAfter: "2"}, notifytest.Reply{Status: 429, RetryAfter: "3600"})
	var sl sleeps
	s := newSlack(r, &sl)
	s.MaxRetryAfter = 20 * time.Second
	if err := s.Post(context.Background(), payload(t)); err != nil {
		t.Fatal(err)
	}
	if w := sl.all(); len(w) != 2 || w[0] != 2*time.Second || w[1] != 20*time.Second {
		t.Errorf("waits %v, want [2s 20s] (Retry-After, then capped)", w)
	}
	if len(r.Delivered()) != 1 {
		t.Errorf("delivered %d", len(r.Delivered()))
	}
}

func TestSlackDoesNotWaitPastTheDeadline(t *testing.T) {
	r := notifytest.NewSlack(t)
	r.FailNext(notifytest.Reply{Status: 429, Body: "rate_limited", RetryAfter: "30"})
	var sl sleeps
	// 20 s left: a 30 s wait would outlive the invocation, so Post returns at once and lets
	// Lambda retry the event later.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := newSlack(r, &sl).Post(ctx, payload(t))
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "would pass the deadline") || !strings.Contains(err.Error(), "429") {
		t.Fatalf("want a retryable deadline error, got %v", err)
	}
	if len(sl.all()) != 0 || len(r.Posts()) != 1 {
		t.Errorf("waited %v and posted %d times; want no wait, one post", sl.all(), len(r.Posts()))
	}
}

func TestSlackRetriesAHangingAttempt(t *testing.T) {
	r := notifytest.NewSlack(t)
	r.FailNext(notifytest.Hang)
	var sl sleeps
	s := newSlack(r, &sl)
	s.AttemptTimeout = 50 * time.Millisecond // the hanging attempt ends at this timeout
	if err := s.Post(context.Background(), payload(t)); err != nil {
		t.Fatal(err)
	}
	posts := r.Posts()
	if len(posts) != 2 || posts[0].Status != 0 || posts[1].Status != http.StatusOK {
		t.Errorf("posts %+v, want a hung one then a delivered one", posts)
	}
}

func TestSlackPermanentErrorsAreNotRetried(t *testing.T) {
	for _, reply := range []notifytest.Reply{
		notifytest.InvalidBlocks, notifytest.ChannelGone, notifytest.NoChannel,
		{Status: 403, Body: "action_prohibited"}, {Status: 400, Body: "invalid_payload"},
	} {
		t.Run(reply.Body, func(t *testing.T) {
			r := notifytest.NewSlack(t)
			r.FailNext(reply)
			var sl sleeps
			err := newSlack(r, &sl).Post(context.Background(), payload(t))
			var perm *PermanentError
			if !errors.As(err, &perm) || perm.StatusCode != reply.Status || perm.Reason != reply.Body {
				t.Fatalf("want a PermanentError for %d %s, got %v", reply.Status, reply.Body, err)
			}
			if !strings.Contains(err.Error(), "permanently") || !strings.Contains(err.Error(), reply.Body) {
				t.Errorf("error %q should say it is permanent and why", err)
			}
			if len(r.Posts()) != 1 || len(sl.all()) != 0 {
				t.Errorf("%d posts, %d waits; want one post, no retry", len(r.Posts()), len(sl.all()))
			}
			assertNoSecret(t, err)
		})
	}
}

// The receiver checks payloads as Slack does: one over a limit is refused, permanently.
func TestSlackReceiverRefusesWhatSlackRefuses(t *testing.T) {
	r := notifytest.NewSlack(t)
	var sl sleeps
	long := `{"text":"x","blocks":[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("h", 151) + `"}}]}`
	err := newSlack(r, &sl).Post(context.Background(), []byte(long))
	if !IsPermanent(err) || !strings.Contains(err.Error(), "invalid_blocks") {
		t.Fatalf("got %v", err)
	}
}

func TestSlackErrorsNeverContainTheURL(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	deadURL := closed.URL + notifytest.WebhookPath
	closed.Close()
	var sl sleeps

	cases := map[string]*Slack{
		"connection refused": {URL: deadURL, Sleep: sl.sleep, MaxAttempts: 2},
		"malformed URL":      {URL: "https://hooks.slack.com/services/" + notifytest.WebhookSecret + "/\x7f bad", Sleep: sl.sleep, MaxAttempts: 1},
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.Post(context.Background(), []byte(`{"text":"x"}`))
			if err == nil {
				t.Fatal("want an error")
			}
			assertNoSecret(t, err)
			if name == "connection refused" && !strings.Contains(err.Error(), "redacted") {
				t.Errorf("error %q should show where the URL was redacted", err)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		r := notifytest.NewSlack(t)
		r.FailNext(notifytest.Hang)
		ctx, cancel := context.WithCancel(context.Background())
		s := newSlack(r, &sl)
		s.Sleep = func(context.Context, time.Duration) error { t.Error("no wait after cancellation"); return nil }
		go func() {
			for len(r.Posts()) == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		err := s.Post(ctx, payload(t))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want context.Canceled, got %v", err)
		}
		assertNoSecret(t, err)
	})
}

func TestSlackWithoutURL(t *testing.T) {
	if err := (&Slack{}).Post(context.Background(), []byte("{}")); err == nil {
		t.Fatal("want an error")
	}
}
