package pipeline

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func approvalOf(stack, deploy string, widening ...string) Approval {
	at := time.Date(2026, 11, 20, 10, 4, 12, 0, time.UTC)
	return Approval{
		Key:    ApprovalKey{Pipeline: "my-lambda-pipeline", ExecutionID: "7b2e9d41-5c3a-4f8e-b1d6-2a9c0e4f7d13", Stack: stack, Deploy: deploy},
		Status: ApprovalPending, TemplateSHA256: "aa11", Widening: widening, RequestedAt: at, Deadline: at.Add(20 * time.Hour),
	}
}

// An execution may ask more than once: each of its two stacks, and a retried stage's new
// deploy. Each request is told once, so each has its own key; the same request has the same.
func TestApprovalNotificationKeyNamesStackAndDeploy(t *testing.T) {
	keys := map[string]bool{}
	for _, a := range []Approval{
		approvalOf("my-lambda-app", "job-1"),
		approvalOf("my-lambda-pipeline", "job-2"),
		approvalOf("my-lambda-app", "job-3"), // the stage retried
	} {
		k := ApprovalNotification(a).Key()
		if keys[k] {
			t.Errorf("key %s twice", k)
		}
		keys[k] = true
	}
	n := ApprovalNotification(approvalOf("my-lambda-app", "job-1", "FunctionRole: new-role"))
	if want := "approval#my-lambda-pipeline#7b2e9d41-5c3a-4f8e-b1d6-2a9c0e4f7d13#my-lambda-app#job-1"; n.Key() != want {
		t.Errorf("key %s, want %s", n.Key(), want)
	}
	failed := Notification{Type: NotifyFailed, Pipeline: "p", ExecutionID: "e", Stack: "s", Deploy: "d"}
	if failed.Key() != "failed#p#e" {
		t.Errorf("a failure's key %s names more than its execution", failed.Key())
	}
}

// What the message needs travels with the notification, and survives JSON (lp notifications
// --json, lp replay --json).
func TestApprovalNotificationCarriesTheRequest(t *testing.T) {
	a := approvalOf("my-lambda-app", "job-1", "FunctionRole: added-action: s3:PutObject", "FunctionRole: added-resource: arn:aws:s3:::uploads/*")
	n := ApprovalNotification(a)
	want := Notification{Type: NotifyApproval, Pipeline: a.Key.Pipeline, ExecutionID: a.Key.ExecutionID, At: a.RequestedAt,
		Stack: "my-lambda-app", Deploy: "job-1", Deadline: a.Deadline, Widening: a.Widening}
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("got %+v\nwant %+v", n, want)
	}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var back Notification
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, n) || back.Key() != n.Key() {
		t.Errorf("JSON round trip: %+v, want %+v", back, n)
	}
}

// The widening is bounded: each change to MaxNotifyWideningLine bytes (cut between runes),
// all of them to MaxNotifyWidening, the first ones kept and the others counted.
func TestApprovalNotificationBoundsTheWidening(t *testing.T) {
	long := "FunctionRole: added-resource: arn:aws:s3:::" + strings.Repeat("é", 400)
	var w []string
	for range 100 {
		w = append(w, long)
	}
	n := ApprovalNotification(approvalOf("my-lambda-app", "job-1", w...))
	total := 0
	for _, c := range n.Widening {
		if len(c) > MaxNotifyWideningLine || !utf8.ValidString(c) || !strings.HasSuffix(c, "…") {
			t.Fatalf("change of %d bytes, valid %v: %q", len(c), utf8.ValidString(c), c)
		}
		total += len(c) + 1
	}
	if total > MaxNotifyWidening || len(n.Widening) == 0 || len(n.Widening)+n.WideningLeft != 100 {
		t.Errorf("kept %d changes (%d bytes), left %d", len(n.Widening), total, n.WideningLeft)
	}
}
