package ebevent

import (
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, pattern := range []string{"testdata/aws-events/*.json", "../../events/*.json"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`{"detail-type":"CodePipeline Pipeline Execution State Change","time":"2026-01-01T00:00:00Z","detail":{"pipeline":"p","execution-id":"e","state":"STARTED","version":1e300}}`))
}

// checkDecoded asserts the contract every decoder keeps: an error and a zero value, or a
// value that holds what validation promised.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			if d != (Decoded{}) {
				t.Fatalf("error %v with a non-zero value", err)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if (d.Pipeline == nil) == (d.Push == nil) {
			t.Fatal("want exactly one of Pipeline and Push")
		}
		if ev := d.Pipeline; ev != nil {
			if ev.ID == "" || ev.Pipeline == "" || ev.ExecutionID == "" || !ev.State.ValidFor(ev.Level) || ev.Attempt < 1 || ev.Time.IsZero() {
				t.Fatalf("invalid event accepted: %+v", ev)
			}
		}
		if p := d.Push; p != nil && (p.Repository == "" || p.Kind == "" || p.ID == "") {
			t.Fatalf("invalid push accepted: %+v", p)
		}
	})
}
