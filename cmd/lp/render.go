package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

var replayHelp = help{
	name:     "replay",
	synopsis: "[--json] [--render[=json]] [--strict] [--home ACCOUNT/REGION] [--endpoint URL [--table T]] FILE...",
	summary:  "feed recorded EventBridge events through on-pipeline-event's code; print the runs and the notifications decided",
	example: `lp replay events/replay/one-week.ndjson
lp replay --render events/replay/one-week.ndjson        # each message as Slack and e-mail show it
lp replay --endpoint http://127.0.0.1:8000 events/replay/*.ndjson   # into dynalite (creates the table)
lp replay --home 111111111111/eu-west-1 dlq.ndjson    # other accounts' and regions' pipelines apart, as deployed`,
}

// renderMode is --render: off, "text" (the messages as people see them) or "json" (the
// payloads as sent). A bare --render means text.
type renderMode string

func (r *renderMode) String() string   { return string(*r) }
func (r *renderMode) IsBoolFlag() bool { return true }
func (r *renderMode) Set(v string) error {
	switch v {
	case "true", "text":
		*r = "text"
	case "json":
		*r = "json"
	case "false", "":
		*r = ""
	default:
		return fmt.Errorf("want --render or --render=json, not %q", v)
	}
	return nil
}

// renderNotifications prints each decided notification as the notifier would send it: as
// text, the Slack message as a sketch of what Slack shows and the SNS message as the e-mail;
// as json, one JSON array with each message's Slack webhook payload and SNS Publish fields. A
// replay makes no AWS look-ups (build log, stack events, artifact link): the messages say so.
func renderNotifications(w io.Writer, mode renderMode, sent []pipeline.Notification, runs map[pipeline.Key]pipeline.Run) error {
	type snsJSON struct {
		Subject    string            `json:"subject"`
		Message    string            `json:"message"`
		Attributes map[string]string `json:"messageAttributes"`
	}
	type payloads struct {
		Notification string          `json:"notification"`
		Slack        json.RawMessage `json:"slack"`
		SNS          snsJSON         `json:"sns"`
	}
	all := []payloads{}
	for _, n := range sent {
		run := runs[pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID}]
		d := pipeline.Details{Region: regionOf(run), Degraded: []string{"lp replay makes no AWS look-ups (build log, stack events, artifact link)"}}
		m := notify.Compose(n, run, d)
		payload, err := notify.RenderSlack(m)
		if err != nil {
			return fmt.Errorf("render %s for Slack: %w", n.Key(), err)
		}
		sns := notify.RenderSNS(m)
		if mode == "json" {
			all = append(all, payloads{n.Key(), payload, snsJSON{sns.Subject, sns.Body, sns.Attributes}})
			continue
		}
		sketch, err := notify.SketchSlack(payload)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n==== %s\n---- Slack\n%s---- SNS (e-mail)\n%s\n", n.Key(), sketch, strings.TrimRight(notify.SNSText(sns), "\n"))
	}
	if mode != "json" {
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(all)
}

// notifyLines prints the notifications of a replay, one line each, cut to fit defaultWidth.
func notifyLines(w io.Writer, notes []replayNotification) {
	ids := make([]string, len(notes))
	for i, n := range notes {
		ids[i] = n.ExecutionID
	}
	abbrev := shortIDs(ids)
	for _, n := range notes {
		var line string
		switch n.Type {
		case string(pipeline.NotifyFailed):
			line = fmt.Sprintf("notify FAILED     %s %s", pipeline.DisplayName(n.Pipeline), abbrev[n.ExecutionID])
			if where := joinWhere(n.Stage, n.Action); where != "" {
				line += " at " + where
			}
			if reason := strings.TrimSpace(n.ErrorCode + " " + firstLine(n.Summary)); reason != "" {
				line += ": " + reason
			}
		case string(pipeline.NotifyRecovered):
			line = fmt.Sprintf("notify RECOVERED  %s %s", pipeline.DisplayName(n.Pipeline), abbrev[n.ExecutionID])
			if n.BrokenSince != nil {
				line += " (broken since " + n.BrokenSince.Format(time.RFC3339) + ")"
			}
		default:
			line = fmt.Sprintf("notify %-10s %s %s", strings.ToUpper(n.Type), pipeline.DisplayName(n.Pipeline), abbrev[n.ExecutionID])
		}
		fmt.Fprintln(w, truncate(line, defaultWidth))
	}
}

// replayVerdict is the replay's exit status as an error: a replay that recorded nothing (an
// empty file, every event rejected) failed, and so, with --strict, does one that rejected any.
func replayVerdict(rep replayReport, events int, strict bool) error {
	accepted := events - rep.Rejected - rep.Skipped
	switch {
	case events == 0:
		return fmt.Errorf("no events in the files given: want a JSON array, one event, or one event per line")
	case accepted <= 0 && rep.Rejected > 0:
		return fmt.Errorf("every event was rejected (%d): nothing recorded (the reasons are above)", rep.Rejected)
	case strict && rep.Rejected > 0:
		return fmt.Errorf("%d of %d events rejected (--strict)", rep.Rejected, events)
	}
	return nil
}
