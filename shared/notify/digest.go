package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
)

// StatusDigest is the SNS status attribute of a weekly digest, so that a subscription filter
// policy can take or leave digests apart from failures and recoveries.
const StatusDigest = "DIGEST"

// DigestRow is one key of a digest, laid out for reading: its value this week, last week, and
// the trend between them ("↑ 50% better", "=", "" when either week has no value).
type DigestRow struct {
	Key, Now, Before, Trend string
}

// DigestRows lays out the four keys of d, in the order docs/metrics.md defines them.
func DigestRows(d dora.Digest) []DigestRow {
	c, p := d.Current, d.Previous
	return []DigestRow{
		{"Deployment frequency", deploys(c), deploys(p),
			dora.Trend(c.DeploymentsPerDay, p.DeploymentsPerDay, true, true, true)},
		{"Lead time (median)", digestMedian(c.LeadTime), digestMedian(p.LeadTime),
			dora.Trend(c.LeadTime.Median.Seconds(), p.LeadTime.Median.Seconds(), c.LeadTime.Count > 0, p.LeadTime.Count > 0, false)},
		{"Change failure rate", failureRate(c), failureRate(p),
			dora.Trend(c.ChangeFailureRate, p.ChangeFailureRate, c.HasChangeFailureRate(), p.HasChangeFailureRate(), false)},
		{"Time to restore (median)", digestMedian(c.TimeToRestore), digestMedian(p.TimeToRestore),
			dora.Trend(c.TimeToRestore.Median.Seconds(), p.TimeToRestore.Median.Seconds(), c.TimeToRestore.Count > 0, p.TimeToRestore.Count > 0, false)},
	}
}

func deploys(k dora.Keys) string {
	n := strconv.Itoa(k.Deployments) + " deploys"
	if k.Deployments == 1 {
		n = "1 deploy"
	}
	return n + " (" + strconv.FormatFloat(k.DeploymentsPerDay, 'f', 2, 64) + "/day)"
}

func failureRate(k dora.Keys) string {
	if !k.HasChangeFailureRate() {
		return "-"
	}
	return fmt.Sprintf("%.0f%% (%d of %d runs)", 100*k.ChangeFailureRate, k.FailedRuns, k.DecisiveRuns)
}

func digestMedian(d dora.Durations) string {
	if d.Count == 0 {
		return "-"
	}
	return roundDuration(d.Median)
}

// roundDuration keeps a duration readable: seconds under an hour, minutes above.
func roundDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	s := strings.TrimSuffix(d.String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0s"
	}
	return s
}

// digestTitle is the digest's one-line summary, e.g. "Weekly digest my-lambda 2026-W49:
// 5 deploys, 20% failed".
func digestTitle(d dora.Digest) string {
	name := oneLine(first(first(d.Project, d.Pipeline), "pipeline"))
	return fmt.Sprintf("Weekly digest %s %s: %s, %s failed", name, oneLine(d.Week), strings.SplitN(deploys(d.Current), " (", 2)[0],
		strings.SplitN(failureRate(d.Current), " (", 2)[0])
}

// digestSpan names the week's days, e.g. "Mon 30 Nov – Sun 6 Dec 2026 (UTC)".
func digestSpan(w dora.Window) string {
	last := w.Until.Add(-time.Nanosecond).UTC()
	return w.Since.UTC().Format("Mon 2 Jan") + " – " + last.Format("Mon 2 Jan 2006") + " (UTC)"
}

// RenderDigestSlack renders d as an incoming-webhook payload: a header, the week, one field
// pair per key (this week; last week and the trend), and the restore and streak notes.
func RenderDigestSlack(d dora.Digest) ([]byte, error) {
	var b blocks
	b.header(":bar_chart: " + digestTitle(d))
	b.context(digestSpan(d.Current.Window) + " · pipeline " + oneLine(d.Pipeline))
	for _, r := range DigestRows(d) {
		before := r.Before
		if r.Trend != "" {
			before += " · " + r.Trend
		}
		b.fields([][2]string{{escapeMrkdwn(r.Key), escapeMrkdwn(r.Now)}, {"Last week", escapeMrkdwn(before)}})
	}
	if note := digestNote(d); note != "" {
		b.context(note)
	}
	return json.Marshal(slackPayload{Text: fitHead(digestTitle(d), slackMaxFallback, true), Blocks: b.done()})
}

// digestNote says what the numbers cannot: a pipeline still broken at the week's end.
func digestNote(d dora.Digest) string {
	if d.Current.BrokenSince == nil {
		return ""
	}
	return "Still failing at the end of the week, since " + d.Current.BrokenSince.UTC().Format("Mon 2 Jan 15:04 UTC") + "."
}

// RenderDigestSNS renders d as an e-mail: the title as subject (fitted under SNS's limit), a
// plain-text table of the four keys, and the pipeline and status (DIGEST) attributes.
func RenderDigestSNS(d dora.Digest) SNSMessage {
	var e strings.Builder
	fmt.Fprintf(&e, "Delivery metrics of %s, %s: %s.\n\n", oneLine(first(d.Project, d.Pipeline)), oneLine(d.Week), digestSpan(d.Current.Window))
	rows := DigestRows(d)
	w := [3]int{len("KEY"), len("THIS WEEK"), len("LAST WEEK")}
	for _, r := range rows {
		w[0], w[1], w[2] = max(w[0], len(r.Key)), max(w[1], len(r.Now)), max(w[2], len(r.Before))
	}
	line := func(a, b, c, t string) {
		e.WriteString(strings.TrimRight(fmt.Sprintf("%-*s  %-*s  %-*s  %s", w[0], a, w[1], b, w[2], c, t), " ") + "\n")
	}
	line("KEY", "THIS WEEK", "LAST WEEK", "TREND")
	for _, r := range rows {
		line(r.Key, r.Now, r.Before, r.Trend)
	}
	if note := digestNote(d); note != "" {
		e.WriteString("\n" + note + "\n")
	}
	e.WriteString("\nPipeline: " + fitBytes(oneLine(d.Pipeline), snsMaxName) + "\n")
	e.WriteString("How each key is computed: docs/metrics.md. Numbers over ISO weeks, Monday 00:00 UTC to Monday 00:00 UTC.\n")
	body := e.String()
	return SNSMessage{
		Subject:    fitBytes(digestTitle(d), SNSMaxSubject),
		Body:       body,
		Attributes: map[string]string{AttrPipeline: fitBytes(oneLine(d.Pipeline), snsMaxName), AttrStatus: StatusDigest},
	}
}

// SendDigest publishes d's e-mail.
func (s *SNS) SendDigest(ctx context.Context, d dora.Digest) error {
	return s.Publish(ctx, RenderDigestSNS(d))
}

// SendDigest posts d. Like Send, a rich message that Slack refuses is said again as plain
// text, and a webhook that refuses that too is given up on (logged, nil).
func (c *SlackChannel) SendDigest(ctx context.Context, d dora.Digest) error {
	poster, err := c.poster(ctx)
	if err != nil || poster == nil {
		return err
	}
	payload, err := RenderDigestSlack(d)
	if err == nil {
		err = poster.Post(ctx, payload)
	}
	if err == nil || !IsPermanent(err) {
		return err
	}
	c.Log.ErrorContext(ctx, "slack refused the digest; sending it as plain text", "error", err.Error())
	plain, err := json.Marshal(map[string]string{"text": digestTitle(d)})
	if err != nil {
		return err
	}
	if err := poster.Post(ctx, plain); err != nil {
		if IsPermanent(err) {
			c.Log.ErrorContext(ctx, "slack refused the plain-text digest too; giving up on slack", "error", err.Error())
			return nil
		}
		return err
	}
	return nil
}
