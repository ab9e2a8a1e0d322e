//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/recording"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

const (
	// localTable is the table the local notifier reads.
	localTable = "lambda-pipeline-runs"
	// localSeed holds the runs whose notifications events/notifier-stream-insert.json names.
	localSeed = "events/replay/one-week.ndjson"
)

// localNotifier is what the notifier reads and where it posts when the caller gives it no
// table: dynalite with the runs table, filled by replaying localSeed through on-pipeline-event's
// own code (which queues each decided notification as a PENDING claim item, exactly as the
// deployed function does), and a Slack receiver on 127.0.0.1 that keeps what it is sent.
//
// Why not an in-memory store: the stream record carries the claim's keys, and the notifier
// reads the claim and the run from the table before it sends; a memory store would hold
// neither, and the message would be about an empty run.
type localNotifier struct {
	db    *dynalitetest.Server
	srv   *http.Server
	env   map[string]string
	mu    sync.Mutex
	posts []string
}

func startLocalNotifier(ctx context.Context, root string) (*localNotifier, error) {
	if os.Getenv(dynalitetest.EnvBin) == "" {
		os.Setenv(dynalitetest.EnvBin, filepath.Join(root, "node_modules", ".bin", "dynalite"))
	}
	db, err := dynalitetest.Launch()
	if err != nil {
		return nil, err
	}
	l := &localNotifier{db: db}
	if err := l.seed(ctx, filepath.Join(root, localSeed)); err != nil {
		db.Stop()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Stop()
		return nil, err
	}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.receive)}
	go l.srv.Serve(ln)
	l.env = map[string]string{
		"RUNS_TABLE":                 localTable,
		"AWS_ENDPOINT_URL_DYNAMODB":  db.Endpoint(),
		"LP_LOCAL_SLACK_WEBHOOK_URL": "http://" + ln.Addr().String() + "/local-webhook",
	}
	return l, nil
}

// seed creates the table and replays the recorded events into it.
func (l *localNotifier) seed(ctx context.Context, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	clock := pipeline.SystemClock{}
	store := runstore.NewDynamo(dynamodb.NewFromConfig(l.db.Config()), localTable, clock)
	if err := store.EnsureTable(ctx); err != nil {
		return err
	}
	h := &recording.PipelineEvents{
		Recorder: pipeline.NewRecorder(store, store, runstore.Outbox{Store: store}, clock),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			if _, err := h.Handle(ctx, bytes.Clone(line)); err != nil {
				return fmt.Errorf("seed %s: %w", file, err)
			}
		}
	}
	return sc.Err()
}

// receive answers like a Slack incoming webhook ("ok") and keeps a sketch of the message.
func (l *localNotifier) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	text, err := notify.SketchSlack(body)
	if err != nil {
		text = string(body) + "\n"
	}
	l.mu.Lock()
	l.posts = append(l.posts, text)
	l.mu.Unlock()
	io.WriteString(w, "ok")
}

// report writes what the receiver got.
func (l *localNotifier) report(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(w, "invoke: the local Slack receiver got %d message(s)\n", len(l.posts))
	for _, p := range l.posts {
		io.WriteString(w, p)
	}
}

func (l *localNotifier) describe() string {
	return strings.Join([]string{
		"invoke: notifier: table " + localTable + " in dynalite at " + l.db.Endpoint() + ", filled from " + localSeed,
		"invoke: notifier: Slack webhook " + l.env["LP_LOCAL_SLACK_WEBHOOK_URL"] + " (a local receiver); set RUNS_TABLE to use your own table",
	}, "\n") + "\n"
}

func (l *localNotifier) stop() {
	l.srv.Close()
	l.db.Stop()
}
