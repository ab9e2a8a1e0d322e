// Package notifytest holds test stand-ins for the notification channels: a Slack incoming
// webhook receiver and an SNS endpoint that the real aws-sdk-go-v2 client talks to. Both are
// httptest servers on loopback that record what they receive, check it against the limits the
// real services enforce (docs/aws-behaviour.md, sections SNS and Slack incoming webhooks), and
// fail on demand. Import it from tests only.
package notifytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"unicode/utf8"
)

// WebhookPath is the path of the receiver's webhook: shaped like a real one, with a recognisable
// secret part so that tests can assert it never leaks.
const WebhookPath = "/services/T00000000/B00000000/" + WebhookSecret

// WebhookSecret is the secret part of the receiver's webhook URL.
const WebhookSecret = "notarealsecretXq7Lm2Zp9Wd4"

// Reply is what the receiver answers to one post. The zero Reply is Slack's success, 200 "ok".
type Reply struct {
	Status     int
	Body       string
	RetryAfter string // the Retry-After header, e.g. "2"
	// Hang holds the response until the client gives up (its timeout or cancellation).
	Hang bool
}

// Replies Slack gives: "Changes to errors for incoming webhooks",
// https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks; 429 with
// Retry-After, "Rate limits", https://api.slack.com/docs/rate-limits; invalid_blocks is observed
// (docs/aws-behaviour.md, Slack incoming webhooks).
var (
	RateLimited   = Reply{Status: http.StatusTooManyRequests, Body: "rate_limited", RetryAfter: "1"}
	RollupError   = Reply{Status: http.StatusInternalServerError, Body: "rollup_error"}
	Unavailable   = Reply{Status: http.StatusServiceUnavailable, Body: "service_unavailable"}
	InvalidBlocks = Reply{Status: http.StatusBadRequest, Body: "invalid_blocks"}
	ChannelGone   = Reply{Status: http.StatusGone, Body: "channel_is_archived"}
	NoChannel     = Reply{Status: http.StatusNotFound, Body: "channel_not_found"}
	Hang          = Reply{Hang: true}
)

// Post is one request the receiver got, and what it answered.
type Post struct {
	Body   []byte
	Status int // 0 when the client gave up before the answer (Hang)
}

// SlackReceiver is a Slack incoming webhook on loopback. A payload that breaks Slack's rules is
// refused as Slack would (400 invalid_payload / invalid_blocks); otherwise the next scripted
// Reply is given, and 200 "ok" once the script is spent.
type SlackReceiver struct {
	srv     *httptest.Server
	release chan struct{}

	mu     sync.Mutex
	script []Reply
	posts  []Post
}

// NewSlack starts a receiver that stops when the test ends.
func NewSlack(tb testing.TB) *SlackReceiver {
	tb.Helper()
	r := &SlackReceiver{release: make(chan struct{})}
	r.srv = httptest.NewServer(r)
	tb.Cleanup(r.srv.Close)
	tb.Cleanup(func() { close(r.release) }) // runs first: lets hanging handlers return
	return r
}

// URL is the receiver's webhook URL. It is secret in the way a real one is: it contains
// WebhookSecret.
func (r *SlackReceiver) URL() string { return r.srv.URL + WebhookPath }

// Client is an HTTP client for the receiver.
func (r *SlackReceiver) Client() *http.Client { return r.srv.Client() }

// FailNext scripts the answers to the next posts, in order.
func (r *SlackReceiver) FailNext(replies ...Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, replies...)
}

// Posts returns every request received, delivered or not.
func (r *SlackReceiver) Posts() []Post {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Post(nil), r.posts...)
}

// Delivered returns the payloads answered with 200: what the channel shows.
func (r *SlackReceiver) Delivered() [][]byte {
	var out [][]byte
	for _, p := range r.Posts() {
		if p.Status == http.StatusOK {
			out = append(out, p.Body)
		}
	}
	return out
}

func (r *SlackReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	reply := r.reply(req, body)
	r.mu.Lock()
	i := len(r.posts)
	r.posts = append(r.posts, Post{Body: body})
	r.mu.Unlock()
	if reply.Hang {
		select {
		case <-req.Context().Done():
		case <-r.release:
		}
		return
	}
	status := reply.Status
	if status == 0 {
		status, reply.Body = http.StatusOK, "ok"
	}
	r.mu.Lock()
	r.posts[i].Status = status
	r.mu.Unlock()
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reply.Body)
}

// reply decides the answer: the request's own faults first, as Slack checks them before it
// could fail for any other reason, then the script.
func (r *SlackReceiver) reply(req *http.Request, body []byte) Reply {
	switch {
	case req.Method != http.MethodPost:
		return Reply{Status: http.StatusMethodNotAllowed, Body: "invalid_method"}
	case req.URL.Path != WebhookPath:
		return Reply{Status: http.StatusNotFound, Body: "no_service"}
	}
	if err := ValidateSlackPayload(body); err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return Reply{Status: http.StatusBadRequest, Body: ie.Code}
		}
		return Reply{Status: http.StatusBadRequest, Body: "invalid_payload"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.script) == 0 {
		return Reply{}
	}
	next := r.script[0]
	r.script = r.script[1:]
	return next
}

// Slack's limits: Block Kit's ("Blocks", https://docs.slack.dev/reference/block-kit/blocks, and
// "Button element", https://docs.slack.dev/reference/block-kit/block-elements/button-element) and
// the 40,000-character text ("Truncating really long messages",
// https://api.slack.com/changelog/2018-04-truncating-really-long-messages). Slack truncates a
// longer text with a warning; this receiver refuses it, which is stricter than Slack, so that a
// renderer never relies on the truncation. See docs/aws-behaviour.md, Slack incoming webhooks.
const (
	maxBlocks        = 50
	maxSectionText   = 3000
	maxFields        = 10
	maxFieldText     = 2000
	maxHeaderText    = 150
	maxContextItems  = 10
	maxActionItems   = 25
	maxButtonText    = 75
	maxButtonURL     = 3000
	maxButtonValue   = 2000
	maxBlockID       = 255
	maxTextObject    = 3000
	maxMessageLength = 40000
)

// InvalidError is a payload Slack refuses: Code is its answer (invalid_payload, invalid_blocks,
// no_text), Detail says which rule broke.
type InvalidError struct {
	Code   string
	Detail string
}

func (e *InvalidError) Error() string { return e.Code + ": " + e.Detail }

func invalid(code, format string, args ...any) error {
	return &InvalidError{Code: code, Detail: fmt.Sprintf(format, args...)}
}

type textObject struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji *bool  `json:"emoji,omitempty"`
}

type element struct {
	Type     string      `json:"type"`
	Text     *textObject `json:"text"`
	ActionID string      `json:"action_id"`
	URL      string      `json:"url"`
	Value    string      `json:"value"`
}

type block struct {
	Type     string            `json:"type"`
	BlockID  string            `json:"block_id"`
	Text     *textObject       `json:"text"`
	Fields   []textObject      `json:"fields"`
	Elements []json.RawMessage `json:"elements"`
}

// ValidateSlackPayload checks an incoming-webhook payload against the rules Slack enforces with
// 400 invalid_payload / invalid_blocks: valid JSON, a text or blocks, at most 50 blocks, and each
// block's text, field, element and URL limits. Lengths are counted in UTF-16 code units, the
// stricter of the ways Slack might count. It also requires the `text` fallback, which Slack
// recommends for notifications and this project always sends.
func ValidateSlackPayload(payload []byte) error {
	if !utf8.Valid(payload) {
		return invalid("invalid_payload", "not UTF-8")
	}
	var p struct {
		Text   *string `json:"text"`
		Blocks []block `json:"blocks"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return invalid("invalid_payload", "not a JSON object of the webhook's shape: %v", err)
	}
	if p.Text == nil || *p.Text == "" {
		return invalid("no_text", "no text fallback")
	}
	if n := units(*p.Text); n > maxMessageLength {
		return invalid("invalid_payload", "text is %d long", n)
	}
	if len(p.Blocks) > maxBlocks {
		return invalid("invalid_blocks", "%d blocks, more than %d", len(p.Blocks), maxBlocks)
	}
	for i, b := range p.Blocks {
		if err := checkBlock(b); err != nil {
			return invalid("invalid_blocks", "block %d (%s): %v", i, b.Type, err)
		}
	}
	return nil
}

func checkBlock(b block) error {
	if units(b.BlockID) > maxBlockID {
		return fmt.Errorf("block_id longer than %d", maxBlockID)
	}
	switch b.Type {
	case "header":
		if b.Text == nil || b.Text.Type != "plain_text" {
			return errors.New("header text must be plain_text")
		}
		return checkText(*b.Text, maxHeaderText)
	case "section":
		if b.Text == nil && len(b.Fields) == 0 {
			return errors.New("section with neither text nor fields")
		}
		if b.Text != nil {
			if err := checkText(*b.Text, maxSectionText); err != nil {
				return err
			}
		}
		if len(b.Fields) > maxFields {
			return fmt.Errorf("%d fields, more than %d", len(b.Fields), maxFields)
		}
		for _, f := range b.Fields {
			if err := checkText(f, maxFieldText); err != nil {
				return fmt.Errorf("field: %w", err)
			}
		}
	case "context":
		if len(b.Elements) == 0 || len(b.Elements) > maxContextItems {
			return fmt.Errorf("%d context elements, want 1 to %d", len(b.Elements), maxContextItems)
		}
		for _, raw := range b.Elements {
			var t textObject
			if err := json.Unmarshal(raw, &t); err != nil {
				return err
			}
			if t.Type == "mrkdwn" || t.Type == "plain_text" {
				if err := checkText(t, maxTextObject); err != nil {
					return err
				}
			}
		}
	case "actions":
		if len(b.Elements) == 0 || len(b.Elements) > maxActionItems {
			return fmt.Errorf("%d action elements, want 1 to %d", len(b.Elements), maxActionItems)
		}
		ids := map[string]bool{}
		for _, raw := range b.Elements {
			var e element
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			if e.Type != "button" {
				continue
			}
			if e.Text == nil || e.Text.Type != "plain_text" {
				return errors.New("button text must be plain_text")
			}
			if err := checkText(*e.Text, maxButtonText); err != nil {
				return fmt.Errorf("button: %w", err)
			}
			if units(e.URL) > maxButtonURL || units(e.Value) > maxButtonValue || units(e.ActionID) > maxBlockID {
				return errors.New("button url, value or action_id too long")
			}
			if e.ActionID != "" && ids[e.ActionID] {
				return fmt.Errorf("duplicate action_id %q", e.ActionID)
			}
			ids[e.ActionID] = true
		}
	case "divider":
	default:
		return fmt.Errorf("unexpected block type %q", b.Type)
	}
	return nil
}

func checkText(t textObject, limit int) error {
	switch {
	case t.Type != "plain_text" && t.Type != "mrkdwn":
		return fmt.Errorf("text type %q", t.Type)
	case t.Text == "":
		return errors.New("empty text")
	case units(t.Text) > limit:
		return fmt.Errorf("text is %d long, more than %d", units(t.Text), limit)
	case t.Type == "mrkdwn" && t.Emoji != nil:
		return errors.New("emoji set on mrkdwn text")
	}
	return nil
}

// units counts UTF-16 code units.
func units(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
