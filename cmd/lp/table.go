package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// defaultWidth is the width tables fit by default: a terminal's usual 100 columns or less
// leaves room for the prompt and scroll bar. --wide lifts it.
const defaultWidth = 100

// column is one column of a grid.
type column struct {
	title string
	// shrink lets the column be truncated (with "…") to fit the width, down to min runes;
	// columns with a lower shrink value give way first (0: never).
	shrink int
	min    int
	// omitEmpty drops the column when no row has a value in it.
	omitEmpty bool
	// status colours the cells by run status on a terminal.
	status bool
}

// grid is a table that fits a width and colours status cells only on a terminal.
type grid struct {
	cols []column
	rows [][]string
}

func (g *grid) add(cells ...string) { g.rows = append(g.rows, cells) }

// render writes the grid. width 0 means no limit (--wide). Cells are separated by two spaces
// and lines carry no trailing blanks.
func (g *grid) render(w io.Writer, width int, colour bool) {
	var keep []int
	for i, c := range g.cols {
		if c.omitEmpty && g.empty(i) {
			continue
		}
		keep = append(keep, i)
	}
	widths := make([]int, len(keep))
	for k, i := range keep {
		widths[k] = runes(g.cols[i].title)
		for _, r := range g.rows {
			widths[k] = max(widths[k], runes(r[i]))
		}
	}
	if width > 0 {
		fit(widths, keep, g.cols, width)
	}
	line := func(cells []string, header bool) {
		var b strings.Builder
		for k, i := range keep {
			text := truncate(cells[i], widths[k])
			pad := widths[k] - runes(text)
			if k == len(keep)-1 {
				pad = 0
			}
			if !header && colour && g.cols[i].status {
				text = paint(text)
			}
			if k > 0 {
				b.WriteString("  ")
			}
			b.WriteString(text)
			b.WriteString(strings.Repeat(" ", pad))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	titles := make([]string, len(g.cols))
	for i, c := range g.cols {
		titles[i] = c.title
	}
	line(titles, true)
	for _, r := range g.rows {
		line(r, false)
	}
}

func (g *grid) empty(col int) bool {
	for _, r := range g.rows {
		if r[col] != "" {
			return false
		}
	}
	return true
}

// fit narrows the shrinkable columns, first those that give way first, the widest among
// them first, until the line fits width or every one of them is at its minimum.
func fit(widths, keep []int, cols []column, width int) {
	total := func() int {
		t := 2 * (len(widths) - 1)
		for _, w := range widths {
			t += w
		}
		return t
	}
	for total() > width {
		widest := -1
		for k, i := range keep {
			c := cols[i]
			if c.shrink == 0 || widths[k] <= max(c.min, runes(c.title)) {
				continue
			}
			if widest < 0 || c.shrink < cols[keep[widest]].shrink || c.shrink == cols[keep[widest]].shrink && widths[k] > widths[widest] {
				widest = k
			}
		}
		if widest < 0 {
			return
		}
		widths[widest]--
	}
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// truncate cuts s to n runes, the last one "…" when something was cut.
func truncate(s string, n int) string {
	if runes(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	if n == 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// paint colours a run or stage status (ANSI SGR: red, green, yellow).
func paint(s string) string {
	code := ""
	switch strings.TrimSpace(s) {
	case "FAILED":
		code = "31"
	case "SUCCEEDED":
		code = "32"
	case "STARTED", "IN_PROGRESS", "RESUMED", "STOPPING":
		code = "33"
	}
	if code == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// useColour reports whether w is a terminal that may be coloured: never with NO_COLOR set
// (https://no-color.org) or TERM=dumb, never into a pipe or file.
func useColour(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// shortIDs abbreviates execution ids as git abbreviates commits: the first 8 characters, or,
// when rows share those (ids that are not random), the first 8, "…" and as many of the last
// characters as tell them apart. lp show accepts either form.
func shortIDs(ids []string) map[string]string {
	const head = 8
	byPrefix := map[string]map[string]bool{}
	for _, id := range ids {
		p := short(id, head)
		if byPrefix[p] == nil {
			byPrefix[p] = map[string]bool{}
		}
		byPrefix[p][id] = true
	}
	out := map[string]string{}
	for _, id := range ids {
		p := short(id, head)
		if len(byPrefix[p]) == 1 || runes(id) <= head+5 {
			out[id] = p
			continue
		}
		n := 4
		for ; n < len(id)-head; n++ {
			unique := true
			for other := range byPrefix[p] {
				if other != id && strings.HasSuffix(other, id[len(id)-n:]) {
					unique = false
					break
				}
			}
			if unique {
				break
			}
		}
		if n >= len(id)-head-1 {
			out[id] = id
			continue
		}
		out[id] = p + "…" + id[len(id)-n:]
	}
	return out
}

// matchesShort reports whether a full id matches an abbreviation made by shortIDs (or any
// prefix of it, as git accepts).
func matchesShort(id, abbrev string) bool {
	if pre, suf, ok := strings.Cut(abbrev, "…"); ok {
		return strings.HasPrefix(id, pre) && strings.HasSuffix(id, suf) && len(id) >= len(pre)+len(suf)
	}
	return strings.HasPrefix(id, abbrev)
}
