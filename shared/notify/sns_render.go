package notify

import (
	"strconv"
	"strings"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// SNS limits ("Publish", Amazon SNS API Reference,
// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html; docs/aws-behaviour.md, SNS). SNS
// refuses a Publish that breaks them, so the renderer trims.
const (
	// SNSMaxMessageBytes bounds the message and its attributes together.
	SNSMaxMessageBytes = 262144
	// SNSMaxSubject is the longest subject: "less than 100 characters". It is counted in bytes,
	// which are never fewer than characters however SNS counts them.
	SNSMaxSubject = 99
)

// Sizes this renderer chooses so that an e-mail stays readable and the log tail, which comes
// last in the budget, keeps its room.
const (
	snsMaxText     = 4000 // a summary, a commit body, a reason
	snsMaxName     = 1024 // a one-line name or id
	snsMaxURL      = 8192 // a longer link is left out: a cut one leads nowhere
	snsMaxLogLine  = 2000
	snsMaxDegraded = 20
	// snsMargin is kept free of the 256 KB so that nothing SNS adds or counts differently
	// (attribute framing) tips the message over.
	snsMargin = 1024
)

// SNS message attributes, for subscription filter policies.
const (
	AttrPipeline = "pipeline"
	AttrProject  = "project" // the pipeline's project; absent when the name follows no project
	AttrStatus   = "status"  // FAILED, SUCCEEDED, or IN_PROGRESS for an approval
	AttrType     = "type"    // failed, recovered, push-to-start or approval
)

// SNSMessage is a rendered SNS publication: a subject and plain-text body that read well as
// e-mail, and String message attributes.
type SNSMessage struct {
	Subject    string
	Body       string
	Attributes map[string]string
}

// Headline is the one-line summary of m, e.g. "FAILED my-lambda-pipeline: BuildAndTest/Build
// (4f2a9c1e)", untrimmed. RenderSNS fits it as the subject; RenderSlack uses it as fallback text.
func Headline(m Message) string {
	lead, detail, tail := headlineParts(m)
	if detail != "" {
		lead += ": " + detail
	}
	return lead + tail
}

func headlineParts(m Message) (lead, detail, tail string) {
	lead = m.verb() + " " + oneLine(first(m.Pipeline, "pipeline"))
	switch m.Type {
	case pipeline.NotifyFailed:
		detail = oneLine(m.where())
	case pipeline.NotifyRecovered:
		if d := HumanDuration(m.BrokenFor); d != "" {
			lead += " after " + d
		}
	case pipeline.NotifyPushToStart:
		detail = "push a commit to start"
	case pipeline.NotifyApproval:
		detail = "stack " + first(m.Stack, "?") + " waits"
		if t := formatTime(m.Deadline); t != "" {
			detail += " until " + t
		}
	}
	if s := oneLine(m.Commit.Short()); s != "" && m.Type != pipeline.NotifyPushToStart && m.Type != pipeline.NotifyApproval {
		tail = " (" + s + ")"
	}
	return lead, detail, tail
}

// subject fits the headline in SNSMaxSubject bytes, giving up the stage and action before the
// pipeline name and the commit. It has no line breaks or control characters (oneLine).
func subject(m Message) string {
	lead, detail, tail := headlineParts(m)
	if s := Headline(m); len(s) <= SNSMaxSubject {
		return s
	}
	const cut = "…"
	if room := SNSMaxSubject - len(lead) - len(tail) - len(": "); detail != "" && room >= 12 {
		return lead + ": " + fitBytesMarked(detail, room, cut) + tail
	}
	if len(tail) > 20 {
		tail = ""
	}
	return fitBytesMarked(lead, SNSMaxSubject-len(tail), cut) + tail
}

// RenderSNS renders m for an SNS topic: the subject (fitted to SNS's rule), a plain-text body
// that reads well as e-mail and stays within 256 KB with its attributes (the log tail gives way
// first, keeping its last lines), and the pipeline, project, status and type attributes.
func RenderSNS(m Message) SNSMessage {
	out := SNSMessage{
		Subject:    subject(m),
		Attributes: map[string]string{AttrStatus: string(m.Status()), AttrType: oneLine(string(m.Type))},
	}
	if p := fitBytes(oneLine(m.Pipeline), snsMaxName); p != "" {
		out.Attributes[AttrPipeline] = p
	}
	if m.Project != "" {
		out.Attributes[AttrProject] = oneLine(m.Project)
	}
	attrBytes := 0
	for k, v := range out.Attributes {
		attrBytes += len(k) + len("String") + len(v)
	}

	var e email
	switch m.Type {
	case pipeline.NotifyRecovered:
		e.recovered(m)
	case pipeline.NotifyPushToStart:
		e.pushToStart(m)
	case pipeline.NotifyApproval:
		e.approval(m)
	default:
		e.failed(m)
	}
	rest := e.afterLog(m)

	body := e.String()
	if bd := m.Build; bd != nil && len(bd.LogTail) > 0 && m.Type == pipeline.NotifyFailed {
		budget := SNSMaxMessageBytes - snsMargin - attrBytes - len(body) - len(rest) - 100
		body += logSection(bd.LogTail, bd.LogTailTrimmed, budget)
	}
	body += rest
	// The fixed parts are bounded above; this holds the limit whatever they hold.
	out.Body = fitBytes(body, SNSMaxMessageBytes-snsMargin-attrBytes)
	return out
}

// email builds a plain-text body: a lead paragraph, then "Label:  value" blocks.
type email struct{ strings.Builder }

const labelWidth = 12

// kv writes "Label:      value", continuation lines of a multi-line value indented under it.
func (e *email) kv(label, value string) {
	if value == "" {
		return
	}
	pad := strings.Repeat(" ", labelWidth)
	head := label + ":"
	if len(head) < labelWidth {
		head += pad[:labelWidth-len(head)]
	} else {
		head += " "
	}
	e.WriteString(head + strings.ReplaceAll(value, "\n", "\n"+pad) + "\n")
}

// more writes a continuation line under the previous value (a link beneath an id).
func (e *email) more(value string) {
	if value != "" {
		e.WriteString(strings.Repeat(" ", labelWidth) + value + "\n")
	}
}

func (e *email) para(s string) { e.WriteString(s + "\n\n") }

func (e *email) failed(m Message) {
	lead := name(m) + " failed"
	if w := m.where(); w != "" {
		lead += " in " + fitBytes(strings.ReplaceAll(w, "/", " / "), snsMaxName)
	}
	if m.Attempt > 1 {
		lead += " on attempt " + strconv.Itoa(m.Attempt)
	}
	if t := formatTime(m.At); t != "" {
		lead += " at " + t
	}
	e.para(lead + ".")
	if m.ErrorCode != "" || m.Summary != "" {
		e.kv("Error", fitBytes(m.ErrorCode, snsMaxName))
		e.kv("Summary", fitBytes(m.Summary, snsMaxText))
		e.WriteString("\n")
	}
	e.run(m)
	e.commit(m.Commit)
	if bd := m.Build; bd != nil {
		e.WriteString("CodeBuild\n")
		e.kv("  Build", fitBytes(bd.ID, snsMaxName))
		status := bd.Status
		if bd.FailedPhase != "" {
			status = strings.TrimSpace(status + " in phase " + bd.FailedPhase)
		}
		e.kv("  Status", fitBytes(status, snsMaxName))
		e.kv("  Reason", fitBytes(bd.PhaseReason, snsMaxText))
		e.kv("  Log", linkOrNote(bd.LogURL))
		e.WriteString("\n")
	}
}

// afterLog is what follows the log tail: the root cause, the artifact, what is missing.
func (e *email) afterLog(m Message) string {
	var a email
	if rc := m.RootCause; rc != nil {
		a.WriteString("CloudFormation root cause\n")
		a.kv("  Stack", fitBytes(rc.StackName, snsMaxName))
		res := rc.LogicalResourceID
		if rc.ResourceType != "" {
			res = strings.TrimSpace(res + " (" + rc.ResourceType + ")")
		}
		a.kv("  Resource", fitBytes(res, snsMaxName))
		a.kv("  Status", fitBytes(rc.Status, snsMaxName))
		a.kv("  Reason", fitBytes(rc.Reason, snsMaxText))
		a.kv("  Events", linkOrNote(rc.ConsoleURL))
		a.WriteString("\n")
	}
	if art := m.Artifact; art != nil {
		a.WriteString("BuildOutput artifact\n")
		if art.Bucket != "" && art.Key != "" {
			a.kv("  Location", fitBytes("s3://"+art.Bucket+"/"+art.Key, snsMaxText))
		}
		if art.PresignedURL != "" {
			a.kv("  Download", linkOrNote(art.PresignedURL))
			if t := formatTime(art.Expires); t != "" {
				a.more("(the link expires at " + t + ")")
			}
		}
		a.kv("  Console", linkOrNote(art.ConsoleURL))
		a.WriteString("\n")
	}
	if len(m.Degraded) > 0 {
		a.WriteString("Some details are missing:\n")
		for i, d := range m.Degraded {
			if i == snsMaxDegraded {
				a.WriteString("  - " + Trimmed + ": " + strconv.Itoa(len(m.Degraded)-i) + " more\n")
				break
			}
			a.WriteString("  - " + fitBytes(d, 500) + "\n")
		}
		a.WriteString("\n")
	}
	a.WriteString("-- \nSent by lambda-pipeline.\n")
	return a.String()
}

func (e *email) recovered(m Message) {
	lead := name(m) + " recovered"
	if t := formatTime(m.At); t != "" {
		lead += " at " + t
	}
	lead += ": the pipeline is green again"
	if d := HumanDuration(m.BrokenFor); d != "" {
		lead += " after being broken for " + d
	}
	e.para(lead + ".")
	if m.FirstFailedExecutionID != "" {
		s := "It had been failing since execution " + fitBytes(m.FirstFailedExecutionID, snsMaxName)
		if t := formatTime(m.BrokenSince); t != "" {
			s += " (" + t + ")"
		}
		e.WriteString(s + ".\n")
		if u := linkOrNote(m.FirstFailedURL); u != "" {
			e.WriteString(u + "\n")
		}
		e.WriteString("\n")
	}
	e.run(m)
	e.commit(m.Commit)
}

func (e *email) pushToStart(m Message) {
	e.para(name(m) + " is ready.")
	e.para("The pipeline was created, and its first run stopped in Source: the repository has no commit on the tracked branch yet. " +
		"Push one to start the pipeline, for example:\n\n    git push aws main")
	e.run(m)
	if m.Summary != "" {
		e.kv("CodePipeline said", fitBytes(m.Summary, snsMaxText))
		e.WriteString("\n")
	}
}

func (e *email) approval(m Message) {
	lead := "Stack " + fitBytes(first(m.Stack, "?"), snsMaxName) + " of " + name(m) + " waits for your approval"
	if t := formatTime(m.Deadline); t != "" {
		lead += " until " + t
	}
	e.para(lead + ": its deploy widens IAM.")
	e.para("To decide, with your own AWS credentials (the decision is recorded with your identity):\n\n" +
		"    " + fitBytes(m.ApproveCommand(), snsMaxName) + "\n" +
		"    " + fitBytes(m.RejectCommand(), snsMaxName) + "\n\n" +
		"Undecided at the deadline, the deploy fails (approval expired) and nothing is deployed.")
	if total := len(m.Widening) + m.WideningLeft; total > 0 {
		e.WriteString("IAM widening (" + plural(total, "change") + "):\n")
		render := func(c string) string { return "  - " + fitBytes(c, snsMaxName) }
		kept, left := fitLines(m.Widening, snsMaxText, render, func(s string) int { return len(s) })
		for _, l := range kept {
			e.WriteString(l + "\n")
		}
		if left += m.WideningLeft; left > 0 {
			e.WriteString("  … and " + plural(left, "more change") + ": lp show " + fitBytes(m.ExecutionID, snsMaxName) + "\n")
		}
		e.WriteString("\n")
	}
	e.run(m)
	e.kv("Stack", fitBytes(m.Stack, snsMaxName))
	e.kv("Deploy", fitBytes(m.Deploy, snsMaxName))
	e.kv("Asked", formatTime(m.At))
	e.kv("Deadline", formatTime(m.Deadline))
	e.WriteString("\n")
	e.commit(m.Commit)
}

// run writes the pipeline and execution, with the execution's console link beneath.
func (e *email) run(m Message) {
	if m.Project != "" {
		e.kv("Project", m.Project)
	}
	e.kv("Pipeline", fitBytes(m.Pipeline, snsMaxName))
	exec := fitBytes(m.ExecutionID, snsMaxName)
	if m.Attempt > 1 {
		exec += " (attempt " + strconv.Itoa(m.Attempt) + ")"
	}
	e.kv("Execution", exec)
	e.more(linkOrNote(m.ConsoleURL))
	e.WriteString("\n")
}

func (e *email) commit(c Commit) {
	if c.ID == "" && c.Title == "" && c.Author == "" {
		return
	}
	e.kv("Commit", fitBytes(c.ID, snsMaxName))
	e.more(linkOrNote(c.URL))
	e.kv("Author", fitBytes(c.Author, snsMaxName))
	if c.Title != "" || c.Body != "" {
		msg := fitBytes(c.Title, snsMaxName)
		if c.Body != "" {
			msg += "\n\n" + fitBytes(c.Body, snsMaxText)
		}
		e.WriteString("\nCommit message:\n" + indent(msg, "    ") + "\n")
	}
	e.WriteString("\n")
}

// logSection writes the last lines of the build log that fit in budget bytes, indented so that
// mail clients keep them apart from the prose.
func logSection(lines []string, trimmed bool, budget int) string {
	const indent = "    " // a blank log line stays blank: no trailing spaces in the mail
	heading := func(n int) string { return "Last " + strconv.Itoa(n) + " lines of the build log:\n" }
	budget -= len(heading(len(lines))) + len("\n") + len(indent) // the note is indented too
	render := func(l string) string { return strings.TrimRight(indent+fitBytes(l, snsMaxLogLine), " ") }
	kept, note := fitTail(lines, budget, trimmed, render, func(s string) int { return len(s) })
	if len(kept) == 0 {
		return ""
	}
	shown := len(kept)
	if note != "" {
		kept = append([]string{indent + note}, kept...)
	}
	return heading(shown) + strings.Join(kept, "\n") + "\n\n"
}

// indent prefixes every non-empty line of s.
func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// linkOrNote is u, or a note when u is too long to be worth sending.
func linkOrNote(u string) string {
	if len(u) > snsMaxURL {
		return "(link left out: longer than " + strconv.Itoa(snsMaxURL) + " bytes)"
	}
	return oneLine(u)
}

func name(m Message) string { return fitBytes(first(m.Pipeline, "The pipeline"), snsMaxName) }
