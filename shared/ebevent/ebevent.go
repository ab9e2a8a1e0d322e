// Package ebevent decodes and validates the EventBridge events lambda-pipeline reacts to: the
// three "CodePipeline … Execution State Change" detail-types and "CodeCommit Repository State
// Change". It turns them into pipeline.Event and pipeline.Push.
//
// aws-lambda-go's CodePipelineEventDetail lacks most documented fields (start-time,
// execution-trigger, pipeline-execution-attempt, action-execution-id, artifacts) and states
// (STOPPING, STOPPED, ABANDONED, ...), so the detail types here are our own. The envelope is
// our own too, so that a bad `time` or a missing `detail-type` is reported by name, and so that
// the notification-rule form (`detailType`) decodes as well.
//
// Every error is an *Error naming the offending field; no input makes a decoder panic or return
// a half-filled value.
package ebevent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Detail-types and sources handled here.
const (
	SourceCodePipeline = "aws.codepipeline"
	SourceCodeCommit   = "aws.codecommit"

	DetailPipeline   = "CodePipeline Pipeline Execution State Change"
	DetailStage      = "CodePipeline Stage Execution State Change"
	DetailAction     = "CodePipeline Action Execution State Change"
	DetailRepository = "CodeCommit Repository State Change"
)

// Error kinds, for errors.Is.
var (
	// ErrMalformed: the input is not a well-formed event (bad JSON, a missing or invalid field).
	ErrMalformed = errors.New("malformed event")
	// ErrUnsupported: a well-formed event of a kind this project does not handle.
	ErrUnsupported = errors.New("unsupported event")
)

// Error is a decoding failure. Field is the JSON path of the offending field ("" for the
// whole document).
type Error struct {
	Field  string
	Reason string
	Kind   error // ErrMalformed or ErrUnsupported
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%v: %s", e.Kind, e.Reason)
	}
	return fmt.Sprintf("%v: %s: %s", e.Kind, e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrMalformed) and errors.Is(err, ErrUnsupported) work.
func (e *Error) Is(target error) bool { return target == e.Kind }

func malformed(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrMalformed}
}

func unsupported(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...), Kind: ErrUnsupported}
}

// Envelope is the EventBridge event around a detail.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`

	// DetailTypeAlt is the notification-rule spelling of detail-type.
	DetailTypeAlt string `json:"detailType"`
}

// Decoded is one decoded event: exactly one of Pipeline and Push is set.
type Decoded struct {
	Pipeline *pipeline.Event
	Push     *pipeline.Push
}

// Decode decodes any event this project handles.
func Decode(data []byte) (Decoded, error) {
	env, t, err := decodeEnvelope(data)
	if err != nil {
		return Decoded{}, err
	}
	switch env.DetailType {
	case DetailPipeline, DetailStage, DetailAction:
		ev, err := pipelineEvent(env, t)
		if err != nil {
			return Decoded{}, err
		}
		return Decoded{Pipeline: &ev}, nil
	case DetailRepository:
		p, err := push(env, t)
		if err != nil {
			return Decoded{}, err
		}
		return Decoded{Push: &p}, nil
	}
	return Decoded{}, unsupported("detail-type", "%q is not handled", env.DetailType)
}

// DecodePipelineEvent decodes a CodePipeline execution state change of any of the three levels.
func DecodePipelineEvent(data []byte) (pipeline.Event, error) {
	env, t, err := decodeEnvelope(data)
	if err != nil {
		return pipeline.Event{}, err
	}
	return pipelineEvent(env, t)
}

// DecodePush decodes a CodeCommit Repository State Change.
func DecodePush(data []byte) (pipeline.Push, error) {
	env, t, err := decodeEnvelope(data)
	if err != nil {
		return pipeline.Push{}, err
	}
	if env.DetailType != DetailRepository {
		return pipeline.Push{}, unsupported("detail-type", "%q is not %q", env.DetailType, DetailRepository)
	}
	return push(env, t)
}

func decodeEnvelope(data []byte) (Envelope, time.Time, error) {
	var env Envelope
	if err := strictUnmarshal(data, &env); err != nil {
		return Envelope{}, time.Time{}, jsonError("", err)
	}
	if env.DetailType == "" {
		env.DetailType = env.DetailTypeAlt
	}
	if env.DetailType == "" {
		return Envelope{}, time.Time{}, malformed("detail-type", "missing")
	}
	if env.Time == "" {
		return Envelope{}, time.Time{}, malformed("time", "missing")
	}
	t, err := time.Parse(time.RFC3339Nano, env.Time)
	if err != nil {
		return Envelope{}, time.Time{}, malformed("time", "%q is not an RFC 3339 time", env.Time)
	}
	if err := checkPast("time", t); err != nil {
		return Envelope{}, time.Time{}, err
	}
	if len(env.Detail) == 0 || bytes.Equal(env.Detail, []byte("null")) {
		return Envelope{}, time.Time{}, malformed("detail", "missing")
	}
	return env, t.UTC(), nil
}

// Event times the decoder accepts. CodePipeline was launched on 9 July 2015 ("AWS
// CodePipeline – Now Generally Available", https://aws.amazon.com/about-aws/whats-new/2015/07/aws-codepipeline-now-generally-available/):
// an earlier time, and the zero time in particular, is impossible. MaxClockSkew bounds how far
// an event may be dated ahead of the receiver's clock (CheckTimes): EventBridge stamps events
// with AWS's clock, which Lambda's hosts share, so minutes ahead already means a forged or
// broken event, and one dated years ahead would otherwise rank last for ever.
var earliestEventTime = time.Date(2015, 7, 9, 0, 0, 0, 0, time.UTC)

// MaxClockSkew is how far ahead of the receiver's clock an event time may be.
const MaxClockSkew = 15 * time.Minute

// checkPast refuses a time before CodePipeline existed.
func checkPast(field string, t time.Time) error {
	if t.Before(earliestEventTime) {
		return malformed(field, "%s is before CodePipeline existed (%s): not a real event time", t.Format(time.RFC3339), earliestEventTime.Format("2006-01-02"))
	}
	return nil
}

// CheckTimes refuses an event dated more than MaxClockSkew ahead of now (the receiver's clock),
// naming the field: "time", or "detail.start-time". The error is ErrMalformed: the event is
// dropped, not retried (a retry sees the same time).
func CheckTimes(ev pipeline.Event, now time.Time) error {
	limit := now.Add(MaxClockSkew)
	if ev.Time.After(limit) {
		return malformed("time", "%s is more than %s ahead of the receiver's clock (%s)", ev.Time.Format(time.RFC3339), MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	if ev.StartTime.After(limit) {
		return malformed("detail.start-time", "%s is more than %s ahead of the receiver's clock (%s)", ev.StartTime.Format(time.RFC3339), MaxClockSkew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// strictUnmarshal decodes one JSON value and refuses trailing data.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// jsonError names the field of a JSON type error, under prefix.
func jsonError(prefix string, err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		switch {
		case field == "":
			field = prefix
		case prefix != "":
			field = prefix + "." + field
		}
		return malformed(field, "expected %s, got JSON %s", te.Type, te.Value)
	}
	var ne *numberError
	if errors.As(err, &ne) {
		return malformed(ne.field(prefix), "%s", ne.reason)
	}
	if prefix == "" {
		return malformed("", "invalid JSON: %v", err)
	}
	return malformed(prefix, "invalid JSON: %v", err)
}

// number is a JSON number that must hold an integer: CodePipeline sends `version` and
// `pipeline-execution-attempt` as numbers, sometimes written 7.0.
type number struct {
	set bool
	v   int64
}

type numberError struct {
	name, reason string
}

func (e *numberError) Error() string { return e.name + ": " + e.reason }
func (e *numberError) field(prefix string) string {
	if prefix == "" {
		return e.name
	}
	return prefix + "." + e.name
}

func (n *number) decode(name string, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		// Some producers quote numbers; accept a quoted integer too.
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return &numberError{name, fmt.Sprintf("expected a number, got %s", truncate(string(raw), 40))}
		}
		var perr error
		if f, perr = strconv.ParseFloat(strings.TrimSpace(s), 64); perr != nil {
			return &numberError{name, fmt.Sprintf("expected a number, got %q", truncate(s, 40))}
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < 0 || f > 1<<53 {
		return &numberError{name, fmt.Sprintf("expected a whole number, got %v", f)}
	}
	n.set, n.v = true, int64(f)
	return nil
}

// flexString accepts a JSON string or number (aws-lambda-go's sample sends type.version as 1).
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = flexString(str)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return fmt.Errorf("expected a string or a number, got %s", truncate(string(b), 40))
	}
	*s = flexString(num.String())
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// syntheticID derives an event id from what identifies the event when AWS sent none.
func syntheticID(env Envelope) string {
	h := sha256.New()
	for _, part := range []string{env.DetailType, env.Source, env.Time, string(env.Detail)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "sha256-" + hex.EncodeToString(h.Sum(nil))[:32]
}
