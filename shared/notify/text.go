package notify

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Trimmed marks text that was cut to fit a limit, so that a reader knows there was more.
const Trimmed = "… (trimmed)"

// units counts s the way the strictest reading of a "characters" limit would: in UTF-16 code
// units, which are never fewer than code points (an emoji outside the BMP is two). Slack does not
// say which it counts, so the renderers measure in the larger of the two.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// escapeMrkdwn escapes the three characters Slack's mrkdwn treats as control characters. Without
// it a commit message saying "<!channel>" would ping the whole channel, and "a<b" would vanish.
func escapeMrkdwn(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

// fitHead returns s (escaped for mrkdwn when escape is set) in at most limit units, keeping its
// beginning and ending in Trimmed when it had to cut. It cuts on rune boundaries and never inside
// an escape sequence, so the result is valid UTF-8 and valid mrkdwn.
func fitHead(s string, limit int, escape bool) string {
	return fitHeadMarked(s, limit, escape, Trimmed)
}

// fitHeadMarked is fitHead with another marker, for places too small for Trimmed.
func fitHeadMarked(s string, limit int, escape bool, marker string) string {
	full := s
	if escape {
		full = escapeMrkdwn(s)
	}
	if units(full) <= limit {
		return full
	}
	budget := max(limit-units(marker), 0)
	var b strings.Builder
	used := 0
	for _, r := range s {
		piece := string(r)
		if escape {
			piece = escapeRune(r)
		}
		if used+units(piece) > budget {
			break
		}
		b.WriteString(piece)
		used += units(piece)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace) + marker
}

// fitBytes is fitHead for a limit in UTF-8 bytes (SNS measures its message in bytes).
func fitBytes(s string, limit int) string { return fitBytesMarked(s, limit, Trimmed) }

func fitBytesMarked(s string, limit int, marker string) string {
	if len(s) <= limit {
		return s
	}
	budget := max(limit-len(marker), 0)
	cut := 0
	for i, r := range s {
		if i+utf8.RuneLen(r) > budget {
			break
		}
		cut = i + utf8.RuneLen(r)
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + marker
}

// cleanText makes free text (summaries, commit messages, log lines, stack event reasons) safe
// to show anywhere: valid UTF-8, "\r\n" as "\n", no ANSI colour sequences (CodeBuild logs are
// full of them) and no other control characters but newline and tab.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if !strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b { // ESC: drop a CSI sequence ("\x1b[31m") whole, or the lone ESC.
			i += size
			if i < len(s) && s[i] == '[' {
				i++
				for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
					i++
				}
				if i < len(s) {
					i++
				}
			}
			continue
		}
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == '\r':
			b.WriteByte('\n')
		case unicode.IsControl(r):
			// dropped
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// oneLine cleans s and folds every run of whitespace (newlines included) into one space, for
// names and codes that are shown inline, and for the SNS subject, which allows no line breaks.
func oneLine(s string) string {
	return strings.Join(strings.Fields(cleanText(s)), " ")
}

// fitTail keeps the last lines of a log that fit in budget (as size measures it, a newline
// after each line included): the end of a build log is where it says what went wrong. render
// turns a raw line into its displayed form (escaped, cut to a per-line maximum). When lines are
// left out, or enrichment already left some out (earlierTrimmed), note says so, and budget has
// room for it on a line of its own.
func fitTail(lines []string, budget int, earlierTrimmed bool, render func(string) string, size func(string) int) (kept []string, note string) {
	noteFor := func(n int) string {
		if n == 0 {
			return "… (earlier lines trimmed)"
		}
		return "… (" + strconv.Itoa(n) + " earlier lines trimmed)"
	}
	budget -= size(noteFor(len(lines))) + 1
	used, start := 0, len(lines)
	for i := len(lines) - 1; i >= 0; i-- {
		l := render(lines[i])
		if used+size(l)+1 > budget {
			break
		}
		kept = append(kept, l)
		used += size(l) + 1
		start = i
	}
	slices.Reverse(kept)
	if start > 0 || earlierTrimmed {
		note = noteFor(start)
	}
	return kept, note
}

// fitLines keeps the first lines that fit in budget (as size measures it, a newline after each
// line included), rendered, and says how many it left out.
func fitLines(lines []string, budget int, render func(string) string, size func(string) int) (kept []string, left int) {
	used := 0
	for i, l := range lines {
		r := render(l)
		if used+size(r)+1 > budget {
			return kept, len(lines) - i
		}
		kept = append(kept, r)
		used += size(r) + 1
	}
	return kept, 0
}

// plural is "1 change", "2 changes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
