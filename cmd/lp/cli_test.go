package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
)

// commands are every lp command with a flag set.
var commands = []string{"runs", "show", "metrics", "replay", "init-local"}

// lpEnv runs lp with the given environment (and nothing of the process's).
func lpEnv(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	status = run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), status
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, cmd := range commands {
		for _, h := range []string{"--help", "-h"} {
			stdout, stderr, status := lp(t, cmd, h)
			assert.Equal(t, 0, status, "lp %s %s", cmd, h)
			assert.Empty(t, stderr, "lp %s %s", cmd, h)
			assert.Contains(t, stdout, "Usage:\n  lp "+cmd+" ")
			assert.Contains(t, stdout, "Flags:\n")
			assert.Contains(t, stdout, "Example:\n")
			assert.Contains(t, stdout, "\n  lp "+cmd+" ")
			assert.Contains(t, stdout, "--endpoint string", "lp %s %s lists the shared flags", cmd, h)
			assert.Contains(t, stdout, "--timeout duration")
		}
	}
	stdout, _, _ := lp(t, "show", "--help")
	assert.Contains(t, stdout, "--pipeline string")
	stdout, _, _ = lp(t, "runs", "--help")
	assert.Contains(t, stdout, "--limit int")
	assert.Contains(t, stdout, "(default 20)")
	stdout, _, _ = lp(t, "replay", "--help")
	assert.Contains(t, stdout, "--strict")
	assert.Contains(t, stdout, "--render")

	for _, h := range []string{"--help", "-h", "help"} {
		stdout, stderr, status := lp(t, h)
		assert.Equal(t, 0, status)
		assert.Empty(t, stderr)
		assert.Contains(t, stdout, "lp show    [--pipeline P]")
		assert.Contains(t, stdout, "--stack NAME")
	}
}

func TestBadFlagIsReportedOnce(t *testing.T) {
	for _, cmd := range commands {
		stdout, stderr, status := lp(t, cmd, "--bogus")
		assert.Equal(t, 2, status, "lp %s --bogus", cmd)
		assert.Empty(t, stdout, "lp %s --bogus", cmd)
		assert.Equal(t, 1, strings.Count(stderr, "flag provided but not defined: -bogus"), "lp %s: %q", cmd, stderr)
		assert.Contains(t, stderr, "Run 'lp "+cmd+" --help' for usage.")
		assert.LessOrEqual(t, strings.Count(stderr, "\n"), 2, "one error and one hint, not the whole usage: %q", stderr)
	}
	_, stderr, status := lp(t, "runs", "--limit", "0")
	assert.Equal(t, 2, status)
	assert.Contains(t, stderr, "--limit must be from 1 to 1000")
	_, stderr, status = lp(t, "frobnicate")
	assert.Equal(t, 2, status)
	assert.Contains(t, stderr, `unknown command "frobnicate"`)
	_, _, status = lp(t)
	assert.Equal(t, 2, status)
}

func TestVersion(t *testing.T) {
	for _, v := range []string{"--version", "version"} {
		stdout, stderr, status := lp(t, v)
		assert.Equal(t, 0, status)
		assert.Empty(t, stderr)
		assert.Regexp(t, `^lp (v\S+|devel)( \(commit [0-9a-f]+(-dirty)?\))?\n$`, stdout)
	}
	version, commit = "v1.2.3", "0123456789abcdef"
	t.Cleanup(func() { version, commit = "", "" })
	stdout, _, _ := lp(t, "--version")
	assert.Equal(t, "lp v1.2.3 (commit 0123456789ab)\n", stdout)
}

// TestBinary runs the built command, as a user does: exit statuses, streams, the version.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lp")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9 -X main.commit=feedfacecafe", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, c := range []struct {
		args       []string
		status     int
		stdout     string
		stderrOnce string
	}{
		{[]string{"--version"}, 0, "lp v9.9.9 (commit feedfacecafe)", ""},
		{[]string{"runs", "--help"}, 0, "Usage:\n  lp runs", ""},
		{[]string{"show", "-h"}, 0, "--pipeline string", ""},
		{[]string{"replay", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"replay", os.DevNull}, 1, "", "no events in the files given"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, c.status, status, "lp %v: %s", c.args, stderr.String())
		assert.Contains(t, stdout.String(), c.stdout, "lp %v", c.args)
		if c.stderrOnce != "" {
			assert.Equal(t, 1, strings.Count(stderr.String(), c.stderrOnce), "lp %v: %s", c.args, stderr.String())
		} else if c.status == 0 {
			assert.Empty(t, stderr.String(), "lp %v", c.args)
		}
	}
}

// silentEndpoint accepts connections and never answers; it holds them until the test ends.
func silentEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, write nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// An endpoint that accepts and never answers fails every command within its client timeout,
// with a message that says so. The timeout is short here (LP_TIMEOUT); the test asserts the
// failure and its message, not how long it took.
func TestEndpointThatNeverAnswers(t *testing.T) {
	endpoint := silentEndpoint(t)
	env := map[string]string{"LP_TIMEOUT": "150ms"}
	for _, args := range [][]string{
		{"runs"}, {"show", "a1f0c2d4"}, {"metrics"}, {"init-local"},
		{"replay", "testdata/scenarios/shared/red-then-green.ndjson"},
		{"runs", "--stack", "my-lambda-control-plane"}, // the stack look-up (CloudFormation) too
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			e := env
			if len(args) > 1 && args[1] == "--stack" {
				e = map[string]string{"LP_TIMEOUT": "150ms", "AWS_ENDPOINT_URL_CLOUDFORMATION": endpoint}
			}
			_, stderr, status := lpEnv(t, e, append(args, "--endpoint", endpoint)...)
			assert.Equal(t, 1, status, stderr)
			assert.Contains(t, stderr, "did not answer within 150ms (--timeout, LP_TIMEOUT; 3 attempts)")
			assert.NotContains(t, stderr, "CreateTable")
			assert.Equal(t, 1, strings.Count(stderr, "did not answer"), "reported once: %q", stderr)
		})
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{{"runs"}, {"init-local"}, {"replay", "testdata/scenarios/shared/red-then-green.ndjson"}} {
		_, stderr, status := lpEnv(t, nil, append(args, "--endpoint", endpoint)...)
		assert.Equal(t, 1, status, stderr)
		assert.Contains(t, stderr, "cannot reach DynamoDB at "+endpoint)
		assert.NotContains(t, stderr, "create table")
	}
}

// Read commands create nothing: a table that does not exist is an error saying so, and the
// local DynamoDB still has no table afterwards.
func TestReadCommandsCreateNoTable(t *testing.T) {
	srv := dynalitetest.Start(t)
	db := srv.Client(t)
	for _, args := range [][]string{{"runs"}, {"runs", "--json"}, {"show", "a1f0c2d4"}, {"metrics"}} {
		_, stderr, status := lpEnv(t, nil, append(args, "--endpoint", srv.Endpoint(), "--table", "typo")...)
		assert.Equal(t, 1, status, "%v", args)
		assert.Contains(t, stderr, "table typo does not exist at "+srv.Endpoint(), "%v", args)
		assert.Contains(t, stderr, "lp init-local", "%v: says how to make one", args)
	}
	tables, err := db.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	assert.Empty(t, tables.TableNames, "a read command created a table")

	// lp init-local creates it; then an empty table lists as [] in JSON.
	stdout, stderr, status := lpEnv(t, nil, "init-local", "--endpoint", srv.Endpoint(), "--table", "runs")
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "table runs ready")
	stdout, stderr, status = lpEnv(t, nil, "runs", "--json", "--endpoint", srv.Endpoint(), "--table", "runs")
	require.Equal(t, 0, status, stderr)
	assert.Equal(t, "[]\n", stdout)
	tables, err = db.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	assert.Equal(t, []string{"runs"}, tables.TableNames)

	// Without an endpoint, init-local refuses: in AWS the stack owns the table.
	_, stderr, status = lpEnv(t, nil, "init-local")
	assert.Equal(t, 2, status)
	assert.Contains(t, stderr, "--endpoint is required")
}

// With a local endpoint and no credentials in the environment, lp reads no shared config and
// never calls the instance-metadata service.
func TestLocalEndpointNeverCallsIMDS(t *testing.T) {
	var imdsCalls atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imdsCalls.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(imds.Close)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("HOME", t.TempDir())
	srv := dynalitetest.Start(t)

	_, stderr, status := lpEnv(t, nil, "init-local", "--endpoint", srv.Endpoint())
	require.Equal(t, 0, status, stderr)
	_, stderr, status = lpEnv(t, nil, "runs", "--endpoint", srv.Endpoint())
	require.Equal(t, 0, status, stderr)
	assert.Zero(t, imdsCalls.Load(), "lp called the instance-metadata service")
	assert.NotContains(t, stderr, "IMDS")
}

// The runs table is found from the control-plane stack's RunsTableName output.
func TestTableFromStack(t *testing.T) {
	var asked atomic.Value
	cfn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		asked.Store(r.Form.Get("Action") + " " + r.Form.Get("StackName"))
		if r.Form.Get("StackName") != "my-lambda-control-plane" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id nope does not exist</Message></Error><RequestId>1</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprint(w, `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>
<StackName>my-lambda-control-plane</StackName><StackStatus>CREATE_COMPLETE</StackStatus><CreationTime>2026-11-01T00:00:00Z</CreationTime>
<Outputs><member><OutputKey>PipelineName</OutputKey><OutputValue>my-lambda-pipeline</OutputValue></member>
<member><OutputKey>RunsTableName</OutputKey><OutputValue>my-lambda-control-plane-RunsTable-1A2B3C</OutputValue></member></Outputs>
</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeStacksResponse>`)
	}))
	t.Cleanup(cfn.Close)
	srv := dynalitetest.Start(t)
	env := map[string]string{"AWS_ENDPOINT_URL_CLOUDFORMATION": cfn.URL, "LP_STACK": "my-lambda-control-plane"}

	_, stderr, status := lpEnv(t, env, "runs", "--endpoint", srv.Endpoint())
	assert.Equal(t, 1, status)
	assert.Equal(t, "DescribeStacks my-lambda-control-plane", asked.Load())
	assert.Contains(t, stderr, "table my-lambda-control-plane-RunsTable-1A2B3C does not exist", "the table the stack names")

	_, stderr, status = lpEnv(t, env, "runs", "--endpoint", srv.Endpoint(), "--stack", "nope")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "find the runs table from stack nope (--stack)")

	_, stderr, status = lpEnv(t, env, "runs", "--endpoint", srv.Endpoint(), "--table", "explicit")
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "table explicit does not exist", "--table wins over the stack")
}

func TestSamconfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	stack, region := samconfig()
	assert.Empty(t, stack+region)
	require.NoError(t, os.WriteFile("samconfig.toml", []byte("version = 0.1\n[default.global.parameters]\nstack_name = \"cp\"\n[default.deploy.parameters]\nregion = \"eu-west-1\"\n"), 0o644))
	stack, region = samconfig()
	assert.Equal(t, "cp", stack)
	assert.Equal(t, "eu-west-1", region)
}

// maxWidth is the widest line of s, in runes (what a terminal shows).
func maxWidth(s string) (int, string) {
	w, widest := 0, ""
	for _, l := range strings.Split(s, "\n") {
		if n := utf8.RuneCountInString(l); n > w {
			w, widest = n, l
		}
	}
	return w, widest
}

// make replay and lp runs print no line wider than 100 columns; --wide is not cut.
func TestOutputFits100Columns(t *testing.T) {
	files, err := filepath.Glob("../../events/replay/*.ndjson") // what `make replay` replays
	require.NoError(t, err)
	require.NotEmpty(t, files)
	stdout, stderr, status := lp(t, append([]string{"replay"}, files...)...)
	require.Equal(t, 0, status, stderr)
	w, line := maxWidth(stdout)
	assert.LessOrEqual(t, w, 100, "make replay: %q", line)
	assert.NotContains(t, stdout, "\x1b[", "no colour into a pipe")

	srv := dynalitetest.Start(t)
	db := []string{"--endpoint", srv.Endpoint()}
	_, stderr, status = lpEnv(t, nil, append(append([]string{"replay"}, db...), files...)...)
	require.Equal(t, 0, status, stderr)
	stdout, stderr, status = lpEnv(t, nil, append([]string{"runs"}, db...)...)
	require.Equal(t, 0, status, stderr)
	w, line = maxWidth(stdout)
	assert.LessOrEqual(t, w, 100, "lp runs: %q", line)
	assert.NotContains(t, stdout, "AUTHOR", "no author in any run: no column")
	assert.Contains(t, stdout, "a1f0c2d4…0003", "ids abbreviated, told apart")

	stdout, stderr, status = lpEnv(t, nil, append([]string{"runs", "--wide"}, db...)...)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "a1f0c2d4-1111-4a5b-8c6d-000000000003", "--wide: full ids")
	assert.Contains(t, stdout, "CreateUpdateLambda/DeployFunction", "--wide: nothing cut")

	// lp show takes the abbreviation lp runs printed, and shows the full reason.
	stdout, stderr, status = lpEnv(t, nil, append([]string{"show", "a1f0c2d4…0003"}, db...)...)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "a1f0c2d4-1111-4a5b-8c6d-000000000003")
	assert.Contains(t, stdout, "failed in CreateUpdateLambda/DeployFunction: JobFailed")
	_, stderr, status = lpEnv(t, nil, append([]string{"show", "a1f0c2d4"}, db...)...)
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "ambiguous")

	// JSON leaves unknown times out.
	stdout, stderr, status = lpEnv(t, nil, append([]string{"runs", "--json"}, db...)...)
	require.Equal(t, 0, status, stderr)
	assert.NotContains(t, stdout, "0001-01-01")
	var runs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &runs))
	assert.Len(t, runs, 4)
	stdout, _, _ = lpEnv(t, nil, append([]string{"show", "--json", "a1f0c2d4-1111-4a5b-8c6d-000000000001"}, db...)...)
	assert.NotContains(t, stdout, "0001-01-01")
	assert.True(t, json.Valid([]byte(stdout)))
}

func TestReplayStrictAndEmpty(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.ndjson")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, stderr, status := lp(t, "replay", empty)
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "no events in the files given")

	bad := filepath.Join(dir, "bad.ndjson")
	require.NoError(t, os.WriteFile(bad, []byte("{\"detail-type\": 1}\nnot json\n"), 0o644))
	_, stderr, status = lp(t, "replay", bad)
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "every event was rejected (2)")

	good, err := os.ReadFile("testdata/scenarios/shared/red-then-green.ndjson")
	require.NoError(t, err)
	mixed := filepath.Join(dir, "mixed.ndjson")
	require.NoError(t, os.WriteFile(mixed, append(append([]byte{}, good...), []byte("\nnot json\n")...), 0o644))
	_, stderr, status = lp(t, "replay", mixed)
	assert.Equal(t, 0, status, "a rejected line does not fail a replay by default: %s", stderr)
	_, stderr, status = lp(t, "replay", "--strict", mixed)
	assert.Equal(t, 1, status)
	assert.Contains(t, stderr, "1 of ")
	assert.Contains(t, stderr, "rejected (--strict)")
	stdout, _, status := lp(t, "replay", "--json", "--strict", mixed)
	assert.Equal(t, 1, status)
	assert.True(t, json.Valid([]byte(stdout)), "the report is still printed")
}

func TestFailureWithoutStagesHasNoEmptyWhere(t *testing.T) {
	stdout, stderr, status := lp(t, "replay", "--render", "../../events/pipeline-failed.json")
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "notify FAILED")
	assert.NotContains(t, stdout, "at /")
	assert.NotContains(t, stdout, " / :")
}

func TestFlagsAfterOperands(t *testing.T) {
	fs := newFlags("x")
	j := fs.Bool("json", false, "")
	require.NoError(t, parse(fs, help{name: "x"}, []string{"ID", "--json", "--", "--not-a-flag"}, &bytes.Buffer{}))
	assert.True(t, *j)
	assert.Equal(t, []string{"ID", "--not-a-flag"}, fs.Args())
}

func TestShortIDs(t *testing.T) {
	ids := []string{"3f1c2a7e-8b4d-4c8e-9a51-6f0d2b7c9e11", "a1f0c2d4-1111-4a5b-8c6d-000000000001", "a1f0c2d4-1111-4a5b-8c6d-000000000002"}
	got := shortIDs(ids)
	assert.Equal(t, "3f1c2a7e", got[ids[0]])
	assert.Equal(t, "a1f0c2d4…0001", got[ids[1]])
	assert.Equal(t, "a1f0c2d4…0002", got[ids[2]])
	for _, id := range ids {
		assert.True(t, matchesShort(id, got[id]))
	}
	assert.False(t, matchesShort(ids[1], got[ids[2]]))
}

func TestColourOnlyOnATerminal(t *testing.T) {
	g := grid{cols: []column{{title: "STATUS", status: true}}}
	g.add("FAILED")
	var b bytes.Buffer
	g.render(&b, 100, true)
	assert.Contains(t, b.String(), "\x1b[31mFAILED\x1b[0m")
	assert.False(t, useColour(&b, noEnv), "a buffer is no terminal")
	assert.False(t, useColour(os.Stdout, func(k string) string { return map[string]string{"NO_COLOR": "1"}[k] }))
}
