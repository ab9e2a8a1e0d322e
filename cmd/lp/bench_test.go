package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// corpus builds n events or a little more: the shared scenarios' executions, copied under new
// execution ids (and new event ids) until there are enough.
func corpus(t testing.TB, n int) []json.RawMessage {
	t.Helper()
	var templates [][]map[string]any
	for _, name := range []string{"success", "deploy-fails", "stopped-by-hand", "red-then-green"} {
		f, err := os.Open(filepath.Join("testdata/scenarios/shared", name+".ndjson"))
		require.NoError(t, err)
		var evs []map[string]any
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
			evs = append(evs, ev)
		}
		f.Close()
		templates = append(templates, evs)
	}
	var out []json.RawMessage
	for copyNo := 0; len(out) < n; copyNo++ {
		for ti, tmpl := range templates {
			for ei, ev := range tmpl {
				c := map[string]any{}
				for k, v := range ev {
					c[k] = v
				}
				d := map[string]any{}
				for k, v := range ev["detail"].(map[string]any) {
					d[k] = v
				}
				d["execution-id"] = fmt.Sprintf("%s-%05d", d["execution-id"], copyNo)
				// Each copy happens an hour after the previous one.
				at, err := time.Parse(time.RFC3339, ev["time"].(string))
				require.NoError(t, err)
				c["time"] = at.Add(time.Duration(copyNo) * time.Hour).Format(time.RFC3339)
				d["pipeline"] = fmt.Sprintf("%s-%d", d["pipeline"], copyNo%7)
				c["detail"] = d
				c["id"] = fmt.Sprintf("bench-%05d-%d-%03d", copyNo, ti, ei)
				raw, err := json.Marshal(c)
				require.NoError(t, err)
				out = append(out, raw)
			}
		}
	}
	return out
}

// mixed returns the events shuffled with 10 % of them delivered twice.
func mixed(events []json.RawMessage, seed uint64) []json.RawMessage {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := append([]json.RawMessage(nil), events...)
	for i := 0; i < len(events)/10; i++ {
		out = append(out, events[rng.IntN(len(events))])
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func writeNDJSON(t testing.TB, events []json.RawMessage) string {
	t.Helper()
	var buf bytes.Buffer
	for _, e := range events {
		buf.Write(e)
		buf.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
	return path
}

func replayJSON(t testing.TB, path string) replayReport {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(context.Background(), []string{"replay", "--json", path}, &out, &errb, noEnv)
	require.Equal(t, 0, status, errb.String())
	var rep replayReport
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep))
	return rep
}

// windowed returns the events with each moved by at most w places (delivery jitter of a few
// seconds), and 10 % delivered twice.
func windowed(events []json.RawMessage, w int, seed uint64) []json.RawMessage {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	type keyed struct {
		k   float64
		raw json.RawMessage
	}
	var ks []keyed
	for i, e := range events {
		ks = append(ks, keyed{float64(i) + rng.Float64()*float64(w), e})
		if rng.IntN(10) == 0 {
			ks = append(ks, keyed{float64(i) + rng.Float64()*float64(w), e})
		}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return cmp.Compare(a.k, b.k) })
	out := make([]json.RawMessage, len(ks))
	for i, k := range ks {
		out[i] = k.raw
	}
	return out
}

// TestReplay10kShuffledMatchesInOrder: 10,000 events shuffled across all executions with 10 %
// duplicates give the same run records as in-order delivery.
func TestReplay10kShuffledMatchesInOrder(t *testing.T) {
	events := corpus(t, 10_000)
	inOrder := replayJSON(t, writeNDJSON(t, events))
	shuffled := replayJSON(t, writeNDJSON(t, mixed(events, 42)))
	require.Len(t, shuffled.Runs, len(inOrder.Runs))
	require.Equal(t, inOrder.Runs, shuffled.Runs)
	require.GreaterOrEqual(t, shuffled.Ignored-inOrder.Ignored, len(events)/10, "every extra copy is ignored (and late events outranked)")
}

// TestReplay10kJitterSameNotifications: with the reordering EventBridge causes (events moved
// by up to 50 places, i.e. within and between neighbouring executions) and 10 % duplicates,
// the notifications are the in-order ones too. (A shuffle across hours can make a recovery
// be sent before the failure that precedes it arrives; that is not undone.)
func TestReplay10kJitterSameNotifications(t *testing.T) {
	events := corpus(t, 10_000)
	inOrder := replayJSON(t, writeNDJSON(t, events))
	jittered := replayJSON(t, writeNDJSON(t, windowed(events, 50, 9)))
	require.Equal(t, inOrder.Runs, jittered.Runs)
	require.NotEmpty(t, inOrder.Notifications)
	require.ElementsMatch(t, inOrder.Notifications, jittered.Notifications)
}

// BenchmarkReplay10k times lp replay over 10,000 shuffled events with 10 % duplicates (the
// whole command: read, decode, fold, decide, report).
func BenchmarkReplay10k(b *testing.B) {
	path := writeNDJSON(b, mixed(corpus(b, 10_000), 7))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		if status := run(context.Background(), []string{"replay", "--json", path}, &out, &errb, noEnv); status != 0 {
			b.Fatal(errb.String())
		}
		if !strings.Contains(out.String(), `"runs"`) {
			b.Fatal("no report")
		}
	}
	b.ReportMetric(11_000*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
