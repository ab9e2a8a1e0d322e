package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

func localEnv(name string) string {
	return map[string]string{"LP_STORE": "memory"}[name]
}

// Under scripts/invoke (LP_STORE=memory) every sample event gets a meaningful answer, and
// nothing is sent anywhere.
func TestLocalRunsPlanEverySample(t *testing.T) {
	var logs bytes.Buffer
	r, err := build(localEnv, slog.New(slog.NewJSONHandler(&logs, nil)))
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
		resp, err := r.Handle(context.Background(), raw)
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
	if _, err := r.Handle(context.Background(), []byte(`{}`)); err == nil {
		t.Error("an event that is neither a job nor a request was accepted")
	}
}

func TestBuildNamesMissingConfiguration(t *testing.T) {
	_, err := build(func(string) string { return "" }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "RUNS_TABLE") {
		t.Errorf("err = %v", err)
	}
	_, err = build(func(k string) string { return map[string]string{"RUNS_TABLE": "runs"}[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("err = %v", err)
	}
	_, err = build(func(k string) string {
		return map[string]string{"RUNS_TABLE": "runs", "APPROVAL_EXPIRY_HOURS": "48"}[k]
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "APPROVAL_EXPIRY_HOURS") {
		t.Errorf("an expiry past CodePipeline's 24 hours: err = %v", err)
	}
}

// The policy gate is wired into both entry points, with the runs table for approvals and the
// rules from the environment (a push cannot change them).
func TestBuildWiresThePolicyGate(t *testing.T) {
	env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "x", "RUNS_TABLE": "runs"}
	r, err := build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g := r.Jobs.Gate
	if g == nil || r.Custom.Gate != g || g.Stacks == nil || g.Clock == nil {
		t.Fatalf("gate: %+v", g)
	}
	if _, ok := g.Approvals.(*runstore.Dynamo); !ok {
		t.Errorf("approvals kept in %T, want the runs table", g.Approvals)
	}
	if g.Expiry != deploy.DefaultApprovalExpiry || !reflect.DeepEqual(g.Policy, policy.DefaultConfig()) {
		t.Errorf("defaults: expiry %s, policy %+v", g.Expiry, g.Policy)
	}

	env["GATE_PRINCIPALS"] = "lambda.amazonaws.com"
	env["GATE_RESOURCE_TYPES"] = "AWS::Lambda::*, AWS::IAM::Role"
	env["APPROVAL_EXPIRY_HOURS"] = "4"
	r, err = build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g = r.Jobs.Gate
	if g.Expiry != 4*time.Hour || !reflect.DeepEqual(g.Policy.AllowedPrincipals, []string{"lambda.amazonaws.com"}) ||
		!reflect.DeepEqual(g.Policy.AllowedResourceTypes, []string{"AWS::Lambda::*", "AWS::IAM::Role"}) {
		t.Errorf("narrowed gate: expiry %s, policy %+v", g.Expiry, g.Policy)
	}
}

func TestBuildWiresAWSClients(t *testing.T) {
	env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "x", "RUNS_TABLE": "runs"}
	r, err := build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Jobs.DryRun || r.Custom.DryRun || r.Jobs.Engine == nil || r.Jobs.Engine.Region != "eu-west-1" || r.Jobs.Jobs == nil {
		t.Errorf("job handler: %+v", r.Jobs)
	}
	if r.Custom.Engine != r.Jobs.Engine || len(r.Custom.Template) == 0 {
		t.Errorf("custom resource: %+v", r.Custom)
	}
	if _, ok := r.Custom.Reply.(deploy.HTTPReplier); !ok {
		t.Errorf("against AWS the answers go to the response URL, got %T", r.Custom.Reply)
	}

	env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4566"
	r, err = build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Custom.Reply.(deploy.LoopbackReplier); !ok {
		t.Errorf("against local stand-ins the answers go to loopback only, got %T", r.Custom.Reply)
	}
}

func TestBuildWiresTheConvergerFromTheControlPlanesSettings(t *testing.T) {
	env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "x",
		"CONTROL_PLANE": "lambda-pipeline", "ARTIFACTS_BUCKET": "b", "AWS_LAMBDA_FUNCTION_NAME": "lambda-pipeline-deployer",
		"PIPELINE_STACK_ROLE_ARN": "arn:aws:iam::123456789012:role/p", "APP_STACK_ROLE_ARN": "arn:aws:iam::123456789012:role/a",
		"PERMISSIONS_BOUNDARY_ARN": "arn:aws:iam::123456789012:policy/b", "RUNS_TABLE": "t", "PROJECTS": "api, web:release"}
	h, err := build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if h.converger == nil || len(h.converger.Parameter) != 2 || h.converger.Parameter[1].Branch != "release" {
		t.Fatalf("converger: %+v", h.converger)
	}
	env["PROJECTS"] = "Not_A_Name"
	if _, err := build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("an invalid Projects parameter was accepted")
	}
	delete(env, "ARTIFACTS_BUCKET")
	env["PROJECTS"] = ""
	if _, err := build(func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "ARTIFACTS_BUCKET") {
		t.Errorf("missing ARTIFACTS_BUCKET: %v", err)
	}
}

func TestScheduledEventsConvergeAndOtherPayloadsAreRouted(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`: true,
		`{"action":"converge"}`:           true,
		`{"CodePipeline.job":{"id":"x"}}`: false,
		`{"RequestType":"Create"}`:        false,
		`not json`:                        false,
	} {
		if got := isConverge([]byte(raw)); got != want {
			t.Errorf("isConverge(%s) = %v", raw, got)
		}
	}
	h, err := build(localEnv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), []byte(`{"action":"converge"}`))
	if err != nil || resp.Outcome != "skipped" {
		t.Errorf("local converge: %+v %v", resp, err)
	}
}
