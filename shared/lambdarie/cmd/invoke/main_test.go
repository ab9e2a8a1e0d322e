//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdarie"
)

func invoke(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func event(t *testing.T, name string) string {
	t.Helper()
	root, err := lambdarie.RepoRoot("")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "events", name)
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"help":            {[]string{"--help"}, exitOK, "Exit status"},
		"no args":         {nil, exitUsage, "usage: scripts/invoke"},
		"unknown":         {[]string{"nope", event(t, "push-main.json")}, exitUsage, "on-pipeline-event (OnPipelineEventFunction)"},
		"missing event":   {[]string{"deployer", "no-such-file.json"}, exitUsage, "no-such-file.json"},
		"not json":        {[]string{"deployer", "main.go"}, exitUsage, "not JSON"},
		"bad flag":        {[]string{"-nope", "deployer", "x"}, exitUsage, "flag provided but not defined"},
		"bad env":         {[]string{"-env", "NOEQUALS", "deployer", "x"}, exitUsage, "KEY=VALUE"},
		"three arguments": {[]string{"deployer", "a", "b"}, exitUsage, "got 3"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := invoke(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	t.Run("recorded", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := invoke(t, "", "OnPipelineEventFunction", event(t, "action-failed-build.json"))
		var body map[string]any
		if code != exitOK || json.Unmarshal([]byte(stdout), &body) != nil || body["outcome"] != "recorded" {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, `"executionId"`) || strings.Contains(stderr, "(rapid)") {
			t.Errorf("stderr should hold the function's log lines only:\n%s", stderr)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		t.Parallel()
		b, err := os.ReadFile(event(t, "pipeline-failed.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		delete(ev["detail"].(map[string]any), "execution-id")
		b, _ = json.Marshal(ev)
		code, stdout, stderr := invoke(t, string(b), "-q", "on-pipeline-event", "-")
		if code != exitRejected || !strings.Contains(stdout, "detail.execution-id") || !strings.Contains(stderr, "rejected: ") {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := invoke(t, "{}", "deployer", "-")
		if code != exitError || !strings.Contains(stdout, `"errorType"`) {
			t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
}

func TestPassThrough(t *testing.T) {
	for name, want := range map[string]bool{
		"LP_STORE": true, "LP_ANYTHING": true, "RUNS_TABLE": true, "AWS_ENDPOINT_URL": true,
		"AWS_ENDPOINT_URL_DYNAMODB": true, "AWS_PROFILE": false, "AWS_ACCESS_KEY_ID": false, "HOME": false,
	} {
		if passThrough(name) != want {
			t.Errorf("passThrough(%s) = %v", name, !want)
		}
	}
}
