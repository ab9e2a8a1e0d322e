package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"slices"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// writeSVG writes the picture of one pipeline's keys over their window to path.
func writeSVG(path string, k dora.Keys, runs []pipeline.Run, rule dora.Rule) error {
	if err := os.WriteFile(path, metricsSVG(k, runs, rule), 0o644); err != nil {
		return fmt.Errorf("write the metrics picture: %w", err)
	}
	return nil
}

// metricsSVG draws one pipeline's four keys over their window: the numbers, a timeline of the
// runs that ended in it (deploys, failures, the failure streaks and how long each took to
// restore, the lead time of each change), and deploys and failures per day. The same keys and
// runs give the same bytes.
func metricsSVG(k dora.Keys, runs []pipeline.Run, rule dora.Rule) []byte {
	const (
		width, height = 760, 430
		left, right   = 40.0, 720.0
	)
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteByte('\n') }
	w := k.Window
	span := w.Until.Sub(w.Since).Seconds()
	x := func(t time.Time) float64 {
		f := t.Sub(w.Since).Seconds() / span
		return left + (right-left)*min(max(f, 0), 1)
	}

	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`, width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>`)
	p(`<text x="%.0f" y="26" font-size="16" font-weight="bold">%s · delivery metrics</text>`, left, html.EscapeString(pipeline.DisplayName(k.Pipeline)))
	p(`<text x="%.0f" y="44" fill="#555">%s → %s · %.2f days · lp metrics, docs/metrics.md</text>`, left, stamp(w.Since), stamp(w.Until), w.Days())

	// The four keys.
	cards := []struct{ value, label, detail string }{
		{perDay(k.DeploymentsPerDay), "deployment frequency", plural(k.Deployments, "deploy")},
		{median(k.LeadTime), "lead time (median)", mean(k.LeadTime)},
		{rate(k), "change failure rate", fmt.Sprintf("%d failed of %d decisive runs", k.FailedRuns, k.DecisiveRuns)},
		{median(k.TimeToRestore), "time to restore (median)", mean(k.TimeToRestore)},
	}
	for i, c := range cards {
		cx := left + float64(i)*172
		p(`<rect x="%.0f" y="58" width="164" height="70" rx="6" fill="#f3f5f7" stroke="#d0d7de"/>`, cx)
		p(`<text x="%.0f" y="86" font-size="20" font-weight="bold">%s</text>`, cx+10, html.EscapeString(c.value))
		p(`<text x="%.0f" y="104" font-size="11">%s</text>`, cx+10, c.label)
		p(`<text x="%.0f" y="120" fill="#555" font-size="10">%s</text>`, cx+10, html.EscapeString(c.detail))
	}

	// Timeline: day lines, restore bands, lead-time lines, run ends.
	const top, bottom = 150.0, 300.0
	p(`<text x="%.0f" y="%.0f" font-weight="bold">runs</text>`, left, top-6)
	p(`<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#d0d7de"/>`, left, top, right-left, bottom-top)
	for d := w.Since.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour); d.Before(w.Until); d = d.Add(24 * time.Hour) {
		p(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#d0d7de" stroke-dasharray="3,3"/>`, x(d), top, x(d), bottom)
		p(`<text x="%.1f" y="%.0f" fill="#555" font-size="10" text-anchor="middle">%s</text>`, x(d), bottom+12, d.Format("Mon 02 Jan"))
	}
	for _, r := range k.Restores {
		x0, x1 := x(r.BrokenSince), x(r.RestoredAt)
		p(`<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="#cf222e" fill-opacity="0.12"/>`, x0, top+1, x1-x0, bottom-top-2)
		p(`<text x="%.1f" y="%.0f" fill="#cf222e" font-size="10">broken %s</text>`, x0+3, top+14, roundDuration(r.Duration()))
	}
	for i, c := range k.Changes {
		y := top + 34 + float64(i%6)*12
		x0, x1 := x(c.CommittedAt), x(c.DeployedAt)
		p(`<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#0969da" stroke-width="2"/>`, x0, y, x1, y)
		p(`<circle cx="%.1f" cy="%.0f" r="2.5" fill="#0969da"/>`, x0, y)
		// Labels start at the commit, or end at the deploy near the right edge.
		lx, anchor := x0+4, "start"
		if x0 > right-120 {
			lx, anchor = x1-4, "end"
		}
		p(`<text x="%.1f" y="%.0f" fill="#0969da" font-size="9" text-anchor="%s">%s %s</text>`, lx, y-3, anchor, html.EscapeString(short(c.CommitID, 7)), roundDuration(c.LeadTime()))
	}
	ended := slices.Clone(runs)
	slices.SortFunc(ended, pipeline.CompareRuns)
	for _, r := range ended {
		end, ok := dora.EndOf(r)
		if r.Pipeline != k.Pipeline || !ok || !w.Contains(end) {
			continue
		}
		cx, cy := x(end), bottom-16
		switch {
		case rule.IsDeploy(r):
			p(`<path d="M%.1f %.0f l6 10 h-12 z" fill="#1a7f37"><title>deploy %s</title></path>`, cx, cy-6, html.EscapeString(r.ExecutionID))
		case r.Status == pipeline.StatusFailed:
			p(`<circle cx="%.1f" cy="%.0f" r="5" fill="#cf222e"><title>failed %s</title></circle>`, cx, cy, html.EscapeString(r.ExecutionID))
		default:
			p(`<circle cx="%.1f" cy="%.0f" r="4" fill="#8c959f"><title>%s %s</title></circle>`, cx, cy, r.Status, html.EscapeString(r.ExecutionID))
		}
	}

	// Deploys and failures per day (24-hour slices from the window's start).
	const chartTop, chartBottom = 340.0, 400.0
	p(`<text x="%.0f" y="%.0f" font-weight="bold">per day</text>`, left, chartTop-6)
	most := 1
	for _, d := range k.Daily {
		most = max(most, d.Deployments, d.Failures)
	}
	slot := (right - left) / float64(len(k.Daily))
	bar := min(slot/3, 24)
	for i, d := range k.Daily {
		sx := left + float64(i)*slot + slot/2
		for j, v := range []struct {
			n     int
			color string
		}{{d.Deployments, "#1a7f37"}, {d.Failures, "#cf222e"}} {
			h := (chartBottom - chartTop - 12) * float64(v.n) / float64(most)
			bx := sx - bar + float64(j)*bar
			p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, bx, chartBottom-h, bar-2, h, v.color)
			p(`<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%d</text>`, bx+bar/2-1, chartBottom-h-2, v.n)
		}
		// One label every few days when the days are narrow.
		if every := int(math.Ceil(80 / slot)); i%every == 0 {
			p(`<text x="%.1f" y="%.0f" fill="#555" font-size="10" text-anchor="middle">from %s</text>`, sx, chartBottom+12, d.Start.UTC().Format("Mon 15:04"))
		}
	}
	p(`<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#555"/>`, left, chartBottom, right, chartBottom)
	p(`<text x="%.0f" y="%.0f" font-size="10" fill="#555"><tspan fill="#1a7f37">■ deploys</tspan>  <tspan fill="#cf222e">■ failures</tspan>  <tspan fill="#0969da">— lead time per change</tspan>  <tspan fill="#cf222e">▒ broken until restored</tspan></text>`, left, float64(height)-8)
	p(`</svg>`)
	return b.Bytes()
}

// replaySVG writes the picture of the one replayed pipeline over the replayed window.
func replaySVG(path string, runs []pipeline.Run) error {
	w, ok := recordedSpan(runs)
	if !ok {
		return fmt.Errorf("--svg: nothing was replayed")
	}
	ks := dora.Compute(runs, w, dora.DefaultRule())
	if len(ks) != 1 {
		return fmt.Errorf("--svg draws one pipeline; the replay has %d", len(ks))
	}
	return writeSVG(path, ks[0], runs, dora.DefaultRule())
}
