package main

import (
	"context"
	"fmt"
	"io"
)

var initLocalHelp = help{
	name:     "init-local",
	synopsis: "--endpoint URL [--table T]",
	summary:  "create the runs table (with its index) in a local DynamoDB such as dynalite",
	example: `node_modules/.bin/dynalite --port 8000 --createTableMs 0 &
lp init-local --endpoint http://127.0.0.1:8000`,
}

// initLocalCmd creates the runs table in a local stand-in. It is, with lp replay --endpoint,
// the only lp command that creates anything: in AWS the control-plane template owns the table.
func initLocalCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := newFlags("init-local")
	db := dbFlags(fs, getenv)
	if err := parse(fs, initLocalHelp, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if !db.local() {
		return usageError{"--endpoint is required: init-local only creates tables in a local DynamoDB (in AWS the control-plane stack creates it)"}
	}
	if _, err := db.open(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "table %s ready at %s\n", db.tableName, db.endpoint)
	return nil
}
