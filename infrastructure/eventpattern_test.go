package infrastructure

import (
	"encoding/json"
	"strings"
	"testing"
)

// A CodeCommit push and a CodePipeline event, shaped like the ones in events/.
const (
	pushEvent = `{
  "source": "aws.codecommit",
  "detail-type": "CodeCommit Repository State Change",
  "account": "123456789012",
  "region": "eu-west-1",
  "resources": ["arn:aws:codecommit:eu-west-1:123456789012:my-lambda"],
  "detail": {
    "event": "referenceUpdated",
    "repositoryName": "my-lambda",
    "referenceType": "branch",
    "referenceName": "main",
    "commitId": "b7e6f4c2",
    "oldCommitId": "a9c8b7d6"
  }
}`
	actionEvent = `{
  "source": "aws.codepipeline",
  "detail-type": "CodePipeline Action Execution State Change",
  "detail": {
    "pipeline": "my-lambda-pipeline",
    "stage": "BuildAndTest",
    "action": "Build",
    "state": "FAILED",
    "version": 3,
    "pipeline-execution-attempt": 1,
    "input-artifacts": [{"name": "SourceArtifact", "s3location": {"bucket": "b", "key": "k1"}}],
    "tags": ["a", "b"],
    "empty": [],
    "nothing": null,
    "flag": true
  }
}`
)

func TestEventPatternMatch(t *testing.T) {
	cases := []struct {
		name    string
		pattern string
		event   string
		want    bool
	}{
		// Exact values.
		{"exact source", `{"source":["aws.codecommit"]}`, pushEvent, true},
		{"exact other source", `{"source":["aws.codepipeline"]}`, pushEvent, false},
		{"exact one of list", `{"detail":{"event":["referenceCreated","referenceUpdated"]}}`, pushEvent, true},
		{"exact is case sensitive", `{"detail":{"referenceName":["Main"]}}`, pushEvent, false},
		{"exact all fields must match", `{"source":["aws.codecommit"],"detail":{"referenceName":["dev"]}}`, pushEvent, false},
		{"exact number", `{"detail":{"version":[3]}}`, actionEvent, true},
		{"exact number as float", `{"detail":{"version":[3.0]}}`, actionEvent, true},
		{"number is not its string", `{"detail":{"version":["3"]}}`, actionEvent, false},
		{"exact boolean", `{"detail":{"flag":[true]}}`, actionEvent, true},
		{"exact null", `{"detail":{"nothing":[null]}}`, actionEvent, true},
		{"null is not missing", `{"detail":{"absent":[null]}}`, actionEvent, false},
		{"array element", `{"detail":{"tags":["b"]}}`, actionEvent, true},
		{"array no element", `{"detail":{"tags":["c"]}}`, actionEvent, false},
		{"top-level array field", `{"resources":["arn:aws:codecommit:eu-west-1:123456789012:my-lambda"]}`, pushEvent, true},
		{"array of objects", `{"detail":{"input-artifacts":{"name":["SourceArtifact"]}}}`, actionEvent, true},
		{"array of objects deep", `{"detail":{"input-artifacts":{"s3location":{"key":["k1"]}}}}`, actionEvent, true},
		{"array of objects no match", `{"detail":{"input-artifacts":{"name":["BuildOutput"]}}}`, actionEvent, false},
		{"missing field", `{"detail":{"branch":["main"]}}`, pushEvent, false},
		{"object where value expected", `{"detail":["x"]}`, pushEvent, false},

		// prefix / suffix / equals-ignore-case / wildcard.
		{"prefix", `{"detail":{"referenceName":[{"prefix":"ma"}]}}`, pushEvent, true},
		{"prefix no", `{"detail":{"referenceName":[{"prefix":"feature/"}]}}`, pushEvent, false},
		{"prefix on number", `{"detail":{"version":[{"prefix":"3"}]}}`, actionEvent, false},
		{"prefix ignore case", `{"detail":{"referenceName":[{"prefix":{"equals-ignore-case":"MA"}}]}}`, pushEvent, true},
		{"suffix", `{"detail-type":[{"suffix":"State Change"}]}`, actionEvent, true},
		{"suffix no", `{"detail-type":[{"suffix":"Stage Change"}]}`, actionEvent, false},
		{"equals-ignore-case", `{"detail":{"state":[{"equals-ignore-case":"failed"}]}}`, actionEvent, true},
		{"wildcard", `{"detail-type":[{"wildcard":"CodePipeline * Execution State Change"}]}`, actionEvent, true},
		{"wildcard no", `{"detail-type":[{"wildcard":"CodePipeline Stage*"}]}`, actionEvent, false},
		{"wildcard escaped star", `{"detail":{"stage":[{"wildcard":"Build\\*"}]}}`, actionEvent, false},
		{"wildcard no star is exact", `{"detail":{"stage":[{"wildcard":"BuildAndTest"}]}}`, actionEvent, true},

		// anything-but.
		{"anything-but value", `{"detail":{"referenceType":[{"anything-but":"tag"}]}}`, pushEvent, true},
		{"anything-but same value", `{"detail":{"referenceType":[{"anything-but":"branch"}]}}`, pushEvent, false},
		{"anything-but list", `{"detail":{"event":[{"anything-but":["referenceDeleted","referenceUpdated"]}]}}`, pushEvent, false},
		{"anything-but number", `{"detail":{"version":[{"anything-but":[1,2]}]}}`, actionEvent, true},
		{"anything-but prefix", `{"detail":{"referenceName":[{"anything-but":{"prefix":"feature/"}}]}}`, pushEvent, true},
		{"anything-but prefix hit", `{"detail":{"referenceName":[{"anything-but":{"prefix":"ma"}}]}}`, pushEvent, false},
		{"anything-but suffix", `{"detail":{"action":[{"anything-but":{"suffix":"ild"}}]}}`, actionEvent, false},
		{"anything-but ignore case", `{"detail":{"state":[{"anything-but":{"equals-ignore-case":["failed"]}}]}}`, actionEvent, false},
		{"anything-but wildcard", `{"detail":{"stage":[{"anything-but":{"wildcard":"Deploy*"}}]}}`, actionEvent, true},
		{"anything-but missing field", `{"detail":{"absent":[{"anything-but":"x"}]}}`, pushEvent, false},
		{"anything-but array any element", `{"detail":{"tags":[{"anything-but":"a"}]}}`, actionEvent, true},

		// exists.
		{"exists true", `{"detail":{"commitId":[{"exists":true}]}}`, pushEvent, true},
		{"exists true missing", `{"detail":{"absent":[{"exists":true}]}}`, pushEvent, false},
		{"exists false missing", `{"detail":{"absent":[{"exists":false}]}}`, pushEvent, true},
		{"exists false present", `{"detail":{"commitId":[{"exists":false}]}}`, pushEvent, false},
		{"exists true null", `{"detail":{"nothing":[{"exists":true}]}}`, actionEvent, true},
		{"exists false empty array", `{"detail":{"empty":[{"exists":false}]}}`, actionEvent, true},
		{"exists false missing parent", `{"missing":{"x":[{"exists":false}]}}`, pushEvent, true},
		{"exists true missing parent", `{"missing":{"x":[{"exists":true}]}}`, pushEvent, false},
		{"exists or value", `{"detail":{"absent":["x",{"exists":false}]}}`, pushEvent, true},

		// numeric.
		{"numeric range", `{"detail":{"version":[{"numeric":[">",0,"<=",3]}]}}`, actionEvent, true},
		{"numeric out of range", `{"detail":{"version":[{"numeric":[">",3]}]}}`, actionEvent, false},
		{"numeric equal", `{"detail":{"pipeline-execution-attempt":[{"numeric":["=",1]}]}}`, actionEvent, true},
		{"numeric on string", `{"detail":{"state":[{"numeric":[">",0]}]}}`, actionEvent, false},

		// $or.
		{"or first", `{"source":["aws.codecommit"],"$or":[{"detail":{"referenceName":["main"]}},{"detail":{"referenceType":["tag"]}}]}`, pushEvent, true},
		{"or second", `{"$or":[{"detail":{"referenceName":["dev"]}},{"detail":{"referenceType":["branch"]}}]}`, pushEvent, true},
		{"or neither", `{"$or":[{"detail":{"referenceName":["dev"]}},{"detail":{"referenceType":["tag"]}}]}`, pushEvent, false},
		{"or nested", `{"detail":{"$or":[{"state":["FAILED"]},{"stage":["Deploy"]}]}}`, actionEvent, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseEventPattern([]byte(c.pattern))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Match([]byte(c.event))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestEventPatternMismatchNamesTheField(t *testing.T) {
	p, err := ParseEventPattern([]byte(`{"source":["aws.codecommit"],"detail":{"event":["referenceUpdated"],"referenceName":["mian"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(pushEvent), &ev); err != nil {
		t.Fatal(err)
	}
	if got := p.Mismatch(ev); got != "detail.referenceName" {
		t.Fatalf("Mismatch = %q, want detail.referenceName", got)
	}
	if p.MatchValue(ev) {
		t.Fatal("MatchValue = true")
	}
}

// Patterns decoded from YAML carry ints, not float64s.
func TestEventPatternFromDecodedValues(t *testing.T) {
	p, err := NewEventPattern(map[string]any{
		"detail": map[string]any{
			"version": []any{3},
			"state":   []any{map[string]any{"anything-but": []any{"SUCCEEDED", "STARTED"}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.Match([]byte(actionEvent))
	if err != nil || !ok {
		t.Fatalf("Match = %v, %v", ok, err)
	}
}

func TestEventPatternRejects(t *testing.T) {
	cases := []struct {
		name, pattern, wantErr string
	}{
		{"not an object", `["aws.codecommit"]`, "want a JSON object"},
		{"empty", `{}`, "empty object"},
		{"scalar leaf", `{"source":"aws.codecommit"}`, `source: want a list of values or an object, got a string`},
		{"empty list", `{"source":[]}`, "source: empty list"},
		{"nested empty object", `{"detail":{}}`, "detail: empty object"},
		{"list in list", `{"source":[["a"]]}`, "a list inside a list"},
		{"unknown operator", `{"source":[{"prefixx":"aws."}]}`, `unsupported operator "prefixx"`},
		{"cidr unsupported", `{"detail":{"ip":[{"cidr":"10.0.0.0/24"}]}}`, `unsupported operator "cidr"`},
		{"two operators", `{"source":[{"prefix":"a","suffix":"b"}]}`, "exactly one operator"},
		{"prefix not string", `{"source":[{"prefix":3}]}`, "want a string"},
		{"exists not bool", `{"source":[{"exists":"true"}]}`, "want true or false"},
		{"numeric odd", `{"detail":{"v":[{"numeric":[">"]}]}}`, "want [op, number]"},
		{"numeric bad op", `{"detail":{"v":[{"numeric":["!=",1]}]}}`, `unknown comparison "!="`},
		{"numeric not number", `{"detail":{"v":[{"numeric":[">","1"]}]}}`, "want a number"},
		{"anything-but empty", `{"source":[{"anything-but":[]}]}`, "empty list"},
		{"anything-but object op", `{"source":[{"anything-but":{"exists":true}}]}`, "want a string or a list of strings"},
		{"anything-but null", `{"source":[{"anything-but":null}]}`, "want a value"},
		{"or single", `{"$or":[{"source":["a"]}]}`, "at least two"},
		{"or not objects", `{"$or":["a","b"]}`, "want an object"},
		{"bad json", `{"source":`, "event pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseEventPattern([]byte(c.pattern))
			if err == nil {
				t.Fatalf("accepted %s", c.pattern)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %q does not mention %q", err, c.wantErr)
			}
		})
	}
}

func TestEventPatternMatchRejectsBadEvents(t *testing.T) {
	p, err := ParseEventPattern([]byte(`{"source":["a"]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{`not json`, `["a"]`, `"a"`} {
		if _, err := p.Match([]byte(ev)); err == nil {
			t.Errorf("Match(%s): no error", ev)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		glob, s string
		want    bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abbc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"ab*ba", "aba", false}, // the prefix and suffix may not overlap
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
	}
	for _, c := range cases {
		if got := globMatch(c.glob, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.glob, c.s, got, c.want)
		}
	}
}

func FuzzEventPattern(f *testing.F) {
	f.Add(`{"source":["aws.codecommit"],"detail":{"referenceName":[{"prefix":"ma"}]}}`, pushEvent)
	f.Add(`{"detail":{"version":[{"numeric":[">",0,"<=",3]}],"absent":[{"exists":false}]}}`, actionEvent)
	f.Add(`{"$or":[{"a":[{"anything-but":{"wildcard":"x*"}}]},{"b":[null]}]}`, `{"a":"y","b":[1,[2]]}`)
	f.Fuzz(func(t *testing.T, pattern, event string) {
		p, err := ParseEventPattern([]byte(pattern))
		if err != nil {
			return
		}
		matched, err := p.Match([]byte(event))
		if err != nil {
			return
		}
		// Mismatch and Match agree.
		var ev map[string]any
		if err := json.Unmarshal([]byte(event), &ev); err != nil {
			t.Fatal(err)
		}
		if (p.Mismatch(ev) == "") != matched {
			t.Fatalf("Mismatch and Match disagree on %s / %s", pattern, event)
		}
	})
}
