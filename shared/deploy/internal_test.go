package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/stackevents"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

func TestObjectURL(t *testing.T) {
	for _, tc := range []struct {
		g                 S3Getter
		bucket, key, want string
	}{
		{S3Getter{Region: "eu-west-1"}, "my-lambda-artifacts-123456789012-eu-west-1", "my-lambda-pipeline/SourceArti/Xk3pQ9v",
			"https://my-lambda-artifacts-123456789012-eu-west-1.s3.eu-west-1.amazonaws.com/my-lambda-pipeline/SourceArti/Xk3pQ9v"},
		{S3Getter{Region: "eu-west-1"}, "dotted.bucket", "a b+c", "https://s3.eu-west-1.amazonaws.com/dotted.bucket/a%20b%2Bc"},
		{S3Getter{Region: "cn-north-1"}, "bucket", "k", "https://bucket.s3.cn-north-1.amazonaws.com.cn/k"},
		{S3Getter{Region: "eu-west-1", Endpoint: "http://127.0.0.1:9000/base/"}, "b", "x/y z", "http://127.0.0.1:9000/base/b/x/y%20z"},
	} {
		u, err := tc.g.objectURL(tc.bucket, tc.key)
		if err != nil || u.String() != tc.want {
			t.Errorf("objectURL(%s, %s) = %v, %v; want %s", tc.bucket, tc.key, u, err, tc.want)
		}
	}
}

func TestGetObjectErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKID/") || r.Header.Get("X-Amz-Content-Sha256") != emptySHA256 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`))
	}))
	defer srv.Close()
	g := &S3Getter{Region: "eu-west-1", Endpoint: srv.URL, Clock: pipeline.ClockFunc(func() time.Time { return time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC) })}
	_, err := g.GetObject(context.Background(), aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s3cr3t", SessionToken: "t0k"}, "b", "k")
	if !errors.Is(err, ErrArtifactMissing) || !strings.Contains(err.Error(), "NoSuchKey") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("missing object: %v", err)
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, _ := zw.Create(name)
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTemplateFromZip(t *testing.T) {
	data := zipOf(t, map[string]string{"infrastructure/lambda.yml": "Resources: {}", "./other.yml": "x", "big.yml": strings.Repeat("x", MaxTemplateBody+1)})
	if body, err := TemplateFromZip(data, "infrastructure/lambda.yml"); err != nil || body != "Resources: {}" {
		t.Errorf("found: %q %v", body, err)
	}
	if body, err := TemplateFromZip(data, "other.yml"); err != nil || body != "x" {
		t.Errorf("./ prefix: %q %v", body, err)
	}
	if _, err := TemplateFromZip(data, "nope.yml"); !errors.Is(err, ErrTemplateNotFound) {
		t.Errorf("missing: %v", err)
	}
	if _, err := TemplateFromZip(data, "big.yml"); !errors.Is(err, ErrTemplateTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := TemplateFromZip([]byte("not a zip"), "x"); err == nil {
		t.Error("not a zip")
	}
}

func event(logical, status, reason string, at int) cftypes.StackEvent {
	typ := "AWS::Lambda::Function"
	if logical == "app" {
		typ = stackevents.ResourceTypeStack
	}
	return cftypes.StackEvent{StackName: aws.String("app"), StackId: aws.String("id"), LogicalResourceId: aws.String(logical),
		ResourceType: aws.String(typ), ResourceStatus: cftypes.ResourceStatus(status), ResourceStatusReason: aws.String(reason),
		Timestamp: aws.Time(time.Date(2026, 1, 1, 0, 0, at, 0, time.UTC))}
}

func TestRootCauseSkipsNoiseAndOlderOperations(t *testing.T) {
	// Newest first, as DescribeStackEvents lists them; the noise shares the failure's second
	// and is listed before it.
	events := []cftypes.StackEvent{
		event("app", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Fn].", 6),
		event("Other", "UPDATE_FAILED", "Resource update cancelled", 5),
		event("Fn", "UPDATE_FAILED", "the real reason", 5),
		event("Fn", "UPDATE_IN_PROGRESS", "", 2),
		event("app", "UPDATE_IN_PROGRESS", "User Initiated", 1),
		event("Fn", "CREATE_FAILED", "an older operation's failure", 0),
		event("app", "CREATE_IN_PROGRESS", "User Initiated", 0),
	}
	op, complete := stackevents.LastOperation(events, time.Time{})
	if !complete || len(op) != 5 {
		t.Fatalf("operation: %d events, complete %v", len(op), complete)
	}
	if c := stackevents.RootCause(op); c == nil || aws.ToString(c.ResourceStatusReason) != "the real reason" {
		t.Errorf("root cause: %+v", c)
	}
	// With only noise, the stack's own reason.
	if c := stackevents.RootCause(op[:2]); c == nil || aws.ToString(c.LogicalResourceId) != "app" {
		t.Errorf("noise only: %+v", c)
	}
}

func TestContinuationRoundTrip(t *testing.T) {
	c := continuation{Stack: "my-lambda-app", Token: "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702", ChangeSet: ChangeSetName("4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"),
		Phase: PhaseExecuting, Progress: Progress{StackID: "arn:aws:cloudformation:eu-west-1:123456789012:stack/my-lambda-app/0f1e2d3c-4b5a-11ef-9c8d-0a1b2c3d4e5f", Executed: true}}
	tok, err := encodeContinuation(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeContinuation(tok)
	if err != nil || got.Progress != c.Progress || got.Token != c.Token || got.V != 1 {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "{}", `{"v":2}`, tok[:len(tok)-1], strings.Replace(tok, `"v":1`, `"v":1,"extra":1`, 1),
		strings.Replace(tok, c.ChangeSet, "lp-other", 1)} {
		if _, err := decodeContinuation(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestEncodeReplyFitsAndDropsDataFirst(t *testing.T) {
	r := CustomReply{Status: cfn.StatusFailed, Reason: strings.Repeat("<é>", 3000), PhysicalResourceID: "p", StackID: "s", RequestID: "r",
		LogicalResourceID: "l", Data: map[string]any{"Big": strings.Repeat("d", 5000)}}
	body, sent := encodeReply(r)
	if len(body) > MaxReplyBody || sent.Data != nil || !strings.HasSuffix(sent.Reason, "…") || len(sent.Reason) < 3000 {
		t.Errorf("%d bytes, data %v, reason %d bytes", len(body), sent.Data != nil, len(sent.Reason))
	}
	var back CustomReply
	if err := json.Unmarshal(body, &back); err != nil || back.Reason != sent.Reason {
		t.Errorf("body does not decode to what was sent: %v", err)
	}
	small := CustomReply{Status: cfn.StatusSuccess, Data: map[string]any{"A": "b"}}
	if _, sent := encodeReply(small); sent.Data == nil {
		t.Error("Data dropped from a small reply")
	}
}

// A continuation token comes back from CodePipeline: decoding never panics, and what it accepts
// encodes to a token that decodes the same.
func FuzzDecodeContinuation(f *testing.F) {
	tok, _ := encodeContinuation(continuation{Stack: "my-lambda-app", Token: "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702",
		ChangeSet: ChangeSetName("4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"), Phase: PhaseExecuting, Progress: Progress{Executed: true}})
	f.Add(tok)
	f.Add(`{"v":1}`)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeContinuation(s)
		if err != nil {
			return
		}
		again, err := encodeContinuation(c)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", c, err)
		}
		back, err := decodeContinuation(again)
		if err != nil || back != c {
			t.Fatalf("round trip of %q: %+v, %v", s, back, err)
		}
	})
}
