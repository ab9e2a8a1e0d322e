//go:build unix

package lambdarie

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests run the real emulator on real bootstraps. Each function is built once per test
// binary, into one temporary directory.
var (
	buildDir  string
	buildMu   sync.Mutex
	buildOnce = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdarie-test-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot("")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// bootstrap builds functions/<fn> once and returns its bootstrap.
func bootstrap(t testing.TB, fn string) string {
	t.Helper()
	buildMu.Lock()
	b := buildOnce[fn]
	if b == nil {
		b = &buildResult{}
		buildOnce[fn] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		b.path, b.err = Build(ctx, repoRoot(t), fn, filepath.Join(buildDir, fn))
	})
	if b.err != nil {
		t.Fatalf("build %s: %v", fn, b.err)
	}
	return b.path
}

// memoryStore is the environment of the function tests: the in-memory run store, no DynamoDB.
var memoryStore = map[string]string{"LP_STORE": "memory"}

// start runs fn under the emulator for the test's duration; a missing or broken emulator is a
// failure, never a skip.
func start(t testing.TB, fn string, env map[string]string) *Emulator {
	t.Helper()
	bin := bootstrap(t, fn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := Options{RepoRoot: repoRoot(t)}.Start(ctx, bin, env)
	if err != nil {
		t.Fatalf("the Lambda Runtime Interface Emulator (%s, pinned in go.mod) could not be built or started: %v", RIEPackage, err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func invoke(t testing.TB, e *Emulator, payload []byte) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := e.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v\nlogs:\n%s", err, e.Logs())
	}
	return r
}

// jsonLines returns the log lines that are JSON objects.
func jsonLines(logs string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestOnPipelineEventRecorded(t *testing.T) {
	t.Parallel()
	e := start(t, "on-pipeline-event", memoryStore)
	r := invoke(t, e, readEvent(t, "action-failed-build.json"))
	if r.Failed() {
		t.Fatalf("invocation failed: %s: %s\n%s", r.ErrorType, r.ErrorMessage, e.Logs())
	}
	if outcome, reason := r.Outcome(); outcome != "recorded" {
		t.Fatalf("outcome = %q (%s), want recorded; body %s", outcome, reason, r.Body)
	}
	var found bool
	for _, m := range jsonLines(r.Logs) {
		if m["executionId"] == "3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11" {
			found = true
			if m["requestId"] != r.RequestID {
				t.Errorf("log line requestId = %v, want %s", m["requestId"], r.RequestID)
			}
		}
	}
	if !found {
		t.Errorf("no JSON log line with the executionId in this invocation's logs:\n%s", r.Logs)
	}
	if !strings.Contains(e.Logs(), `"executionId"`) {
		t.Errorf("Logs() has no executionId:\n%s", e.Logs())
	}
	if !r.Cold || e.ColdStart() <= 0 || e.ColdStart() < r.Duration {
		t.Errorf("cold = %v, ColdStart = %v, Duration = %v", r.Cold, e.ColdStart(), r.Duration)
	}
	t.Logf("cold start (process start → first response): %v; first invoke round trip %v", e.ColdStart(), r.Duration)

	// A warm invocation: same process, its own log segment.
	r2 := invoke(t, e, readEvent(t, "pipeline-started.json"))
	if r2.Cold || r2.Failed() || r2.RequestID == r.RequestID {
		t.Fatalf("second invocation: cold=%v failed=%v id=%s", r2.Cold, r2.Failed(), r2.RequestID)
	}
	if strings.Contains(r2.Logs, r.RequestID) || !strings.Contains(r2.Logs, r2.RequestID) {
		t.Errorf("second invocation's logs are not its own:\n%s", r2.Logs)
	}
	if fl := e.FunctionLogs(); strings.Contains(fl, "(rapid)") || !strings.Contains(fl, `"executionId"`) {
		t.Errorf("FunctionLogs:\n%s", fl)
	}
}

func TestOnPipelineEventMalformed(t *testing.T) {
	t.Parallel()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "pipeline-failed.json"), &ev); err != nil {
		t.Fatal(err)
	}
	delete(ev["detail"].(map[string]any), "execution-id")
	payload, _ := json.Marshal(ev)

	e := start(t, "on-pipeline-event", memoryStore)
	r := invoke(t, e, payload)
	if r.Failed() {
		t.Fatalf("a malformed event must not be a Lambda error (Lambda would retry it): %s: %s", r.ErrorType, r.ErrorMessage)
	}
	outcome, reason := r.Outcome()
	if outcome != "rejected" || !strings.Contains(reason, "detail.execution-id") {
		t.Fatalf("outcome %q, reason %q; want rejected naming detail.execution-id", outcome, reason)
	}
}

func TestDeployerBadInputIsAnError(t *testing.T) {
	t.Parallel()
	e := start(t, "DeployerFunction", memoryStore) // a SAM logical id works too
	r := invoke(t, e, []byte(`{"nonsense":true}`))
	if r.ErrorType == "" || r.ErrorMessage == "" || !r.Failed() {
		t.Fatalf("want a handler error; got status %d, errorType %q, errorMessage %q, body %s", r.StatusCode, r.ErrorType, r.ErrorMessage, r.Body)
	}
	if r.StatusCode != 200 {
		t.Errorf("the emulator answers a handler error with HTTP 200, got %d", r.StatusCode)
	}
	t.Logf("%s: %s", r.ErrorType, r.ErrorMessage)
}

func TestEnvironmentIsScrubbed(t *testing.T) {
	t.Setenv("AWS_PROFILE", "someone-real")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAREALREALREAL")
	env := emulatorEnv("/task", map[string]string{"LP_STORE": "memory", "AWS_REGION": "eu-west-1"})
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	if _, ok := got["AWS_PROFILE"]; ok || got["AWS_ACCESS_KEY_ID"] != DefaultEnv["AWS_ACCESS_KEY_ID"] {
		t.Errorf("the caller's AWS identity leaked: %v", env)
	}
	for k, want := range map[string]string{
		"LP_STORE": "memory", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_LAMBDA_LOG_FORMAT": "JSON", "LAMBDA_TASK_ROOT": "/task", "AWS_LAMBDA_FUNCTION_TIMEOUT": "30",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}

// TestInitFailure runs a bootstrap that exits before it reaches the Runtime API: the emulator
// answers 502 with no body, and the Result carries Lambda's error type for it.
func TestInitFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'missing environment variables: RUNS_TABLE' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := Options{RepoRoot: repoRoot(t)}.Start(context.Background(), bin, nil)
	if err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	r := invoke(t, e, []byte(`{}`))
	if r.ErrorType != "Runtime.ExitError" || !strings.Contains(r.ErrorMessage, "exit status 3") {
		t.Fatalf("status %d, errorType %q, errorMessage %q\n%s", r.StatusCode, r.ErrorType, r.ErrorMessage, e.Logs())
	}
	if !strings.Contains(r.Logs, "RUNS_TABLE") {
		t.Errorf("the runtime's output is not in the invocation's logs:\n%s", r.Logs)
	}
}

// TestCloseLeavesNothing checks that Close ends the emulator and the runtime it started.
func TestCloseLeavesNothing(t *testing.T) {
	t.Parallel()
	bin := bootstrap(t, "on-pipeline-event")
	e, err := Options{RepoRoot: repoRoot(t)}.Start(context.Background(), bin, memoryStore)
	if err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	if r := invoke(t, e, readEvent(t, "pipeline-started.json")); r.Failed() {
		t.Fatalf("%s: %s\n%s", r.ErrorType, r.ErrorMessage, e.Logs())
	}
	rie := procOf(e.PID())
	kids := children(e.PID())
	if runtime.GOOS == "linux" && len(kids) == 0 {
		t.Fatal("no runtime process under the emulator after an invocation")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, k := range append(kids, rie) {
		if !k.waitGone(time.Second) {
			t.Errorf("process %d outlived Close", k.pid)
		}
	}
	if _, err := e.Invoke(context.Background(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Close succeeded")
	}
}

func TestResolveFunction(t *testing.T) {
	root := repoRoot(t)
	for in, want := range map[string]string{
		"on-pipeline-event":       "on-pipeline-event",
		"OnPipelineEventFunction": "on-pipeline-event",
		"onpipelineeventfunction": "on-pipeline-event",
		"functions/deployer/":     "deployer",
		"DeployerFunction":        "deployer",
		"ReconcilerFunction":      "reconciler",
		"OnPushFunction":          "on-push",
		"functions/on-push":       "on-push",
		"On-Pipeline-Event":       "on-pipeline-event",
	} {
		got, err := ResolveFunction(root, in)
		if err != nil || got != want {
			t.Errorf("ResolveFunction(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ResolveFunction(root, "nope")
	var u *UnknownFunctionError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "on-pipeline-event (OnPipelineEventFunction)") {
		t.Errorf("unknown function error = %v", err)
	}
	fns, _ := Functions(root)
	if !sort.StringsAreSorted(fns) || len(fns) < 4 {
		t.Errorf("Functions = %v", fns)
	}
}

func TestFilterEmulatorLines(t *testing.T) {
	in := "26 Nov 2026 14:13:41,294 [INFO] (rapid) exec './bootstrap' (cwd=/tmp/lr, handler=)\n" +
		"START RequestId: x Version: $LATEST\n" +
		`{"level":"INFO","msg":"hi"}` + "\n" +
		"26 Nov 2026 14:13:41,858 [WARNING] (rapid) INVOKE RTDONE(status: success)\n" +
		"REPORT RequestId: x\tDuration: 1 ms\n"
	want := "START RequestId: x Version: $LATEST\n" + `{"level":"INFO","msg":"hi"}` + "\nREPORT RequestId: x\tDuration: 1 ms\n"
	if got := FilterEmulatorLines(in); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// BenchmarkColdStart reports, per function and for a Go hello-world built the same way
// (BenchmarkColdStart/hello-world: the emulator's, the Go runtime's and aws-lambda-go's share of
// every cold start), the cold start (emulator process start to first response) as min-ms,
// p10-ms, median-ms, p90-ms and max-ms over the b.N runs; ns/op adds the Close.
// `go run ./shared/lambdarie/internal/coldstart` prints the same from the command line, with
// the runs interleaved and the hello-world's median subtracted.
func BenchmarkColdStart(b *testing.B) {
	root := repoRoot(b)
	fns, err := Functions(root)
	if err != nil {
		b.Fatal(err)
	}
	hello, err := BuildHello(context.Background(), root, filepath.Join(buildDir, HelloFunction))
	if err != nil {
		b.Fatal(err)
	}
	measure := func(b *testing.B, bin string, env map[string]string, payload []byte) {
		var runs []time.Duration
		for b.Loop() {
			s, err := MeasureColdStart(context.Background(), Options{RepoRoot: root}, bin, env, payload, 1)
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, s.Runs...)
		}
		s := summarize(runs)
		for _, m := range []struct {
			d    time.Duration
			unit string
		}{{s.Min, "min-ms"}, {s.P10, "p10-ms"}, {s.Median, "median-ms"}, {s.P90, "p90-ms"}, {s.Max, "max-ms"}} {
			b.ReportMetric(float64(m.d.Microseconds())/1000, m.unit)
		}
	}
	b.Run(HelloFunction, func(b *testing.B) { measure(b, hello, nil, []byte("{}")) })
	for _, fn := range fns {
		b.Run(fn, func(b *testing.B) { measure(b, bootstrap(b, fn), memoryStore, DefaultPayload(root, fn)) })
	}
}

// TestSummarize checks the statistics' arithmetic on given durations (no clock involved).
func TestSummarize(t *testing.T) {
	var runs []time.Duration
	for _, v := range []int{7, 3, 20, 1, 9, 5, 2, 8, 4, 6} { // 1..9 and 20, shuffled
		runs = append(runs, time.Duration(v)*time.Millisecond)
	}
	s := summarize(runs)
	want := ColdStartStats{Runs: runs, Min: 1 * time.Millisecond, P10: 1 * time.Millisecond,
		Median: 5500 * time.Microsecond, P90: 9 * time.Millisecond, Max: 20 * time.Millisecond}
	if s.Min != want.Min || s.P10 != want.P10 || s.Median != want.Median || s.P90 != want.P90 || s.Max != want.Max {
		t.Errorf("summarize = %v, want %v", s, want)
	}
	if !slices.Equal(runs[:3], []time.Duration{7 * time.Millisecond, 3 * time.Millisecond, 20 * time.Millisecond}) {
		t.Errorf("summarize reordered its input: %v", runs)
	}
	one := summarize([]time.Duration{4 * time.Millisecond})
	if one.Min != one.P10 || one.P10 != one.Median || one.Median != one.P90 || one.P90 != one.Max {
		t.Errorf("one run: %v", one)
	}
	if z := summarize(nil); z.Median != 0 {
		t.Errorf("no runs: %v", z)
	}
	base := ColdStartStats{Median: 8 * time.Millisecond}
	if got := s.OwnInit(base); got != -2500*time.Microsecond {
		t.Errorf("OwnInit = %v", got)
	}
	for _, c := range []struct{ n, p, want int }{{10, 10, 0}, {10, 90, 8}, {20, 10, 1}, {20, 90, 17}, {1, 10, 0}, {1, 90, 0}, {3, 90, 2}} {
		if got := nearestRank(c.n, c.p); got != c.want {
			t.Errorf("nearestRank(%d, %d) = %d, want %d", c.n, c.p, got, c.want)
		}
	}
}

// TestMeasureColdStartsInterleaved runs two bootstraps twice each under the emulator and checks
// the shape of the result: one ColdStartStats per target, every run counted (no timing checked).
func TestMeasureColdStartsInterleaved(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	hello, err := BuildHello(context.Background(), root, filepath.Join(buildDir, HelloFunction))
	if err != nil {
		t.Fatal(err)
	}
	targets := []ColdStartTarget{
		{Name: HelloFunction, Bootstrap: hello, Payload: []byte("{}")},
		{Name: "app", Bootstrap: bootstrap(t, "app"), Env: memoryStore, Payload: DefaultPayload(root, "app")},
	}
	stats, err := MeasureColdStarts(context.Background(), Options{RepoRoot: root}, targets, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || len(stats[0].Runs) != 2 || len(stats[1].Runs) != 2 {
		t.Fatalf("stats = %v", stats)
	}
	for i, s := range stats {
		if s.Min <= 0 || s.Min > s.Median || s.Median > s.Max || s.EmulatorUp <= 0 {
			t.Errorf("%s: %v", targets[i].Name, s)
		}
	}
}

func TestErrorFromLogs(t *testing.T) {
	logs := "START RequestId: x Version: $LATEST\n" +
		"26 Nov 2026 14:18:06,176 [WARNING] (rapid) First fatal error stored in appctx: Runtime.ExitError\n" +
		"26 Nov 2026 14:18:06,176 [ERROR] (rapid) Init failed InvokeID= error=Runtime exited with error: exit status 1\n" +
		"26 Nov 2026 14:18:06,176 [ERROR] (rapid) Invoke DONE failed: Sandbox.Failure\n"
	typ, msg := errorFromLogs(logs, 502)
	if typ != "Runtime.ExitError" || msg != "Runtime exited with error: exit status 1" {
		t.Errorf("got %q, %q", typ, msg)
	}
	if typ, _ := errorFromLogs("", 500); typ != "Emulator.HTTP500" {
		t.Errorf("got %q", typ)
	}
}

// TestTimeout runs a bootstrap that never asks for its invocation: the emulator gives up after
// AWS_LAMBDA_FUNCTION_TIMEOUT and the Result says Sandbox.Timedout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := Options{RepoRoot: repoRoot(t)}.Start(context.Background(), bin, map[string]string{"AWS_LAMBDA_FUNCTION_TIMEOUT": "1"})
	if err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	r := invoke(t, e, []byte(`{}`))
	if !r.Failed() || r.ErrorType != "Sandbox.Timedout" {
		t.Fatalf("status %d, errorType %q, errorMessage %q, body %q\n%s", r.StatusCode, r.ErrorType, r.ErrorMessage, r.Body, e.Logs())
	}
	t.Logf("status %d: %s: %s", r.StatusCode, r.ErrorType, r.ErrorMessage)
}
