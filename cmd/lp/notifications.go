package main

import (
	"context"
	"flag"
	"io"
	"sort"
	"strings"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// notificationsCmd lists the notifications given up after their attempts (claims in state
// FAILED): the ones nobody was told about.
func notificationsCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("notifications", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON")
	db := dbFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	store, err := db.open(ctx)
	if err != nil {
		return err
	}
	failed, err := store.GaveUp(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, failed)
	}
	tw := newTable(stdout)
	tw.row("TYPE", "PIPELINE", "EXECUTION", "STATE", "DELIVERED TO")
	for _, q := range failed {
		var chans []string
		for ch := range q.Channels {
			chans = append(chans, ch)
		}
		sort.Strings(chans)
		n := q.Notification
		tw.row(string(n.Type), pipeline.DisplayName(n.Pipeline), n.ExecutionID, q.State, strings.Join(chans, ","))
	}
	tw.flush()
	return nil
}
