// Package awsfake holds test-only, stateful fakes of the AWS APIs that have no local stand-in
// (CodePipeline, CodeCommit). Each fake is an httptest server that speaks the AWS JSON 1.1
// protocol, so tests drive it through the real SDK client (BaseEndpoint, static dummy
// credentials): request serialization, signing, error mapping to the SDK's typed errors,
// retries and paginators are all the SDK's own.
//
// The fakes reproduce the behaviours of the AWS API References that this project depends on
// (operation names, error codes, limits), each cited where it is reproduced; what AWS leaves
// unspecified is documented on the method that chose it.
package awsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region is the region of the configs the fakes return.
const Region = "us-east-1"

// Error is an error a fake answers with: the wire `__type` (which the SDK maps to its typed
// error of that name, or to a smithy.GenericAPIError), the HTTP status and the message.
type Error struct {
	Code    string
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errors to inject with FailNext. The SDK's standard retryer retries ThrottlingException (a
// throttle) and the 5xx statuses (transient); it does not retry ConflictException.
var (
	Throttling         = Error{Code: "ThrottlingException", Status: http.StatusBadRequest, Message: "Rate exceeded"}
	ServiceUnavailable = Error{Code: "ServiceUnavailableException", Status: http.StatusServiceUnavailable, Message: "Service is unavailable"}
	InternalFailure    = Error{Code: "InternalFailure", Status: http.StatusInternalServerError, Message: "The request processing has failed because of an unknown error"}
	Conflict           = Error{Code: "ConflictException", Status: http.StatusBadRequest, Message: "The pipeline is busy handling ongoing activities. Try again later."}
)

func clientError(code, format string, args ...any) *Error {
	return &Error{Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// op answers one operation: it decodes the body itself and returns the response document.
type op func(body []byte) (any, *Error)

// endpoint is the protocol half of a fake: X-Amz-Target dispatch, SigV4 presence, JSON error
// bodies, injected failures and call counts.
type endpoint struct {
	service string // X-Amz-Target prefix, e.g. "CodePipeline_20150709"
	srv     *httptest.Server
	ops     map[string]op

	mu    sync.Mutex
	fail  map[string][]Error
	calls map[string]int
}

func newEndpoint(tb testing.TB, service string, ops map[string]op) *endpoint {
	tb.Helper()
	e := &endpoint{service: service, ops: ops, fail: map[string][]Error{}, calls: map[string]int{}}
	e.srv = httptest.NewServer(e)
	tb.Cleanup(e.srv.Close)
	return e
}

// URL is the fake's base endpoint.
func (e *endpoint) URL() string { return e.srv.URL }

// Config returns an aws.Config for the fake: region us-east-1, static dummy credentials,
// BaseEndpoint set, and the SDK's standard retryer without backoff delays or client-side rate
// limiting (the standard retryer waits about a second before retrying a throttle, and tests
// must not depend on time). It reads no shared config and no environment, so it can never
// reach real AWS.
func (e *endpoint) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
		BaseEndpoint: aws.String(e.srv.URL),
		// See HTTPClient: an instantly answering fake otherwise trips an SDK race that
		// drops the connection and adds a retry to the calls the tests count.
		HTTPClient: HTTPClient(),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// FailNext makes the next n calls of operation op (e.g. "StartPipelineExecution") answer err
// instead of doing their work. Calls queue: FailNext(op, a, 1) then FailNext(op, b, 1) fails
// with a, then b.
func (e *endpoint) FailNext(op string, err Error, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := 0; i < n; i++ {
		e.fail[op] = append(e.fail[op], err)
	}
}

// Calls returns how many requests for op reached the fake, failed ones included (an SDK retry
// is one more call).
func (e *endpoint) Calls(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op]
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, &Error{Code: "UnknownOperationException", Status: http.StatusNotFound, Message: r.Method + " " + r.URL.Path})
		return
	}
	// Only a signed request proves the SDK (not a hand-made request) is under test.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, &Error{Code: "MissingAuthenticationTokenException", Status: http.StatusForbidden, Message: "Missing Authentication Token"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, clientError("SerializationException", "Content-Type %q is not application/x-amz-json-1.1", ct))
		return
	}
	service, name, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	handle, ok := e.ops[name]
	if service != e.service || !ok {
		writeError(w, clientError("UnknownOperationException", "unknown operation %q", r.Header.Get("X-Amz-Target")))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, clientError("SerializationException", "read body: %v", err))
		return
	}

	e.mu.Lock()
	e.calls[name]++
	var injected *Error
	if q := e.fail[name]; len(q) > 0 {
		injected, e.fail[name] = &q[0], q[1:]
	}
	e.mu.Unlock()
	if injected != nil {
		writeError(w, injected)
		return
	}

	out, apiErr := handle(body)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	data, err := json.Marshal(out)
	if err != nil {
		writeError(w, &Error{Code: "InternalFailure", Status: http.StatusInternalServerError, Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	_, _ = w.Write(data)
}

// writeError answers the way AWS JSON services do: the error code in `__type` and the status
// code; the SDK reads the code from the body (or the X-Amzn-ErrorType header).
func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
}

var reqSeq struct {
	sync.Mutex
	n int
}

func requestID() string {
	reqSeq.Lock()
	defer reqSeq.Unlock()
	reqSeq.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", reqSeq.n)
}

func decode(body []byte, v any) *Error {
	if err := json.Unmarshal(body, v); err != nil {
		return clientError("SerializationException", "%v", err)
	}
	return nil
}

// epoch is a time as the JSON protocols send it: seconds since the epoch, as a number.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}
