package notify

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
)

// go test ./shared/notify -update rewrites testdata/*.golden and the copies in
// docs/notifications.md.
var update = flag.Bool("update", false, "rewrite the golden files and docs/notifications.md")

const docsPath = "../../docs/notifications.md"

// TestGolden pins what each kind of message looks like, in Slack (the payload, and a sketch of
// how Slack shows it) and in SNS (subject, attributes, body).
func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			m := Compose(c.n, c.run, c.d)
			payload, err := RenderSlack(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := notifytest.ValidateSlackPayload(payload); err != nil {
				t.Fatalf("Slack would refuse the payload: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, payload, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteString("\n")
			checkGolden(t, c.name+".slack.json.golden", pretty.Bytes())
			sketch, err := SketchSlack(payload)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name+".slack.txt.golden", []byte(sketch))

			s := RenderSNS(m)
			if f := notifytest.ValidateSNS(s.Subject, true, s.Body, snsAttrs(s)); f != nil {
				t.Fatalf("SNS would refuse the message: %v", f)
			}
			checkGolden(t, c.name+".sns.txt.golden", []byte(SNSText(s)))
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./shared/notify -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what is rendered now (run go test ./shared/notify -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant: %q\ngot:  %q", i+1, w, g)
		}
	}
	return "(same lines, different bytes)"
}

func snsAttrs(s SNSMessage) map[string]notifytest.Attribute {
	out := map[string]notifytest.Attribute{}
	for k, v := range s.Attributes {
		out[k] = notifytest.Attribute{DataType: "String", StringValue: v}
	}
	return out
}

// TestDocs keeps docs/notifications.md showing what the code renders: each
// "<!-- golden:NAME -->" … "<!-- /golden -->" region holds testdata/NAME in a fenced block.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	region := regexp.MustCompile("(?s)(<!-- golden:([^ ]+) -->\n).*?(<!-- /golden -->)")
	found := 0
	var missing []string
	out := region.ReplaceAllFunc(doc, func(m []byte) []byte {
		sub := region.FindSubmatch(m)
		name := string(sub[2])
		found++
		content, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			missing = append(missing, name)
			return m
		}
		lang := "text"
		if strings.HasSuffix(name, ".json.golden") {
			lang = "json"
		}
		// Four backticks: the Slack texts hold ``` code blocks, which would close a ``` fence.
		return []byte(string(sub[1]) + "````" + lang + "\n" + string(content) + "````\n" + string(sub[3]))
	})
	if len(missing) > 0 {
		t.Fatalf("docs name golden files that do not exist: %v", missing)
	}
	if found == 0 {
		t.Fatal("docs/notifications.md has no golden regions")
	}
	if *update {
		if err := os.WriteFile(docsPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(out, doc) {
		t.Errorf("docs/notifications.md is out of date with testdata (run go test ./shared/notify -update):\n%s", firstDiff(string(doc), string(out)))
	}
}
