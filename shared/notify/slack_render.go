package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/slack-go/slack"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// Slack's Block Kit limits ("Blocks", https://docs.slack.dev/reference/block-kit/blocks, and
// "Button element", https://docs.slack.dev/reference/block-kit/block-elements/button-element;
// docs/aws-behaviour.md, Slack incoming webhooks). Going over any of them makes Slack refuse the
// whole message with 400 invalid_blocks (observed), so the renderer trims to them instead. Lengths are counted in
// UTF-16 code units (see units), which is never less than what Slack counts.
const (
	SlackMaxBlocks          = 50
	SlackMaxSectionText     = 3000
	SlackMaxFields          = 10
	SlackMaxFieldText       = 2000
	SlackMaxHeaderText      = 150
	SlackMaxContextElements = 10
	SlackMaxActionElements  = 25
	SlackMaxButtonText      = 75
	SlackMaxButtonURL       = 3000
)

// Sizes this renderer chooses, below Slack's limits, so that a message stays readable.
const (
	// slackMaxFallback bounds the notification text (the phone banner shows a line or two).
	slackMaxFallback = 300
	// slackMaxContextText bounds a context element: Slack documents no limit of its own for
	// them, so the field limit, the smallest text limit it has, is assumed.
	slackMaxContextText = SlackMaxFieldText
	// slackMaxCommitMessage keeps a long commit message from pushing the log off the screen.
	slackMaxCommitMessage = 1000
	// slackMaxLogLine cuts a single huge log line (a minified JSON dump) so that the lines
	// after it, which usually say what failed, still fit.
	slackMaxLogLine = 500
)

// emoji marks the type of message at a glance (Slack has no colour for top-level blocks).
func emoji(t pipeline.NotificationType) string {
	switch t {
	case pipeline.NotifyFailed:
		return ":red_circle:"
	case pipeline.NotifyRecovered:
		return ":large_green_circle:"
	case pipeline.NotifyApproval:
		return ":large_yellow_circle:"
	}
	return ":information_source:"
}

// slackPayload is the body of an incoming-webhook POST. slack.WebhookMessage is not used because
// it always sends replace_original/delete_original, which belong to response URLs.
type slackPayload struct {
	Text        string        `json:"text"`
	Blocks      []slack.Block `json:"blocks"`
	UnfurlLinks bool          `json:"unfurl_links"`
	UnfurlMedia bool          `json:"unfurl_media"`
}

// RenderSlack renders m as an incoming-webhook payload: a `text` fallback (what notifications
// and old clients show) and Block Kit blocks. Every text is escaped for mrkdwn and fitted to
// Slack's limits, cut texts ending in Trimmed; a link that cannot fit is left out rather than
// cut. Link unfurling is off: Slack would otherwise fetch the presigned artifact link.
func RenderSlack(m Message) ([]byte, error) {
	var b blocks
	b.header(emoji(m.Type) + " " + slackTitle(m))
	switch m.Type {
	case pipeline.NotifyRecovered:
		b.recovered(m)
	case pipeline.NotifyPushToStart:
		b.pushToStart(m)
	case pipeline.NotifyApproval:
		b.approval(m)
	default:
		b.failed(m)
	}
	if len(m.Degraded) > 0 {
		b.context(":warning: Some details are missing: " + strings.Join(m.Degraded, "; "))
	}
	b.actions(buttons(m))

	fallback := emoji(m.Type) + " " + Headline(m)
	if why := oneLine(m.reason()); m.Type == pipeline.NotifyFailed && why != "" {
		fallback += " — " + why
	}
	p := slackPayload{Text: fitHead(fallback, slackMaxFallback, true), Blocks: b.done()}
	// Without HTML escaping "<url|label>" stays legible in logs and golden files; JSON is
	// equally valid either way.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode Slack payload for %s %s: %w", m.Pipeline, m.ExecutionID, err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

func slackTitle(m Message) string {
	name := first(m.Pipeline, "pipeline")
	switch m.Type {
	case pipeline.NotifyFailed:
		return name + " failed"
	case pipeline.NotifyRecovered:
		return name + " recovered"
	case pipeline.NotifyPushToStart:
		return name + " is ready: push to start"
	case pipeline.NotifyApproval:
		return name + " waits for approval"
	}
	return name + ": " + string(m.Type)
}

func (b *blocks) failed(m Message) {
	var head strings.Builder
	if w := m.where(); w != "" {
		head.WriteString("*" + fitHead(strings.ReplaceAll(w, "/", " / "), 400, true) + "* failed")
	} else {
		head.WriteString("The run failed (the failing stage is not known)")
	}
	if m.Attempt > 1 {
		head.WriteString(" on attempt " + strconv.Itoa(m.Attempt))
	}
	if t := formatTime(m.At); t != "" {
		head.WriteString(" at " + t)
	}
	head.WriteString(".")
	var why string
	if m.ErrorCode != "" {
		why = "*" + fitHead(m.ErrorCode, 200, true) + "*"
		if m.Summary != "" {
			why += ": "
		}
	}
	text := head.String()
	if why != "" || m.Summary != "" {
		text += "\n" + why
	}
	b.section(text, m.Summary)

	b.fields(m.commonFields())
	b.commit(m.Commit)
	if bd := m.Build; bd != nil {
		b.build(bd)
	}
	if rc := m.RootCause; rc != nil {
		b.rootCause(rc)
	}
	if a := m.Artifact; a != nil {
		b.artifact(a)
	}
}

func (b *blocks) recovered(m Message) {
	text := "The pipeline is green again"
	if t := formatTime(m.At); t != "" {
		text += " (" + t + ")"
	}
	if d := HumanDuration(m.BrokenFor); d != "" {
		text += " after being broken for *" + d + "*"
	}
	text += "."
	if m.FirstFailedExecutionID != "" {
		text += "\nIt had been failing since execution " + link(m.FirstFailedURL, m.FirstFailedExecutionID)
		if t := formatTime(m.BrokenSince); t != "" {
			text += " (" + t + ")"
		}
		text += "."
	}
	b.section(text, "")
	b.fields(m.commonFields())
	b.commit(m.Commit)
}

func (b *blocks) pushToStart(m Message) {
	b.section("The pipeline was created, and its first run stopped in `Source`: the repository has no commit on the tracked branch yet. "+
		"Push one to start the pipeline, for example `git push aws main`.", "")
	b.fields(m.commonFields())
	if m.Summary != "" {
		b.context("CodePipeline said: " + m.Summary)
	}
}

func (b *blocks) approval(m Message) {
	var text strings.Builder
	text.WriteString("Stack `" + fitHead(first(m.Stack, "?"), 200, true) + "` of *" + fitHead(first(m.Pipeline, "the pipeline"), 400, true) + "* waits for your approval")
	if t := formatTime(m.Deadline); t != "" {
		text.WriteString(" until *" + t + "*")
	}
	text.WriteString(": its deploy widens IAM.\n" +
		"Approve: `" + fitHead(m.ApproveCommand(), 300, true) + "`\n" +
		"Reject: `" + fitHead(m.RejectCommand(), 300, true) + "`\n" +
		"Undecided at the deadline, the deploy fails (approval expired) and nothing is deployed.")
	b.section(text.String(), "")

	b.fields(append(m.commonFields(), [2]string{"Stack", escapeMrkdwn(m.Stack)}))
	b.widening(m)
	b.commit(m.Commit)
	small := "Asked by the deployer"
	if t := formatTime(m.At); t != "" {
		small += " at " + t
	}
	if m.Deploy != "" {
		small += " (deploy " + m.Deploy + ")"
	}
	b.context(small + ". `lp show " + m.ExecutionID + "` lists every request of the execution; the decision is recorded with your AWS identity.")
}

// widening lists what an approval's deploy widens, one change a line in a code block, as
// many as fit; the others are counted, with where to read them.
func (b *blocks) widening(m Message) {
	if len(m.Widening) == 0 && m.WideningLeft == 0 {
		return
	}
	const open, close = "\n```\n", "\n```"
	total := len(m.Widening) + m.WideningLeft
	heading := "*IAM widening* (" + plural(total, "change") + ")"
	more := func(n int) string {
		return "\n… and " + plural(n, "more change") + ": `lp show " + escapeMrkdwn(m.ExecutionID) + "`"
	}
	budget := SlackMaxSectionText - units(heading) - units(open) - units(close) - units(more(total))
	render := func(c string) string {
		return strings.ReplaceAll(fitHead(c, slackMaxLogLine, true), "```", "`\u200b`\u200b`")
	}
	kept, left := fitLines(m.Widening, budget, render, units)
	text := heading
	if len(kept) > 0 {
		text += open + strings.Join(kept, "\n") + close
	}
	if left += m.WideningLeft; left > 0 {
		text += more(left)
	}
	b.add(mrkdwnSection(text))
}

// commonFields are the facts every message shows side by side, as (label, mrkdwn value).
func (m Message) commonFields() [][2]string {
	exec := link(m.ConsoleURL, m.ExecutionID)
	if m.Attempt > 1 {
		exec += " (attempt " + strconv.Itoa(m.Attempt) + ")"
	}
	var f [][2]string
	if m.Project != "" {
		f = append(f, [2]string{"Project", escapeMrkdwn(m.Project)})
	}
	f = append(f, [2]string{"Pipeline", escapeMrkdwn(m.Pipeline)}, [2]string{"Execution", exec})
	if c := m.Commit; c.ID != "" {
		f = append(f, [2]string{"Commit", link(c.URL, c.Short())})
	}
	if m.Commit.Author != "" {
		f = append(f, [2]string{"Author", escapeMrkdwn(m.Commit.Author)})
	}
	if m.Type == pipeline.NotifyRecovered && m.BrokenFor > 0 {
		f = append(f, [2]string{"Broken for", HumanDuration(m.BrokenFor)})
	}
	return f
}

func (b *blocks) commit(c Commit) {
	if c.Title == "" && c.Body == "" {
		return
	}
	msg := c.Title
	if c.Body != "" {
		msg += "\n" + c.Body
	}
	b.section("*Commit message*\n", fitHead(msg, slackMaxCommitMessage, false))
}

func (b *blocks) build(bd *pipeline.BuildDetails) {
	text := "*CodeBuild*"
	if bd.ID != "" {
		text += " `" + escapeMrkdwn(bd.ID) + "`"
	}
	if bd.Status != "" {
		text += " " + escapeMrkdwn(bd.Status)
	}
	if bd.FailedPhase != "" {
		text += " in phase `" + escapeMrkdwn(bd.FailedPhase) + "`"
	}
	if bd.PhaseReason != "" {
		text += "\n"
	}
	b.section(text, bd.PhaseReason)
	if len(bd.LogTail) > 0 {
		b.logTail(bd.LogTail, bd.LogTailTrimmed)
	}
}

// logTail shows the end of the build log in a code block, as many of its last lines as fit.
func (b *blocks) logTail(lines []string, trimmed bool) {
	const open, close = "\n```\n", "\n```"
	heading := func(n int) string { return "*Last " + strconv.Itoa(n) + " lines of the build log*" }
	budget := SlackMaxSectionText - units(heading(len(lines))) - units(open) - units(close)
	render := func(l string) string {
		// A ``` inside the log would end the code block early: a zero-width space breaks it.
		return strings.ReplaceAll(fitHead(l, slackMaxLogLine, true), "```", "`\u200b`\u200b`")
	}
	kept, note := fitTail(lines, budget, trimmed, render, units)
	if len(kept) == 0 {
		return
	}
	shown := len(kept)
	if note != "" {
		kept = append([]string{note}, kept...)
	}
	b.add(mrkdwnSection(heading(shown) + open + strings.Join(kept, "\n") + close))
}

func (b *blocks) rootCause(rc *pipeline.StackEvent) {
	text := "*CloudFormation root cause*\n"
	if rc.LogicalResourceID != "" {
		text += "`" + escapeMrkdwn(rc.LogicalResourceID) + "`"
		if rc.ResourceType != "" {
			text += " (" + escapeMrkdwn(rc.ResourceType) + ")"
		}
	}
	if rc.StackName != "" {
		text += " in stack " + link(rc.ConsoleURL, rc.StackName)
	}
	if rc.Status != "" {
		text += ": *" + escapeMrkdwn(rc.Status) + "*"
	}
	if rc.Reason != "" {
		text += "\n"
	}
	b.section(text, rc.Reason)
}

func (b *blocks) artifact(a *pipeline.ArtifactLinks) {
	text := "*BuildOutput artifact*"
	if a.Bucket != "" && a.Key != "" {
		text += " `s3://" + escapeMrkdwn(a.Bucket+"/"+a.Key) + "`"
	}
	switch {
	case a.PresignedURL != "" && !fitsButton(a.PresignedURL):
		text += "\nThe download link is too long for Slack; the e-mail has it."
	case a.PresignedURL != "" && !a.Expires.IsZero():
		text += "\nThe download link expires at " + formatTime(a.Expires) + "."
	}
	b.section(text, "")
}

// buttons are the links a reader clicks next, most useful first.
func buttons(m Message) []*slack.ButtonBlockElement {
	type btn struct{ id, label, url string }
	all := []btn{{"execution", "Open execution", m.ConsoleURL}}
	if bd := m.Build; bd != nil {
		all = append(all, btn{"build-log", "Build log", bd.LogURL})
	}
	if a := m.Artifact; a != nil {
		all = append(all, btn{"artifact-download", "Download BuildOutput", a.PresignedURL}, btn{"artifact-console", "BuildOutput in S3", a.ConsoleURL})
	}
	if rc := m.RootCause; rc != nil {
		all = append(all, btn{"stack-events", "Stack events", rc.ConsoleURL})
	}
	if m.ActionURL != "" {
		all = append(all, btn{"action", linkLabel(m.ActionURL, m.Provider), m.ActionURL})
	}
	if m.FirstFailedURL != "" {
		all = append(all, btn{"first-failure", "First failed execution", m.FirstFailedURL})
	}
	var out []*slack.ButtonBlockElement
	seen := map[string]bool{}
	for _, x := range all {
		if !fitsButton(x.url) || seen[x.url] {
			continue
		}
		seen[x.url] = true
		e := slack.NewButtonBlockElement(x.id, "", slack.NewTextBlockObject(slack.PlainTextType, fitHeadMarked(x.label, SlackMaxButtonText, false, "…"), false, false))
		e.URL = x.url
		if len(out) == 0 && m.Type != pipeline.NotifyPushToStart {
			e.Style = slack.StylePrimary
		}
		out = append(out, e)
	}
	return out
}

// linkLabel names the page a link opens, from the link itself: an action's provider is not
// where its link leads (the deployer is a Lambda Invoke action whose link is the stack's
// events in the CloudFormation console).
func linkLabel(link, provider string) string {
	p, err := url.Parse(link)
	if err != nil {
		return "Open action"
	}
	path := p.Path + "#" + p.Fragment
	for _, c := range []struct{ part, label string }{
		{"/cloudformation/", "Stack events"},
		{"/codebuild/", "Open in CodeBuild"},
		{"/codesuite/codebuild/", "Open in CodeBuild"},
		{"/lambda/", "Open in Lambda"},
		{"/codesuite/codecommit/", "Open in CodeCommit"},
		{"/cloudwatch/", "Open in CloudWatch"},
		{"/s3/", "Open in S3"},
	} {
		if strings.Contains(path, c.part) {
			return c.label
		}
	}
	if provider != "" && strings.HasSuffix(p.Host, ".aws.amazon.com") && strings.Contains(strings.ToLower(path), "/"+strings.ToLower(provider)+"/") {
		return "Open in " + provider
	}
	return "Open action"
}

// fitsButton reports whether u can be a button's link: an absolute http(s) URL within Slack's
// length limit. A cut URL would lead nowhere, so a longer one is left out instead.
func fitsButton(u string) bool {
	if u == "" || units(u) > SlackMaxButtonURL {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
}

// link is a mrkdwn link to u labelled label, or the escaped label alone when u cannot be one.
func link(u, label string) string {
	if u == "" || strings.ContainsAny(u, "|<> \t\n") || units(u) > SlackMaxButtonURL {
		return escapeMrkdwn(label)
	}
	if p, err := url.Parse(u); err != nil || (p.Scheme != "https" && p.Scheme != "http") {
		return escapeMrkdwn(label)
	}
	return "<" + u + "|" + escapeMrkdwn(label) + ">"
}

// blocks collects a message's blocks and keeps each within Slack's limits.
type blocks struct{ list []slack.Block }

func (b *blocks) add(bl slack.Block) { b.list = append(b.list, bl) }

func (b *blocks) header(text string) {
	b.add(slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, fitHead(oneLine(text), SlackMaxHeaderText, false), true, false)))
}

// section adds a mrkdwn section: prefix is mrkdwn already (and must fit), raw is free text that
// is escaped and trimmed to what room is left.
func (b *blocks) section(prefix, raw string) {
	text := prefix
	if raw != "" {
		text += fitHead(raw, SlackMaxSectionText-units(prefix), true)
	}
	if text = strings.TrimSpace(text); text == "" {
		return
	}
	b.add(mrkdwnSection(fitHead(text, SlackMaxSectionText, false)))
}

func mrkdwnSection(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// fields adds a section of "*label*\nvalue" fields; values are mrkdwn. A value that does not fit
// is replaced by its trimmed plain text (a link cannot be cut).
func (b *blocks) fields(kv [][2]string) {
	var fs []*slack.TextBlockObject
	for _, f := range kv {
		if f[1] == "" || len(fs) == SlackMaxFields {
			continue
		}
		label := "*" + f[0] + "*\n"
		value := f[1]
		if units(label)+units(value) > SlackMaxFieldText {
			value = fitHead(unescapeMrkdwn(stripLinks(value)), SlackMaxFieldText-units(label), true)
		}
		fs = append(fs, slack.NewTextBlockObject(slack.MarkdownType, label+value, false, false))
	}
	if len(fs) > 0 {
		b.add(slack.NewSectionBlock(nil, fs, nil))
	}
}

// context adds one small-print line of free text.
func (b *blocks) context(raw string) {
	b.add(slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, fitHead(raw, slackMaxContextText, true), false, false)))
}

func (b *blocks) actions(bs []*slack.ButtonBlockElement) {
	if len(bs) == 0 {
		return
	}
	if len(bs) > SlackMaxActionElements {
		bs = bs[:SlackMaxActionElements]
	}
	els := make([]slack.BlockElement, len(bs))
	for i, e := range bs {
		els[i] = e
	}
	b.add(slack.NewActionBlock("links", els...))
}

// done returns the blocks, at most SlackMaxBlocks of them: the last kept one says how many were
// left out (the layout stays far below the limit; this holds it whatever is added later).
func (b *blocks) done() []slack.Block {
	if len(b.list) <= SlackMaxBlocks {
		return b.list
	}
	out := append([]slack.Block(nil), b.list[:SlackMaxBlocks-1]...)
	left := len(b.list) - len(out)
	return append(out, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, Trimmed+": "+strconv.Itoa(left)+" more blocks", false, false)))
}

// stripLinks turns "<url|label>" into "label", for a value that must be cut.
func stripLinks(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		b.WriteString(s[:i])
		inner := s[i+1 : i+j]
		if _, label, ok := strings.Cut(inner, "|"); ok {
			inner = label
		}
		b.WriteString(inner)
		s = s[i+j+1:]
	}
	b.WriteString(s)
	return b.String()
}

func unescapeMrkdwn(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
