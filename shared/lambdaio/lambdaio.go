// Package lambdaio holds what every lambda-pipeline handler shares at its boundary: the JSON
// logger in Lambda's format, the response a handler returns, and how a handler reads its
// configuration from the environment.
package lambdaio

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Outcomes a handler reports in its Response.
const (
	OutcomeRecorded = "recorded" // the event changed the record
	OutcomeIgnored  = "ignored"  // a duplicate or stale event: nothing to do
	OutcomeSkipped  = "skipped"  // a valid event this deployment does not act on (another branch, a tag)
	OutcomeRejected = "rejected" // malformed or unsupported input: logged and dropped, not retried
	OutcomeDone     = "done"
)

// Response is what a handler returns. For asynchronous EventBridge invocations Lambda discards
// it; under `scripts/invoke` and `sam local invoke` it shows what happened.
type Response struct {
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	// Project is the declared project the pipeline belongs to; Undeclared says it belongs to
	// none (its run is recorded all the same, docs/projects.md).
	Project       string   `json:"project,omitempty"`
	Undeclared    bool     `json:"undeclared,omitempty"`
	ExecutionID   string   `json:"executionId,omitempty"`
	Status        string   `json:"status,omitempty"`
	Notifications []string `json:"notifications,omitempty"`
}

// NewLogger returns the slog logger every function installs: Lambda's JSON log format (when
// AWS_LAMBDA_LOG_FORMAT=JSON, as the template sets it), with the request id of each invocation.
func NewLogger() *slog.Logger { return lambdacontext.NewLogger() }

// Env reads configuration variables and remembers which required ones are missing, so that a
// function's Load can report all of them at once.
type Env struct {
	getenv  func(string) string
	missing []string
	bad     []string
}

// NewEnv reads through getenv (os.Getenv in main, a map in tests).
func NewEnv(getenv func(string) string) *Env {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Env{getenv: getenv}
}

// Required returns the variable's value and records it as missing when empty.
func (e *Env) Required(name string) string {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		e.missing = append(e.missing, name)
	}
	return v
}

// Optional returns the variable's value, or def when empty.
func (e *Env) Optional(name, def string) string {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an integer within [lo, hi], or def when empty.
func (e *Env) Int(name string, def, lo, hi int) int {
	v := strings.TrimSpace(e.getenv(name))
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v || n < lo || n > hi {
		e.bad = append(e.bad, fmt.Sprintf("%s=%q (want a whole number from %d to %d)", name, v, lo, hi))
		return def
	}
	return n
}

// Invalid records that the variable's value is not what it should be (want says what is).
func (e *Env) Invalid(name, value, want string) {
	e.bad = append(e.bad, fmt.Sprintf("%s=%q (want %s)", name, value, want))
}

// Err reports every missing or invalid variable, or nil.
func (e *Env) Err() error {
	var errs []error
	if len(e.missing) > 0 {
		sort.Strings(e.missing)
		errs = append(errs, fmt.Errorf("missing environment variables: %s", strings.Join(e.missing, ", ")))
	}
	if len(e.bad) > 0 {
		errs = append(errs, fmt.Errorf("invalid environment variables: %s", strings.Join(e.bad, "; ")))
	}
	return errors.Join(errs...)
}
