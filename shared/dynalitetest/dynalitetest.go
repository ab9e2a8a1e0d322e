//go:build unix

// Package dynalitetest gives integration tests a real DynamoDB wire-protocol
// endpoint, served by dynalite (npm, pinned in the repository's package.json)
// on 127.0.0.1.
//
// Install the Node tools once, in the repository root:
//
//	npm ci
//
// A test package that wants one dynalite process for all its tests (fast:
// node starts once per test binary) calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { dynalitetest.Main(m) }
//
//	func TestStore(t *testing.T) {
//		db := dynalitetest.Start(t).Client(t)
//		table := dynalitetest.CreateTable(t, db, &dynamodb.CreateTableInput{...}) // unique name
//		...
//	}
//
// Without Main, each Start starts its own dynalite and stops it in the test's
// Cleanup. Either way no node process outlives the test binary: the process is
// killed (whole process group) when the test or the binary ends, and a
// watchdog inside node exits as soon as the test binary's end of a pipe closes,
// which also covers a binary that panicked (for example on -timeout) or was
// killed.
//
// A missing or broken dynalite is a test failure, never a skip.
//
// Environment:
//   - DYNALITE_BIN: path of the dynalite executable (default
//     <repo root>/node_modules/.bin/dynalite, the repo root being the nearest
//     directory above the working directory that holds go.mod).
//   - DYNALITE_NODE: the node executable (default: "node" on PATH).
package dynalitetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const (
	// Region is the region of the clients and configs this package returns.
	Region = "us-east-1"

	// EnvBin overrides the path of the dynalite executable.
	EnvBin = "DYNALITE_BIN"
	// EnvNode overrides the node executable.
	EnvNode = "DYNALITE_NODE"

	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	tableTimeout = 10 * time.Second
	startTries   = 3 // a picked free port can be taken before dynalite binds it
)

// Server is a running dynalite process.
type Server struct {
	endpoint string
	port     int

	cmd      *exec.Cmd
	lifeline *os.File      // write end of the child's stdin; closing it ends the child
	exited   chan struct{} // closed when the process has been reaped
	waitErr  error         // valid after exited is closed
	output   *tailBuffer

	stopOnce sync.Once
	stopErr  error
}

// Endpoint returns the base URL, "http://127.0.0.1:PORT".
func (s *Server) Endpoint() string { return s.endpoint }

// Port returns the TCP port dynalite listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// Config returns an aws.Config pointing at this server: region us-east-1,
// static dummy credentials, BaseEndpoint set. It loads no shared config and
// no environment, so it can never reach real AWS or read ~/.aws.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(s.endpoint),
	}
}

// Client returns a DynamoDB client for this server (see Config). optFns are
// applied last, so a test can, for example, turn retries off.
func (s *Server) Client(tb testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	return dynamodb.NewFromConfig(s.Config(), optFns...)
}

// Stop kills the dynalite process group and waits for the process. It is
// safe to call more than once and concurrently.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd.Process != nil {
			// Negative pid: the whole process group (Setpgid made the child its leader).
			if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				_ = s.cmd.Process.Kill()
			}
		}
		_ = s.lifeline.Close()
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			s.stopErr = fmt.Errorf("dynalitetest: dynalite (pid %d) did not exit within %s of SIGKILL", s.cmd.Process.Pid, stopTimeout)
		}
	})
	return s.stopErr
}

// ---- shared server (Main) ----

var shared struct {
	mu      sync.Mutex
	enabled bool
	server  *Server
	err     error // a failed start is not retried: every later Start fails fast with it
}

// Main runs the test binary's tests with one dynalite process shared by every
// Start call, started lazily (tests that never call Start cost nothing), and
// stops it after the tests. Call it from TestMain:
//
//	func TestMain(m *testing.M) { dynalitetest.Main(m) }
//
// It returns m.Run's exit code; a TestMain that returns lets the testing
// package exit with that code, or one can write os.Exit(dynalitetest.Main(m)).
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()

	defer stopShared()
	return m.Run()
}

func stopShared() {
	shared.mu.Lock()
	s := shared.server
	shared.server, shared.enabled = nil, false
	shared.mu.Unlock()
	if s != nil {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// Start returns a running dynalite. Under Main it is the binary's shared
// process; otherwise a new process that tb's Cleanup stops. Tests sharing a
// process should use their own tables (UniqueTableName, CreateTable).
//
// If dynalite is missing or cannot start, Start fails the test (tb.Fatalf)
// with instructions: run `npm ci` in the repository root.
func Start(tb testing.TB) *Server {
	tb.Helper()

	shared.mu.Lock()
	if shared.enabled {
		defer shared.mu.Unlock()
		if shared.server == nil && shared.err == nil {
			shared.server, shared.err = start()
		}
		if shared.err != nil {
			tb.Fatalf("%v", shared.err)
		}
		return shared.server
	}
	shared.mu.Unlock()

	s, err := start()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return s
}

// ---- process start ----

const npmHint = "run `npm ci` in the repository root (it installs the pinned dynalite from package.json into node_modules/), or set " + EnvBin + " to a dynalite executable"

// watchdog runs dynalite's CLI inside node and exits when stdin reaches EOF,
// that is when the Go test binary (holding the pipe's write end) is gone,
// however it ended. argv[1] is the CLI script; the rest are its arguments.
const watchdog = `'use strict';
const cli = process.argv[1];
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.argv = [process.argv[0], cli].concat(process.argv.slice(2));
require(cli);
`

func start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	argv, err := command(bin)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for try := 0; try < startTries; try++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("dynalitetest: pick a free port on 127.0.0.1: %w", err)
		}
		s, err := launch(argv, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	return nil, lastErr
}

// findBin returns the dynalite executable: $DYNALITE_BIN, else
// <repo root>/node_modules/.bin/dynalite.
func findBin() (string, error) {
	if bin := os.Getenv(EnvBin); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", fmt.Errorf("dynalitetest: %s=%q: %w; %s", EnvBin, bin, err, npmHint)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("dynalitetest: dynalite not found at %s (from %s): %w; %s", abs, EnvBin, err, npmHint)
		}
		return abs, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("dynalitetest: dynalite not found at %s: %w; %s", bin, err, npmHint)
	}
	return bin, nil
}

// repoRoot is the nearest directory, from the working directory up, that
// holds go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("dynalitetest: working directory: %w", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("dynalitetest: no go.mod in %s or any parent, so no repository root to find node_modules/.bin/dynalite in; %s", wd, npmHint)
		}
		dir = parent
	}
}

// command returns the argv prefix that runs bin. A JavaScript CLI (what npm
// links into node_modules/.bin) runs under the node watchdog; anything else
// is executed as is.
func command(bin string) ([]string, error) {
	script, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return nil, fmt.Errorf("dynalitetest: resolve %s: %w; %s", bin, err, npmHint)
	}
	if !isNodeScript(script) {
		return []string{bin}, nil
	}
	node := os.Getenv(EnvNode)
	if node == "" {
		node = "node"
	}
	nodePath, err := exec.LookPath(node)
	if err != nil {
		return nil, fmt.Errorf("dynalitetest: %s needs Node.js, but %q is not runnable: %w; install Node.js 20+ (or set %s), then run `npm ci` in the repository root", script, node, err, EnvNode)
	}
	return []string{nodePath, "-e", watchdog, "--", script}, nil
}

func isNodeScript(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".js", ".cjs":
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	return strings.HasPrefix(line, "#!") && strings.Contains(line, "node")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errAddrInUse = errors.New("address in use")

func launch(argv []string, port int) (*Server, error) {
	args := append(append([]string(nil), argv[1:]...),
		"--port", strconv.Itoa(port),
		"--host", "127.0.0.1",
		"--createTableMs", "0",
		"--deleteTableMs", "0",
		"--updateTableMs", "0",
	)
	cmd := exec.Command(argv[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second

	// The child's stdin is a pipe whose write end only this process holds
	// (os.Pipe is close-on-exec), so it closes when the test binary exits.
	lifelineR, lifelineW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("dynalitetest: pipe: %w", err)
	}
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = lifelineR, out, out

	command := strings.Join(append([]string{argv[0]}, args...), " ")
	if len(argv) > 1 && argv[1] == "-e" {
		command = strings.Join(append([]string{argv[0], "-e <watchdog> --"}, args[3:]...), " ")
	}

	began := time.Now()
	if err := cmd.Start(); err != nil {
		lifelineR.Close()
		lifelineW.Close()
		return nil, fmt.Errorf("dynalitetest: start %s: %w; %s", command, err, npmHint)
	}
	lifelineR.Close()

	s := &Server{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		port:     port,
		cmd:      cmd,
		lifeline: lifelineW,
		exited:   make(chan struct{}),
		output:   out,
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 250*time.Millisecond)
		if err == nil {
			conn.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			_ = s.Stop()
			text := out.String()
			if strings.Contains(text, "EADDRINUSE") {
				return nil, fmt.Errorf("%w: %s", errAddrInUse, text)
			}
			return nil, fmt.Errorf("dynalitetest: dynalite exited during start-up (%v) after %s: %s\noutput:\n%s\n%s",
				s.waitErr, time.Since(began).Round(time.Millisecond), command, indent(text), npmHint)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("dynalitetest: dynalite did not accept connections on %s within %s: %s\noutput:\n%s\n%s",
				addr, startTimeout, command, indent(out.String()), npmHint)
		}
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "\t(none)"
	}
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t")
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---- tables ----

var tableSeq atomic.Uint64

// UniqueTableName returns a valid DynamoDB table name, derived from the test's
// name and unique within the test binary, so tests sharing one dynalite do
// not see each other's data.
func UniqueTableName(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	for _, r := range tb.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 200 { // the limit is 255
		name = name[:200]
	}
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), tableSeq.Add(1))
}

// CreateTable creates the table described by input (TableName defaults to
// UniqueTableName(tb); input is not modified), waits until the table and its
// indexes are ACTIVE, registers a Cleanup that deletes it, and returns its
// name. Any error fails the test.
func CreateTable(tb testing.TB, client *dynamodb.Client, input *dynamodb.CreateTableInput) string {
	tb.Helper()
	in := *input
	if in.TableName == nil || *in.TableName == "" {
		in.TableName = aws.String(UniqueTableName(tb))
	}
	name := *in.TableName

	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	if _, err := client.CreateTable(ctx, &in); err != nil {
		tb.Fatalf("dynalitetest: create table %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
		defer cancel()
		_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			tb.Logf("dynalitetest: delete table %s: %v", name, err)
		}
	})

	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			tb.Fatalf("dynalitetest: describe table %s: %v", name, err)
		}
		if tableActive(out.Table) {
			return name
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("dynalitetest: table %s not ACTIVE within %s (status %s)", name, tableTimeout, out.Table.TableStatus)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func tableActive(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, gsi := range t.GlobalSecondaryIndexes {
		if gsi.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// Launch starts a dynalite process for a program rather than a test (scripts/invoke's local
// notifier): the caller stops it with Stop. DYNALITE_BIN and DYNALITE_NODE apply as for Start.
func Launch() (*Server, error) { return start() }

// ExpireTTL does what DynamoDB's time to live does, which dynalite lacks: it deletes every
// item of table whose attribute (a Number of epoch seconds) is less than now, and returns how
// many it deleted. DynamoDB deletes such items in the background, typically within a few days
// ("Working with expired items", Amazon DynamoDB Developer Guide,
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ttl-expired-items.html);
// a test calls ExpireTTL at the moment it wants them gone. Items without the attribute never
// expire.
func ExpireTTL(tb testing.TB, client *dynamodb.Client, table, attribute string, now time.Time) int {
	tb.Helper()
	ctx := context.Background()
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		tb.Fatalf("dynalitetest: describe %s: %v", table, err)
	}
	var keys []string
	for _, k := range desc.Table.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName))
	}
	cutoff := now.Unix()
	deleted := 0
	pages := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			tb.Fatalf("dynalitetest: scan %s: %v", table, err)
		}
		for _, item := range page.Items {
			n, ok := item[attribute].(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			exp, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil || exp >= cutoff {
				continue
			}
			key := map[string]types.AttributeValue{}
			for _, k := range keys {
				key[k] = item[k]
			}
			if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key}); err != nil {
				tb.Fatalf("dynalitetest: delete an expired item of %s: %v", table, err)
			}
			deleted++
		}
	}
	return deleted
}
