package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func localEnv(name string) string {
	return map[string]string{"LP_STORE": "memory"}[name]
}

// Under scripts/invoke (LP_STORE=memory) every sample event gets a meaningful answer, and
// nothing is sent anywhere.
func TestLocalRunsPlanEverySample(t *testing.T) {
	var logs bytes.Buffer
	h, err := build(localEnv, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../events/job-*.json")
	crs, _ := filepath.Glob("../../events/custom-resource-*.json")
	if len(files) == 0 || len(crs) == 0 {
		t.Fatal("no sample events")
	}
	for _, f := range append(files, crs...) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := h.Handle(context.Background(), raw)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		want := "SUCCESS"
		if strings.Contains(f, "job-") {
			want = "planned"
		}
		if resp.Outcome != "done" || resp.Status != want || !strings.Contains(resp.Reason, "would ") {
			t.Errorf("%s: %+v", f, resp)
		}
	}
	for _, secret := range []string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN", "X-Amz-Signature"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	if _, err := h.Handle(context.Background(), []byte(`{}`)); err == nil {
		t.Error("an event that is neither a job nor a request was accepted")
	}
}

func TestBuildNamesMissingConfiguration(t *testing.T) {
	_, err := build(func(string) string { return "" }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("err = %v", err)
	}
	h, err := build(func(k string) string {
		return map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "x"}[k]
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || h.jobs == nil || h.custom == nil {
		t.Errorf("AWS wiring: %v", err)
	}
}

// Against local endpoints, a custom resource answer reaches loopback URLs only.
func TestLoopbackReplier(t *testing.T) {
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got++ }))
	defer srv.Close()
	var logs bytes.Buffer
	r := replier(true, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err := r.Reply(context.Background(), srv.URL+"/answer", []byte(`{}`)); err != nil || got != 1 {
		t.Errorf("loopback: %v, %d answers", err, got)
	}
	if err := r.Reply(context.Background(), "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Signature=abc", []byte(`{}`)); err != nil || got != 1 {
		t.Errorf("AWS URL: %v, %d answers", err, got)
	}
	if !strings.Contains(logs.String(), "not sent") || strings.Contains(logs.String(), "X-Amz-Signature") {
		t.Errorf("log: %s", logs.String())
	}
}

func TestMalformedJobIsRejected(t *testing.T) {
	h, err := build(localEnv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), []byte(`{"CodePipeline.job": {"id": "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a702"}}`))
	if err != nil || resp.Outcome != "rejected" || !strings.Contains(resp.Reason, "accountId") {
		t.Errorf("%+v, %v", resp, err)
	}
}
