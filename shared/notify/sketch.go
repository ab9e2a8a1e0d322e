package notify

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// SketchSlack draws a Slack payload roughly as Slack shows it, in plain text: the
// notification text, then each block (a header as "# …", fields as "Label: value", context
// lines as "(small) …", buttons as "[Label] url", one per line) in a box. Mrkdwn links show
// their label. lp replay --render prints it; the golden files and docs/notifications.md hold
// it for every kind of message.
func SketchSlack(payload []byte) (string, error) {
	var p struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Text string `json:"text"`
			} `json:"text"`
			Fields []struct {
				Text string `json:"text"`
			} `json:"fields"`
			Elements []struct {
				Type string          `json:"type"`
				Text json.RawMessage `json:"text"`
				URL  string          `json:"url"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("read Slack payload: %w", err)
	}
	show := func(s string) string { return unescapeMrkdwn(mrkdwnLink.ReplaceAllString(s, "$2")) }
	var b strings.Builder
	b.WriteString("notification: " + show(p.Text) + "\n")
	b.WriteString("┌" + strings.Repeat("─", 78) + "\n")
	line := func(s string) {
		for _, l := range strings.Split(s, "\n") {
			b.WriteString(strings.TrimRight("│ "+l, " ") + "\n")
		}
	}
	for i, bl := range p.Blocks {
		if i > 0 {
			line("")
		}
		switch bl.Type {
		case "header":
			line("# " + bl.Text.Text)
		case "section":
			if bl.Text != nil {
				line(show(bl.Text.Text))
			}
			for _, f := range bl.Fields {
				label, value, _ := strings.Cut(show(f.Text), "\n")
				line(fmt.Sprintf("%-14s %s", strings.Trim(label, "*")+":", value))
			}
		case "context":
			for _, e := range bl.Elements {
				var s string // a text element's "text" is a string (a button's is an object)
				_ = json.Unmarshal(e.Text, &s)
				line("(small) " + show(s))
			}
		case "actions":
			for _, e := range bl.Elements {
				var obj struct {
					Text string `json:"text"`
				}
				_ = json.Unmarshal(e.Text, &obj)
				line(strings.TrimSpace("[" + obj.Text + "] " + e.URL))
			}
		default:
			line("(" + bl.Type + ")")
		}
	}
	b.WriteString("└" + strings.Repeat("─", 78) + "\n")
	return b.String(), nil
}

// mrkdwnLink is Slack's <url|label> link syntax.
var mrkdwnLink = regexp.MustCompile(`<([^|>]+)\|([^>]+)>`)

// SNSText is an SNS message as an e-mail subscriber sees it: the subject, the message
// attributes (which subscription filter policies match) as name=value, and the body.
func SNSText(s SNSMessage) string {
	keys := make([]string, 0, len(s.Attributes))
	for k := range s.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, k+"="+s.Attributes[k])
	}
	var b strings.Builder
	b.WriteString("Subject: " + s.Subject + "\n")
	if len(attrs) > 0 {
		b.WriteString("Attributes: " + strings.Join(attrs, " ") + "\n")
	}
	b.WriteString("\n" + s.Body)
	return b.String()
}
