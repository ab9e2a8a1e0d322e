//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdarie"
)

// TestScriptInvokesEveryFunction runs scripts/invoke, as a user does, for each of the six
// functions on its sample from events/ (the notifier on both of its samples). A function or
// emulator that cannot be built is a failure (exit status 4), never a skip.
func TestScriptInvokesEveryFunction(t *testing.T) {
	root, err := lambdarie.RepoRoot("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		function, event, outcome string
		stderr                   []string
	}{
		{"on-push", "push-main.json", "", nil},
		{"on-pipeline-event", "action-failed-build.json", "recorded", nil},
		{"deployer", "job-create-update-lambda.json", "", nil},
		{"reconciler", "reconciler-schedule.json", "done", nil},
		{"notifier", "notifier-stream-insert.json", "", []string{
			"invoke: the local Slack receiver got 1 message(s)",
			"│ # :red_circle: my-lambda-pipeline failed",
			"*BuildAndTest / Build* failed",
		}},
		{"notifier", "notifier-approval-insert.json", "", []string{
			"invoke: the local Slack receiver got 1 message(s)",
			"│ # :large_yellow_circle: my-lambda-pipeline waits for approval",
			"Approve: `lp approve --deploy-stack my-lambda-app a1f0c2d4-1111-4a5b-8c6d-000000000002`",
			"FunctionRole: added-action: s3:PutObject",
		}},
		{"app", "app-greet.json", "", []string{}},
	} {
		t.Run(c.function, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(filepath.Join(root, "scripts", "invoke"), c.function, filepath.Join(root, "events", c.event))
			cmd.Dir = t.TempDir() // any directory: the script finds the repository itself
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("scripts/invoke %s events/%s: exit status %d (4: the function or the emulator could not be built or started)\n%s", c.function, c.event, ee.ExitCode(), stderr.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &body); err != nil {
				t.Fatalf("stdout is not the JSON response: %v\n%s", err, stdout.String())
			}
			if _, failed := body["errorType"]; failed {
				t.Fatalf("the function failed: %s", stdout.String())
			}
			if c.outcome != "" && body["outcome"] != c.outcome {
				t.Errorf("outcome %v, want %s: %s", body["outcome"], c.outcome, stdout.String())
			}
			if c.function == "app" && !strings.Contains(stdout.String(), "Ana") {
				t.Errorf("the greeting does not name Ana: %s", stdout.String())
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}
