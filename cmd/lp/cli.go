package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Stamped at build time by `make lp`:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=abc1234"
//
// When empty, versionLine falls back to the module version and VCS revision that the Go
// toolchain records in the binary (go install …@v1.2.3, or a build in a git checkout).
var version, commit string

// versionLine is what lp --version prints: "lp v1.2.3 (commit abc1234)".
func versionLine() string {
	v, c := version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" && c != "" && !strings.HasSuffix(c, "-dirty") {
				c += "-dirty"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		return "lp " + v
	}
	return fmt.Sprintf("lp %s (commit %s)", v, short(c, 12))
}

// errHelpShown ends a command whose --help was printed: exit status 0.
var errHelpShown = errors.New("help shown")

// help is one command's --help text around its flags.
type help struct {
	name     string // "runs"
	synopsis string // "[--pipeline P] [--limit N] [--json]"
	summary  string // one line: what it does
	example  string // one or more command lines
}

// newFlags returns a flag set that prints nothing itself: parse reports errors once, and
// --help goes to stdout.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, flags and operands in any order (as git, kubectl and awscli allow:
// `lp show ID --json`); "--" ends the flags. Afterwards fs.Args() holds the operands. On -h or
// --help it prints the command's help to stdout and returns errHelpShown; a bad flag is a
// usageError.
func parse(fs *flag.FlagSet, h help, args []string, stdout io.Writer) error {
	var operands []string
	for {
		rest := args
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printHelp(stdout, fs, h)
				return errHelpShown
			}
			return usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		// flag stops at the first operand, and after "--" (which it consumes).
		if len(args) < len(rest) && rest[len(rest)-len(args)-1] == "--" {
			operands = append(operands, args...)
			break
		}
		operands = append(operands, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, operands...))
}

// printHelp writes a command's help: summary, usage, every flag with its default, an example.
func printHelp(w io.Writer, fs *flag.FlagSet, h help) {
	fmt.Fprintf(w, "lp %s — %s\n\nUsage:\n  lp %s %s\n\nFlags:\n", h.name, h.summary, h.name, h.synopsis)
	type line struct{ left, right string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		left := "--" + f.Name
		if name, _ := flag.UnquoteUsage(f); name != "" {
			left += " " + name
		}
		right := f.Usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			right += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		width = max(width, len(left))
		lines = append(lines, line{left, right})
	})
	lines = append(lines, line{"-h, --help", "this help"})
	for _, l := range lines {
		fmt.Fprintf(w, "  %-*s  %s\n", max(width, len("-h, --help")), l.left, l.right)
	}
	if h.example != "" {
		fmt.Fprintf(w, "\nExample:\n")
		for _, ex := range strings.Split(strings.TrimSpace(h.example), "\n") {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}
