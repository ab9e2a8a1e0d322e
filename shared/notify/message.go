// Package notify turns a notification decision into messages people read, and delivers them.
//
// Compose builds a Message from the decision (pipeline.Notification), the run record and what
// enrichment learnt (pipeline.Details); RenderSlack and RenderSNS format it for an incoming
// webhook and for an SNS topic (e-mail). These are pure: no I/O, no clock. Every choice about
// what a message says is made in Compose; the renderers only lay it out and enforce their
// channel's limits, trimming with a visible marker rather than letting Slack or SNS reject it.
//
// Slack and SNS deliver the rendered messages. Slack retries what a retry can fix (429, 5xx,
// timeouts) within the invocation and reports what it cannot (other 4xx) as a *PermanentError;
// both return an error when the message was not delivered, so that the caller can let Lambda
// retry the event.
package notify

import (
	"strconv"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Message is what one notification says, independent of the channel.
type Message struct {
	Type pipeline.NotificationType
	// Pipeline names the pipeline for people: its name, with its account and region when it
	// is not the control plane's (pipeline.PipelineRef.String).
	Pipeline string
	// Project is the project the pipeline belongs to by the naming rule (<project>-pipeline,
	// pipeline.ProjectOfPipeline); empty for a pipeline whose name does not follow it.
	Project     string
	ExecutionID string
	Attempt     int
	// At is when the run ended (failed, succeeded).
	At time.Time
	// ConsoleURL is the execution's page in the CodePipeline console; empty when neither
	// enrichment nor the region tells it.
	ConsoleURL string

	// Where and why the run failed (failed and push-to-start).
	Stage     string
	Action    string
	Provider  string // the action's provider, e.g. CodeBuild
	ActionURL string // the action's own page (the execution result's external link)
	ErrorCode string
	Summary   string

	Commit Commit

	Build     *pipeline.BuildDetails  // a CodeBuild failure
	RootCause *pipeline.StackEvent    // a CloudFormation failure
	Artifact  *pipeline.ArtifactLinks // the BuildOutput artifact

	// Recovered: how long the pipeline was red, and the execution that turned it red.
	BrokenFor              time.Duration
	BrokenSince            time.Time
	FirstFailedExecutionID string
	FirstFailedURL         string

	// Approval: the deploy that waits for a person (its stack, and its token: the id of its
	// first job), until when, and what it widens, one change a line; WideningLeft changes were
	// left out (pipeline.ApprovalNotification bounds the list). At is when it was asked.
	Stack        string
	Deploy       string
	Deadline     time.Time
	Widening     []string
	WideningLeft int

	// Degraded lists the look-ups that failed, so that a thin message says why it is thin.
	Degraded []string
}

// Commit is the revision a message is about, its message split for display.
type Commit struct {
	ID     string
	Title  string // the first line of the commit message
	Body   string // the rest, without surrounding blank lines
	Author string
	URL    string
}

// Short is the abbreviated commit id people recognise (8 characters, as `git log` shows
// once a repository grows).
func (c Commit) Short() string {
	if len(c.ID) > 8 {
		return c.ID[:8]
	}
	return c.ID
}

// Compose builds the message for notification n about run, with what enrichment learnt in d.
// It is pure. The run record is preferred where both know a fact (it is what the events said);
// d fills what the record lacks. Free text is cleaned (valid UTF-8, no control characters or
// ANSI colours) but not shortened: the renderers fit it to their channel.
func Compose(n pipeline.Notification, run pipeline.Run, d pipeline.Details) Message {
	// A pipeline of another account or region is named with them, and its links open its
	// own region; it belongs to no project (projects are the home's).
	ref := pipeline.ParsePipelineID(first(n.Pipeline, run.Pipeline))
	region := first(ref.Region, d.Region)
	m := Message{
		Type:        n.Type,
		Pipeline:    oneLine(ref.String()),
		ExecutionID: oneLine(first(n.ExecutionID, run.ExecutionID)),
		Attempt:     n.Attempt,
		At:          n.At,
		Commit:      composeCommit(run.Commit, d.Commit),
	}
	if !ref.Foreign() {
		m.Project = pipeline.ProjectOfPipeline(ref.Name)
	}
	if m.At.IsZero() {
		m.At = run.At
	}
	m.ConsoleURL = d.ExecutionURL
	if m.ConsoleURL == "" {
		m.ConsoleURL = console.ExecutionURL(region, ref.Name, m.ExecutionID)
	}

	if n.Type != pipeline.NotifyRecovered && n.Type != pipeline.NotifyApproval {
		f := failureOf(run, n.Attempt, d.Failure)
		m.Stage, m.Action, m.Provider = oneLine(f.Stage), oneLine(f.Action), oneLine(f.Type.Provider)
		m.ActionURL = f.Result.URL
		m.ErrorCode = oneLine(f.Result.ErrorCode)
		m.Summary = strings.TrimSpace(cleanText(f.Result.Summary))
		m.Build = cleanBuild(d.Build)
		m.RootCause = cleanStackEvent(d.RootCause)
		if d.Artifact != nil {
			a := *d.Artifact
			m.Artifact = &a
		}
	}

	if n.Type == pipeline.NotifyRecovered {
		m.BrokenSince = n.BrokenSince
		if !n.BrokenSince.IsZero() && n.At.After(n.BrokenSince) {
			m.BrokenFor = n.At.Sub(n.BrokenSince)
		}
		m.FirstFailedExecutionID = oneLine(n.FirstFailedExecID)
		if m.FirstFailedExecutionID != "" && m.FirstFailedExecutionID != m.ExecutionID {
			m.FirstFailedURL = console.ExecutionURL(region, ref.Name, m.FirstFailedExecutionID)
		}
	}

	if n.Type == pipeline.NotifyApproval {
		m.Stack, m.Deploy, m.Deadline, m.WideningLeft = oneLine(n.Stack), oneLine(n.Deploy), n.Deadline, n.WideningLeft
		for _, c := range n.Widening {
			if c = oneLine(c); c != "" {
				m.Widening = append(m.Widening, c)
			}
		}
	}

	for _, s := range d.Degraded {
		if s = oneLine(s); s != "" {
			m.Degraded = append(m.Degraded, s)
		}
	}
	return m
}

// failureOf says where the attempt failed: from the run record, which enrichment's
// ListActionExecutions answer completes when the events that tell it were lost.
func failureOf(run pipeline.Run, attempt int, known *pipeline.Failure) pipeline.Failure {
	f := run.FailureAt(attempt)
	if known == nil {
		return f
	}
	if f.Stage == "" {
		return *known
	}
	if f.Stage == known.Stage && (f.Action == "" || f.Action == known.Action) {
		if f.Action == "" {
			f.Action, f.Type = known.Action, known.Type
		}
		if f.Result.IsZero() {
			f.Result = known.Result
		}
	}
	return f
}

func composeCommit(rec, looked pipeline.Commit) Commit {
	c := pipeline.Commit{
		ID:      first(rec.ID, looked.ID),
		Message: first(rec.Message, looked.Message),
		Author:  first(rec.Author, looked.Author),
		URL:     first(rec.URL, looked.URL),
	}
	title, body := splitCommitMessage(cleanText(c.Message))
	return Commit{ID: oneLine(c.ID), Title: title, Body: body, Author: oneLine(c.Author), URL: c.URL}
}

// splitCommitMessage splits a commit message the way git does: the first line is the subject,
// what follows (blank lines around it dropped) the body.
func splitCommitMessage(msg string) (title, body string) {
	msg = strings.TrimSpace(msg)
	title, body, _ = strings.Cut(msg, "\n")
	return strings.TrimSpace(title), strings.TrimSpace(body)
}

func cleanBuild(b *pipeline.BuildDetails) *pipeline.BuildDetails {
	if b == nil {
		return nil
	}
	out := *b
	out.Status, out.FailedPhase = oneLine(b.Status), oneLine(b.FailedPhase)
	out.PhaseReason = strings.TrimSpace(cleanText(b.PhaseReason))
	out.LogTail = nil
	for _, l := range b.LogTail {
		// A "line" that holds newlines (a multi-line log event) becomes several lines.
		for _, part := range strings.Split(cleanText(l), "\n") {
			out.LogTail = append(out.LogTail, strings.TrimRight(part, " \t"))
		}
	}
	// Trailing blank lines say nothing and cost room.
	for len(out.LogTail) > 0 && out.LogTail[len(out.LogTail)-1] == "" {
		out.LogTail = out.LogTail[:len(out.LogTail)-1]
	}
	return &out
}

func cleanStackEvent(e *pipeline.StackEvent) *pipeline.StackEvent {
	if e == nil {
		return nil
	}
	out := *e
	out.StackName, out.LogicalResourceID = oneLine(e.StackName), oneLine(e.LogicalResourceID)
	out.ResourceType, out.Status = oneLine(e.ResourceType), oneLine(e.Status)
	out.Reason = strings.TrimSpace(cleanText(e.Reason))
	return &out
}

// Status is the run status the message reports, as the SNS `status` attribute carries it: a
// run waiting for an approval is still in progress.
func (m Message) Status() pipeline.Status {
	switch m.Type {
	case pipeline.NotifyRecovered:
		return pipeline.StatusSucceeded
	case pipeline.NotifyApproval:
		return pipeline.StatusInProgress
	}
	return pipeline.StatusFailed
}

// ApproveCommand and RejectCommand are the commands an approval message gives. They name the
// stack: when both deploys of an execution wait, lp refuses an execution id alone.
func (m Message) ApproveCommand() string {
	return "lp approve --deploy-stack " + m.Stack + " " + m.ExecutionID
}

// RejectCommand: see ApproveCommand.
func (m Message) RejectCommand() string {
	return "lp reject --deploy-stack " + m.Stack + ` --reason "WHY" ` + m.ExecutionID
}

// verb is the upper-case word that opens the subject and the headline.
func (m Message) verb() string {
	switch m.Type {
	case pipeline.NotifyFailed:
		return "FAILED"
	case pipeline.NotifyRecovered:
		return "RECOVERED"
	case pipeline.NotifyPushToStart:
		return "PUSH TO START"
	case pipeline.NotifyApproval:
		return "APPROVAL NEEDED"
	}
	return strings.ToUpper(oneLine(string(m.Type)))
}

// where is "Stage/Action", "Stage" or "".
func (m Message) where() string {
	switch {
	case m.Stage != "" && m.Action != "":
		return m.Stage + "/" + m.Action
	default:
		return m.Stage
	}
}

// reason is "ErrorCode: Summary", or whichever of the two is known.
func (m Message) reason() string {
	switch {
	case m.ErrorCode != "" && m.Summary != "":
		return m.ErrorCode + ": " + m.Summary
	case m.ErrorCode != "":
		return m.ErrorCode
	}
	return m.Summary
}

// HumanDuration writes d the way people say it: "45s", "12m", "1h 42m", "3d 4h".
func HumanDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return strconv.Itoa(h) + "h"
		}
		return strconv.Itoa(h) + "h " + strconv.Itoa(m) + "m"
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return strconv.Itoa(days) + "d"
	}
	return strconv.Itoa(days) + "d " + strconv.Itoa(h) + "h"
}

// formatTime writes t in UTC to the minute: messages are read across time zones, and a
// zone-less local time would mislead.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
