package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults for Slack's zero fields. With them a message that Slack keeps refusing is given up
// after about 5 × 10 s of attempts and 7.5 s of waits, well inside a one-minute function timeout;
// the context's deadline is honoured whatever they say.
const (
	DefaultSlackMaxAttempts    = 5
	DefaultSlackAttemptTimeout = 10 * time.Second
	DefaultSlackBaseDelay      = 500 * time.Millisecond
	DefaultSlackMaxDelay       = 8 * time.Second
	DefaultSlackMaxRetryAfter  = 30 * time.Second
)

// Slack posts messages to a Slack incoming webhook.
//
// Post retries what a retry can fix within the invocation, and returns an error for what it
// could not deliver, so that the caller lets Lambda retry the event. The webhook URL is a secret
// (anyone holding it can post to the channel): it never appears in an error.
type Slack struct {
	// URL is the webhook URL, resolved once per cold start (WebhookURLFrom).
	URL string
	// Client sends the requests; nil means a client with no timeout of its own (each attempt
	// has AttemptTimeout).
	Client *http.Client
	// MaxAttempts bounds the attempts per Post, the first included.
	MaxAttempts int
	// AttemptTimeout bounds one attempt: a hanging connection must not eat the invocation.
	AttemptTimeout time.Duration
	// BaseDelay and MaxDelay shape the exponential backoff between attempts (with jitter).
	BaseDelay, MaxDelay time.Duration
	// MaxRetryAfter caps the wait a 429's Retry-After asks for.
	MaxRetryAfter time.Duration
	// Sleep waits d or until ctx is done (tests record the waits instead); nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// PermanentError is Slack's refusal of a message that no retry will change: a 4xx other than
// 429 — 400 invalid_payload or invalid_blocks (the payload is wrong), 403 action_prohibited,
// 404 channel_not_found, 410 channel_is_archived (the webhook is misconfigured) — or a webhook
// URL that cannot be requested at all.
type PermanentError struct {
	StatusCode int // 0 when no request could be made
	// Reason is Slack's error word from the response body, e.g. "invalid_blocks".
	Reason string
}

func (e *PermanentError) Error() string {
	if e.StatusCode == 0 {
		return "slack webhook: " + e.Reason + " (a retry will not help)"
	}
	return fmt.Sprintf("slack webhook refused the message permanently (a retry will not help): HTTP %d %s", e.StatusCode, e.Reason)
}

// IsPermanent reports whether err, or an error it wraps, is a *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// statusError is a response a retry may fix (429, 5xx).
type statusError struct {
	code       int
	reason     string
	retryAfter time.Duration // from a 429's Retry-After; 0 when absent
}

func (e *statusError) Error() string {
	return fmt.Sprintf("slack webhook answered HTTP %d %s", e.code, e.reason)
}

// Post sends a payload (RenderSlack's) to the webhook. It returns nil once Slack answers 200.
// It retries 429 (after its Retry-After, capped at MaxRetryAfter), 5xx, timeouts and connection
// errors with exponential backoff and jitter, up to MaxAttempts, never waiting past ctx's
// deadline; it returns a *PermanentError at once for any other 4xx. Slack may have received a
// message whose attempt timed out, so a retry can post it twice: at least once, not exactly once.
func (s *Slack) Post(ctx context.Context, payload []byte) error {
	if s.URL == "" {
		return errors.New("post to Slack: no webhook URL configured")
	}
	maxAttempts := orDefault(s.MaxAttempts, DefaultSlackMaxAttempts)
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx, payload)
		if err == nil {
			return nil
		}
		if IsPermanent(err) {
			return fmt.Errorf("post to Slack: %w", err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("post to Slack: stopped after %d attempts: %w", attempt, errors.Join(ctx.Err(), err))
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("post to Slack: giving up after %d attempts: %w", attempt, err)
		}
		wait := s.backoff(attempt)
		var se *statusError
		if errors.As(err, &se) && se.retryAfter > 0 {
			wait = min(se.retryAfter, orDefault(s.MaxRetryAfter, DefaultSlackMaxRetryAfter))
		}
		// A context's deadline is wall-clock time, so the wait is compared with it on that clock.
		if deadline, ok := ctx.Deadline(); ok && wait > time.Until(deadline) {
			return fmt.Errorf("post to Slack: not retrying after %d attempts: waiting %s would pass the deadline: %w", attempt, wait, err)
		}
		if serr := s.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("post to Slack: stopped after %d attempts: %w", attempt, errors.Join(serr, err))
		}
	}
}

// attempt makes one POST, bounded by AttemptTimeout, and classifies its outcome: nil, a
// *PermanentError, a *statusError, or a (redacted) transport error.
func (s *Slack) attempt(ctx context.Context, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, orDefault(s.AttemptTimeout, DefaultSlackAttemptTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(payload))
	if err != nil {
		// The parse error quotes the URL; its cause alone does not. No retry can fix a bad URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return s.redact(&PermanentError{Reason: "the webhook URL is not usable: " + err.Error()})
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return s.redact(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil && resp.StatusCode/100 != 2 {
		return s.redact(fmt.Errorf("read the webhook's HTTP %d answer: %w", resp.StatusCode, err))
	}
	// Drain what is left so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	reason := fitBytes(oneLine(string(body)), 200)
	switch code := resp.StatusCode; {
	case code/100 == 2:
		return nil
	case code == http.StatusTooManyRequests:
		return &statusError{code: code, reason: reason, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case code/100 == 4:
		return &PermanentError{StatusCode: code, Reason: reason}
	default:
		return &statusError{code: code, reason: reason}
	}
}

// retryAfter reads a Retry-After given in seconds (what Slack sends); 0 when absent or not a
// number, which falls back to the backoff.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 24*3600)) * time.Second
}

// backoff is the wait after the given failed attempt: BaseDelay doubled per attempt, capped at
// MaxDelay, with "equal jitter" (half fixed, half random) so that concurrent senders spread out.
func (s *Slack) backoff(attempt int) time.Duration {
	d := orDefault(s.BaseDelay, DefaultSlackBaseDelay)
	maxDelay := orDefault(s.MaxDelay, DefaultSlackMaxDelay)
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + rand.N(d/2+1)
}

func (s *Slack) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redact removes the webhook URL from err: net/http puts the full URL in every *url.Error, and
// its path is the secret. The scheme and host stay, so that the error still says where.
func (s *Slack) redact(err error) error {
	shown := redactedURL(s.URL)
	var ue *url.Error
	if errors.As(err, &ue) && ue == err {
		err = &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
	}
	msg := err.Error()
	if !containsSecret(msg, s.URL) {
		return err
	}
	// The URL is still in there (in a wrapped error): keep the text, redacted, and lose the chain
	// rather than the secret. Deadline and cancellation stay recognisable.
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, strconv.Quote(s.URL), shown), s.URL, shown)
	if u, perr := url.Parse(s.URL); perr == nil && len(u.Path) > 1 {
		msg = strings.ReplaceAll(msg, u.Path, "/…")
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", msg, context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", msg, context.Canceled)
	}
	return errors.New(msg)
}

func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(redacted webhook URL)"
	}
	return u.Scheme + "://" + u.Host + "/…(redacted)"
}

// containsSecret reports whether text holds the webhook URL or its path (the secret part).
func containsSecret(text, raw string) bool {
	if raw == "" {
		return false
	}
	if strings.Contains(text, raw) || strings.Contains(text, strconv.Quote(raw)) {
		return true
	}
	u, err := url.Parse(raw)
	return err == nil && len(u.Path) > 1 && strings.Contains(text, u.Path)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
