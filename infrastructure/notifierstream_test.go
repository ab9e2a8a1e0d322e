package infrastructure

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// streamRecord reads the one record of a stream sample in events/, as Lambda's filter sees it.
func streamRecord(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct{ Records []map[string]any }
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("%s: %v, %d records", name, err, len(ev.Records))
	}
	return ev.Records[0]
}

// changed returns a copy of rec with the value at path (keys) set to v.
func changed(t *testing.T, rec map[string]any, v any, path ...string) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(rec)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	m := out
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	m[path[len(path)-1]] = v
	return out
}

// The notifier's event source mapping passes exactly the records it has work for: a queued
// claim (its sample), a claim handed back, and a new approval request (its sample); not a
// claim being worked on, nor an approval's decision or removal, nor any other item.
func TestNotifierStreamFilterPassesWhatItSends(t *testing.T) {
	_, esm := controlPlane(t).resource("NotifierStream")
	var patterns []*EventPattern
	for _, f := range at(esm, "FilterCriteria", "Filters").([]any) {
		p, err := ParseEventPattern([]byte(f.(map[string]any)["Pattern"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		patterns = append(patterns, p)
	}
	passes := func(rec map[string]any) bool {
		return slices.ContainsFunc(patterns, func(p *EventPattern) bool { return p.MatchValue(rec) })
	}
	claim, approval := streamRecord(t, "notifier-stream-insert.json"), streamRecord(t, "notifier-approval-insert.json")
	leased := changed(t, changed(t, claim, "MODIFY", "eventName"), map[string]any{"N": "1795424604120"}, "dynamodb", "NewImage", "leaseUntil")
	for name, c := range map[string]struct {
		rec  map[string]any
		want bool
	}{
		"a queued claim":               {claim, true},
		"a claim handed back":          {changed(t, claim, "MODIFY", "eventName"), true},
		"a claim held or backing off":  {leased, false},
		"a claim marked sent":          {changed(t, changed(t, claim, "MODIFY", "eventName"), map[string]any{"S": "SENT"}, "dynamodb", "NewImage", "state"), false},
		"an approval request":          {approval, true},
		"an approval decided":          {changed(t, approval, "MODIFY", "eventName"), false},
		"an approval expired (TTL)":    {changed(t, approval, "REMOVE", "eventName"), false},
		"a run's observation inserted": {changed(t, claim, map[string]any{"S": "RUN#my-lambda-pipeline#e"}, "dynamodb", "Keys", "pk"), false},
	} {
		if got := passes(c.rec); got != c.want {
			t.Errorf("%s: passes %v, want %v", name, got, c.want)
		}
	}
}

// The notifier writes claims and nothing else: it tells approval requests and must not be
// able to decide one (or write any other item).
func TestNotifierWritesClaimsOnly(t *testing.T) {
	cp := controlPlane(t)
	_, policy := cp.resource("NotifierTablePolicy")
	var docs []any
	docs = append(docs, policy["PolicyDocument"])
	_, role := cp.resource("NotifierRole")
	for _, p := range role["Policies"].([]any) {
		docs = append(docs, p.(map[string]any)["PolicyDocument"])
	}
	updates := 0
	for _, doc := range docs {
		for _, s := range statements(doc) {
			st := s.(map[string]any)
			for _, a := range stringList(st["Action"]) {
				switch a {
				case "dynamodb:UpdateItem":
					updates++
					keys := at(st, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys")
					if !reflect.DeepEqual(keys, []any{"NOTIFY#*"}) {
						t.Errorf("UpdateItem on leading keys %v, want [NOTIFY#*] (ForAllValues:StringLike)", keys)
					}
				case "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:*":
					t.Errorf("the notifier may %s", a)
				}
			}
		}
	}
	if updates != 1 {
		t.Errorf("%d statements grant UpdateItem, want the claims' one", updates)
	}
}
