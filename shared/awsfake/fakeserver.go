package awsfake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// hangs makes chosen calls hang until the caller gives up, so that a test of a timeout needs
// no clock: the client's context deadline ends the call, and the test asserts what the caller
// did about it, never how long it took.
type hangs struct {
	mu      sync.Mutex
	pending map[string]int
	hung    map[string]int
	done    chan struct{}
	once    sync.Once
}

func newHangs() *hangs {
	return &hangs{pending: map[string]int{}, hung: map[string]int{}, done: make(chan struct{})}
}

// Hang makes the next n calls of operation op hang without an answer until the caller cancels
// the request (its context ends) or the test ends. A hung call does not reach the operation,
// so Calls does not count it; Hung does.
func (h *hangs) Hang(op string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending[op] += n
}

// Hung returns how many calls of op have hung.
func (h *hangs) Hung(op string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hung[op]
}

// take reports whether this call of op is to hang, and counts it.
func (h *hangs) take(op string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[op] == 0 {
		return false
	}
	h.pending[op]--
	h.hung[op]++
	return true
}

// wait blocks until the client gives up on r or the fake is closing. The body is read first:
// the server notices a client that hung up (and cancels r's context) only once it has.
func (h *hangs) wait(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-h.done:
	}
}

// release lets every hung call go, so that closing the server (which waits for its requests)
// does not wait forever.
func (h *hangs) release() { h.once.Do(func() { close(h.done) }) }

// serveWith replaces the server of e with one that runs handler, keeping e's configuration
// (Config and URL point at the new server). The test's Cleanup releases hung calls, then
// closes the server.
func serveWith(tb testing.TB, e *endpoint, h *hangs, handler http.Handler) {
	tb.Helper()
	e.srv.Close()
	e.srv = httptest.NewServer(handler)
	tb.Cleanup(e.srv.Close)
	tb.Cleanup(h.release) // cleanups run last-registered first: release before close
}

// newHangingEndpoint is newEndpoint (JSON 1.1, X-Amz-Target dispatch) whose calls can be made
// to hang (see hangs.Hang).
func newHangingEndpoint(tb testing.TB, service string, ops map[string]op) (*endpoint, *hangs) {
	tb.Helper()
	e := newEndpoint(tb, service, ops)
	h := newHangs()
	serveWith(tb, e, h, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, name, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
		if h.take(name) {
			h.wait(r)
			return
		}
		e.ServeHTTP(w, r)
	}))
	return e, h
}

// takeInjected counts a call of op on e and returns the failure FailNext queued for it, if
// any, for a fake that serves its own protocol rather than endpoint's.
func takeInjected(e *endpoint, op string) *Error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[op]++
	if q := e.fail[op]; len(q) > 0 {
		err := q[0]
		e.fail[op] = q[1:]
		return &err
	}
	return nil
}

// HTTPClient returns the HTTP client the fakes' SDK clients use: a transport of its own whose
// requests carry a private copy of their body.
//
// The copy closes a race between the SDK and net/http that a fake answering at once exposes:
// the SDK closes the request body as soon as the response headers arrive, while the transport's
// write loop may still be reading that body to check it is at its end; the read then fails and
// the transport closes the connection under the response being read ("use of closed network
// connection", aws/aws-sdk-go-v2#2737). The SDK retries that error, so in production it costs a
// retry; in a test it adds a call and can turn an injected failure into another one.
func HTTPClient() *http.Client {
	return &http.Client{Transport: privateBody{base: http.DefaultTransport.(*http.Transport).Clone()}}
}

type privateBody struct{ base http.RoundTripper }

func (p privateBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return p.base.RoundTrip(r)
	}
	data, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(data))
	c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	c.ContentLength = int64(len(data))
	return p.base.RoundTrip(c)
}
