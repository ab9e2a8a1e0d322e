//go:build unix

// Package lambdarie runs a function's bootstrap under the AWS Lambda Runtime Interface Emulator
// (aws-lambda-rie, the Go module pinned in go.mod), with no Docker: build the function for this
// machine, start the emulator on two free 127.0.0.1 ports, invoke it over HTTP as Lambda would,
// and read back the response, the handler error and the function's log lines.
//
//	root, _ := lambdarie.RepoRoot("")
//	bin, err := lambdarie.Build(ctx, root, "on-pipeline-event", t.TempDir())
//	em, err := lambdarie.Start(ctx, bin, map[string]string{"LP_STORE": "memory"})
//	defer em.Close()
//	res, err := em.Invoke(ctx, event)   // res.Body, res.ErrorType, res.Logs
//	em.ColdStart()                      // process start → first response
//
// scripts/invoke (shared/lambdarie/cmd/invoke) is the command-line face of this package, and
// `go run ./shared/lambdarie/internal/coldstart` measures cold starts.
//
// The emulator answers HTTP 200 even when the handler returns an error, with errorType and
// errorMessage in the body; Invoke parses them into the Result. When the runtime fails to start
// (the bootstrap exits during init), the emulator answers 502 with no body; Result then takes
// the error type and message from the emulator's log, as Lambda would report them
// (Runtime.ExitError, "Runtime exited with error: exit status N").
//
// The emulator runs in its own process group, with a scrubbed environment: none of the caller's
// AWS credentials, profile or region reach the function, only dummy credentials, us-east-1 and
// the variables the caller passes. Close ends the emulator and the runtime process it started.
package lambdarie

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InvokePath is the emulator's invoke endpoint (the Lambda Invoke API path, function "function").
const InvokePath = "/2015-03-31/functions/function/invocations"

// DefaultEnv is the environment every function gets under the emulator, before the caller's:
// Lambda's JSON log format, a region, dummy credentials (never real ones), and a function timeout.
// AWS_ENDPOINT_URL, unless the caller sets it, points every AWS SDK client at a closed port on
// 127.0.0.1, so that a local run can never reach real AWS: a client without its own
// AWS_ENDPOINT_URL_<SERVICE> fails fast with "connection refused".
var DefaultEnv = map[string]string{
	"AWS_LAMBDA_LOG_FORMAT":       "JSON",
	"AWS_REGION":                  "us-east-1",
	"AWS_DEFAULT_REGION":          "us-east-1",
	"AWS_ACCESS_KEY_ID":           "AKIDLOCALRIE0000TEST",
	"AWS_SECRET_ACCESS_KEY":       "local-rie-dummy-secret-not-a-real-key",
	"AWS_SESSION_TOKEN":           "local-rie-dummy-session",
	"AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	"AWS_EC2_METADATA_DISABLED":   "true",
	"AWS_ENDPOINT_URL":            "http://127.0.0.1:9",
	"TZ":                          "UTC",
}

// inheritedEnv are the only variables of the caller's own environment that the emulator gets.
var inheritedEnv = []string{"PATH", "TMPDIR", "LANG", "LC_ALL"}

// Options tune Start. The zero value is what Start uses.
type Options struct {
	// RepoRoot is where go.mod pins the emulator (default: RepoRoot of the working directory).
	RepoRoot string
	// RIE is a prebuilt aws-lambda-rie (default: RIEBinary).
	RIE string
	// LogLevel is the emulator's own log level: debug, info (default), warn, error.
	LogLevel string
	// ReadyTimeout bounds the wait for the emulator's port (default 10 s).
	ReadyTimeout time.Duration
}

// Emulator is a running aws-lambda-rie with one function.
type Emulator struct {
	// StartedAt is when the emulator process was started: the origin of ColdStart. ReadyAt is
	// when its invoke port first accepted a connection (the emulator starts the runtime only
	// on the first invocation).
	StartedAt, ReadyAt time.Time
	// Addr is the emulator's invoke address (host:port); RuntimeAPI is the Runtime API address
	// the bootstrap talks to.
	Addr, RuntimeAPI string

	cmd     *exec.Cmd
	logs    *logBuffer
	client  *http.Client
	done    chan struct{} // closed when the process has been waited for
	waitErr error

	invokeMu sync.Mutex // the emulator serves one invocation at a time

	mu       sync.Mutex
	firstAt  time.Time
	closed   bool
	closeErr error
	runtimes []proc
}

// Result is one invocation's answer.
type Result struct {
	// RequestID is the invocation's request id (sent as X-Amzn-RequestId).
	RequestID string
	// StatusCode is the emulator's HTTP status: 200 also for handler errors.
	StatusCode int
	// Body is the response payload as the emulator returned it.
	Body []byte
	// ErrorType and ErrorMessage are set when the invocation failed: from the body's errorType
	// and errorMessage (a handler error); else from the emulator's text answer to a timeout
	// (Sandbox.Timedout) or, for a runtime that exited during init, from its log
	// (Runtime.ExitError).
	ErrorType, ErrorMessage string
	// Duration is the invoke's round trip. Cold is true for the emulator's first invocation,
	// whose Duration includes starting the runtime; see also Emulator.ColdStart.
	Duration time.Duration
	Cold     bool
	// Logs is this invocation's part of the emulator's output, from its START line to its
	// REPORT line: the function's log lines among the emulator's own.
	Logs string
}

// Failed reports whether the invocation ended in an error rather than a response.
func (r Result) Failed() bool { return r.ErrorType != "" || r.StatusCode != http.StatusOK }

// Outcome returns the body's "outcome" and "reason" fields (lambdaio.Response), if any.
func (r Result) Outcome() (outcome, reason string) {
	var v struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(r.Body, &v) != nil {
		return "", ""
	}
	return v.Outcome, v.Reason
}

// Start runs the emulator with bootstrap (a path; see Build) and Options{}. env is added over
// DefaultEnv; the emulator passes its whole environment on to the function. ctx bounds the
// start only: the emulator runs until Close.
func Start(ctx context.Context, bootstrap string, env map[string]string) (*Emulator, error) {
	return Options{}.Start(ctx, bootstrap, env)
}

// Start is Start with these options.
func (o Options) Start(ctx context.Context, bootstrap string, env map[string]string) (*Emulator, error) {
	bootstrap, err := filepath.Abs(bootstrap)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	} else if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("bootstrap %s is not an executable file", bootstrap)
	}
	rie := o.RIE
	if rie == "" {
		root := o.RepoRoot
		if root == "" {
			if root, err = RepoRoot(""); err != nil {
				return nil, fmt.Errorf("locate the emulator: %w (set Options.RepoRoot, Options.RIE or %s)", err, EnvRIE)
			}
		}
		if rie, err = RIEBinary(ctx, root); err != nil {
			return nil, err
		}
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	// A free port can be taken between our probe and the emulator's bind: try again then.
	var errs []error
	for range 3 {
		e, err := o.start(ctx, rie, bootstrap, env)
		if err == nil {
			return e, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || !errors.Is(err, errEarlyExit) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errEarlyExit = errors.New("the emulator exited before it was ready")

func (o Options) start(ctx context.Context, rie, bootstrap string, env map[string]string) (*Emulator, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	e := &Emulator{
		Addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		RuntimeAPI: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		logs:       newLogBuffer(),
		done:       make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // loopback only, whatever HTTP_PROXY says
			MaxIdleConnsPerHost: 1,
		}},
	}
	args := []string{
		"--runtime-api-address", e.RuntimeAPI,
		"--runtime-interface-emulator-address", e.Addr,
	}
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	args = append(args, bootstrap) // no second argument: the emulator would take it for a handler name
	cmd := exec.Command(rie, args...)
	cmd.Dir = filepath.Dir(bootstrap) // Lambda runs the bootstrap in its task root
	cmd.Env = emulatorEnv(filepath.Dir(bootstrap), env)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 2 * time.Second // the runtime holds the output pipe too; never hang on it
	e.cmd = cmd

	e.StartedAt = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", rie, err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()
	if err := e.waitReady(ctx, o.ReadyTimeout); err != nil {
		e.Close()
		return nil, fmt.Errorf("%w\nemulator output:\n%s", err, tail(e.logs.String(), 40))
	}
	return e, nil
}

func emulatorEnv(taskRoot string, env map[string]string) []string {
	m := map[string]string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	for k, v := range DefaultEnv {
		m[k] = v
	}
	m["LAMBDA_TASK_ROOT"] = taskRoot
	for k, v := range env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// handedOut holds the ports freePorts gave out in this process. A port is free only between
// the probe and the emulator's bind: two emulators started side by side (parallel tests) could
// be handed the same just-closed port, and the loser's readiness probe would then connect to
// the winner's emulator and call itself ready (TestCloseLeavesNothing, once, under load).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l) // held until all are picked, so that the kernel gives another
		if p := l.Addr().(*net.TCPAddr).Port; !handedOut.ports[p] {
			handedOut.ports[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// waitReady polls the invoke port until it accepts connections, the process exits, or the time
// is up. The poll is fine-grained so that it adds little to the measured cold start.
func (e *Emulator) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Timeout: 100 * time.Millisecond}
	for {
		c, err := d.DialContext(ctx, "tcp", e.Addr)
		if err == nil {
			e.ReadyAt = time.Now()
			c.Close()
			return nil
		}
		select {
		case <-e.done:
			return fmt.Errorf("%w (%v)", errEarlyExit, e.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the emulator did not listen on %s within %v", e.Addr, timeout)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// Logs returns everything the emulator process has written so far (stdout and stderr): the
// function's log lines, the emulator's START/END/REPORT lines, and its own "(rapid)" lines.
func (e *Emulator) Logs() string { return e.logs.String() }

// FunctionLogs returns Logs without the emulator's own "(rapid)" diagnostics.
func (e *Emulator) FunctionLogs() string { return FilterEmulatorLines(e.logs.String()) }

// ColdStart is the time from the emulator's process start to its first response, or zero
// before the first response.
func (e *Emulator) ColdStart() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.firstAt.IsZero() {
		return 0
	}
	return e.firstAt.Sub(e.StartedAt)
}

// PID is the emulator's process id (its process group id too).
func (e *Emulator) PID() int { return e.cmd.Process.Pid }

// Invoke sends payload as a synchronous invocation and returns the answer. The error is for a
// failure to get one (the emulator is gone, ctx ended); a failed invocation is a Result with
// ErrorType set. Invocations are serialized: the emulator serves one at a time.
func (e *Emulator) Invoke(ctx context.Context, payload []byte) (Result, error) {
	e.invokeMu.Lock()
	defer e.invokeMu.Unlock()
	select {
	case <-e.done:
		return Result{}, fmt.Errorf("the emulator has exited (%v)\n%s", e.waitErr, tail(e.logs.String(), 20))
	default:
	}
	id := newRequestID()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.Addr+InvokePath, bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-RequestId", id)
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("invoke: %w\n%s", err, tail(e.logs.String(), 20))
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	end := time.Now()
	if err != nil {
		return Result{}, fmt.Errorf("invoke: read the response: %w", err)
	}
	r := Result{RequestID: id, StatusCode: resp.StatusCode, Body: body, Duration: end.Sub(start)}
	e.mu.Lock()
	if e.firstAt.IsZero() {
		e.firstAt, r.Cold = end, true
	}
	e.mu.Unlock()

	// The emulator writes REPORT before the response, and the runtime writes its lines before
	// it posts the response, so they are in the pipe already; wait for the copy to catch up.
	// A failed init has no REPORT: wait for the emulator's own verdict instead.
	marker := "REPORT RequestId: " + id
	if resp.StatusCode != http.StatusOK {
		marker = "Invoke DONE failed"
	}
	e.logs.waitFor(id, marker, time.Second)
	r.Logs = e.logs.invocation(id)
	e.recordRuntimePIDs()

	r.ErrorType, r.ErrorMessage = parseError(body)
	if r.ErrorType == "" && r.ErrorMessage == "" {
		switch {
		case bytes.HasPrefix(body, []byte("Task timed out")):
			r.ErrorType, r.ErrorMessage = "Sandbox.Timedout", string(body)
		case resp.StatusCode != http.StatusOK:
			r.ErrorType, r.ErrorMessage = errorFromLogs(r.Logs, resp.StatusCode)
		}
	}
	return r, nil
}

func parseError(body []byte) (typ, msg string) {
	var v struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", ""
	}
	if v.ErrorType == "" && v.ErrorMessage != "" {
		v.ErrorType = "Unhandled"
	}
	return v.ErrorType, v.ErrorMessage
}

var (
	fatalRe      = regexp.MustCompile(`First fatal error stored in appctx: (\S+)`)
	doneFailedRe = regexp.MustCompile(`Invoke DONE failed: (\S+)`)
	failedRe     = regexp.MustCompile(`(?:Invoke|Init) failed\b.*?\berror=(.*?)(?: InvokeID=\S*)?$`)
)

func errorFromLogs(logs string, status int) (typ, msg string) {
	var fatal, done string
	msg = fmt.Sprintf("the emulator answered HTTP %d", status)
	for _, line := range strings.Split(logs, "\n") {
		if m := fatalRe.FindStringSubmatch(line); m != nil && fatal == "" {
			fatal = m[1] // the cause, as Lambda reports it (Runtime.ExitError)
		}
		if m := doneFailedRe.FindStringSubmatch(line); m != nil {
			done = m[1] // the emulator's verdict (Sandbox.Failure)
		}
		if m := failedRe.FindStringSubmatch(line); m != nil {
			msg = m[1]
		}
	}
	switch {
	case fatal != "":
		typ = fatal
	case done != "":
		typ = done
	default:
		typ = fmt.Sprintf("Emulator.HTTP%d", status)
	}
	return typ, msg
}

// Close ends the emulator and the runtime it started, and waits for them: first SIGTERM, on
// which the emulator kills its runtime and exits; then SIGKILL for the emulator's process group
// and the runtime's (the emulator starts the runtime in a group of its own), if either is still
// there. Close is idempotent.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.done
		return e.closeErr
	}
	e.closed = true
	e.mu.Unlock()

	e.recordRuntimePIDs()
	pid := e.cmd.Process.Pid
	select {
	case <-e.done:
	default:
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(2 * time.Second):
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	e.mu.Lock()
	runtimes := append([]proc(nil), e.runtimes...)
	e.mu.Unlock()
	for _, rp := range runtimes {
		rp.killGroup()
	}
	<-e.done
	e.client.CloseIdleConnections()
	var err error
	for _, rp := range runtimes {
		if !rp.waitGone(2 * time.Second) {
			err = errors.Join(err, fmt.Errorf("runtime process %d is still running", rp.pid))
		}
	}
	e.closeErr = err
	return err
}

// recordRuntimePIDs remembers the emulator's child processes (the runtime), so that Close can
// reach them even after the emulator is gone.
func (e *Emulator) recordRuntimePIDs() {
	kids := children(e.cmd.Process.Pid)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range kids {
		if !slices.Contains(e.runtimes, k) {
			e.runtimes = append(e.runtimes, k)
		}
	}
}

// FilterEmulatorLines drops the emulator's own diagnostics ("26 Nov 2026 14:13:41,294 [INFO]
// (rapid) ...", and logrus lines) from log text, keeping the function's lines and the
// START/END/REPORT lines that CloudWatch would show too.
func FilterEmulatorLines(logs string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(logs, "\n") {
		if line == "" || rapidLine.MatchString(line) {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

var rapidLine = regexp.MustCompile(`^(\d{1,2} \w{3} \d{4} [\d:,]+ \[\w+\] \(rapid\) |time="[^"]*" level=\w+ )`)

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logBuffer collects the emulator's output and lets Invoke wait for a line to arrive.
type logBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{} // closed and replaced on every write
}

func newLogBuffer() *logBuffer { return &logBuffer{notify: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.buf.Write(p)
	close(l.notify)
	l.notify = make(chan struct{})
	return n, err
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the text after the invocation's START line holds marker (and the line
// break that ends it), or timeout.
func (l *logBuffer) waitFor(id, marker string, timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		s, ch := l.buf.String(), l.notify
		l.mu.Unlock()
		if seg := segment(s, id); seg != "" {
			if i := strings.Index(seg, marker); i >= 0 && strings.Contains(seg[i:], "\n") {
				return
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			return
		}
	}
}

func (l *logBuffer) invocation(id string) string { return segment(l.String(), id) }

// segment returns the part of the logs that belongs to request id: from its START line to the
// end of its REPORT line, or else to the next START line or the end.
func segment(s, id string) string {
	start := strings.Index(s, "START RequestId: "+id)
	if start < 0 {
		return ""
	}
	s = s[start:]
	if i := strings.Index(s, "REPORT RequestId: "+id); i >= 0 {
		if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
			return s[:i+j+1]
		}
		return s
	}
	if i := strings.Index(s[1:], "\nSTART RequestId: "); i >= 0 {
		return s[:i+2]
	}
	return s
}
