package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codecommit/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
)

const commitID = "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"

func TestCommitsAdaptsGetCommit(t *testing.T) {
	fake := awsfake.NewCodeCommit(t, "my-lambda")
	fake.AddCommit("my-lambda", awsfake.Commit{ID: commitID, Message: "Retry with backoff", AuthorName: "Ana Lima",
		AuthorEmail: "ana@example.com", AuthorDate: time.Unix(1795198440, 0).UTC(), CommitterDate: time.Unix(1795198500, 0).UTC()})
	c := commits{fake.Client(t)}

	got, err := c.GetCommit(context.Background(), "my-lambda", commitID)
	want := pushstart.CommitInfo{Message: "Retry with backoff", AuthorName: "Ana Lima", AuthorEmail: "ana@example.com", AuthorDate: "1795198440 +0000", CommitterDate: "1795198500 +0000"}
	if err != nil || got != want {
		t.Errorf("GetCommit = %+v, %v; want %+v", got, err, want)
	}
	_, err = c.GetCommit(context.Background(), "my-lambda", "a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0")
	var missing *types.CommitIdDoesNotExistException
	if !errors.As(err, &missing) {
		t.Errorf("unknown commit: err = %v, want CommitIdDoesNotExistException kept in the chain", err)
	}
}

// Under LP_STORE=memory the function runs a push end to end without AWS.
func TestLocalStandInStartsARun(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h, err := build(func(k string) string { return map[string]string{"LP_STORE": "memory"}[k] }, log)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`{"version":"0","id":"8d6f3c1a-2b4e-4f70-9c1d-5e7a8b9c0d11","detail-type":"CodeCommit Repository State Change",
		"source":"aws.codecommit","account":"123456789012","time":"2026-11-20T10:15:03Z","region":"eu-west-1","resources":[],
		"detail":{"event":"referenceUpdated","repositoryName":"my-lambda","repositoryId":"x","referenceType":"branch",
		"referenceName":"main","referenceFullName":"refs/heads/main","commitId":"` + commitID + `"}}`)
	resp, err := h.Handle(context.Background(), raw)
	if err != nil || resp.Outcome != lambdaio.OutcomeRecorded || resp.ExecutionID == "" {
		t.Fatalf("Handle = %+v, %v; want a run started", resp, err)
	}
	if !bytes.Contains(logs.Bytes(), []byte("local run: StartPipelineExecution not called")) {
		t.Errorf("the stand-in did not log the start:\n%s", logs.String())
	}
}

func TestBuildNamesMissingConfiguration(t *testing.T) {
	_, err := build(func(string) string { return "" }, slog.New(slog.DiscardHandler))
	// PIPELINE_NAME and REPOSITORY_NAME are optional: without them pushes are routed by
	// project (the per-account template sets neither).
	if err == nil || !strings.Contains(err.Error(), "RUNS_TABLE") || !strings.Contains(err.Error(), "ACCOUNT_ID") {
		t.Errorf("build = %v; want every missing variable named", err)
	}
	set := map[string]string{"RUNS_TABLE": "t", "PIPELINE_NAME": "p", "REPOSITORY_NAME": "r", "AWS_REGION": "eu-west-1", "TRACKED_BRANCH": "release",
		"ACCOUNT_ID": "111111111111"}
	h, err := build(func(k string) string { return set[k] }, slog.New(slog.DiscardHandler))
	if err != nil || h.Branch != "release" || h.PipelineName != "p" || h.RepositoryName != "r" {
		t.Errorf("build = %+v, %v", h, err)
	}
	// The home is the account and region pushes must come from (pushes elsewhere are skipped).
	if want := (pipeline.Home{Account: "111111111111", Region: "eu-west-1"}); h == nil || h.Home != want {
		t.Errorf("home = %+v, want %+v", h, want)
	}
	set["ACCOUNT_ID"] = "1111"
	if _, err := build(func(k string) string { return set[k] }, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "ACCOUNT_ID") {
		t.Errorf("build = %v; want the invalid ACCOUNT_ID named", err)
	}
}

func TestBuildRoutesByProjectWithoutAPipelineName(t *testing.T) {
	set := map[string]string{"RUNS_TABLE": "t", "AWS_REGION": "eu-west-1", "ACCOUNT_ID": "111111111111", "PROJECTS": "api, web:release"}
	h, err := build(func(k string) string { return set[k] }, slog.New(slog.DiscardHandler))
	if err != nil || h.Projects == nil {
		t.Fatalf("build = %+v, %v; want pushes routed by project", h, err)
	}
	set["PROJECTS"] = "Bad_Name"
	if _, err := build(func(k string) string { return set[k] }, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("an invalid PROJECTS was accepted")
	}
}

// A scheduled event runs the push re-drive; under LP_STORE=memory no branch is known, so it
// starts nothing.
func TestScheduledEventRunsTheRedrive(t *testing.T) {
	h, err := build(func(k string) string { return map[string]string{"LP_STORE": "memory"}[k] }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../events/reconciler-schedule.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(context.Background(), raw)
	if err != nil || resp.Outcome != lambdaio.OutcomeDone || resp.Status != "redriven" || !strings.Contains(resp.Reason, "1 tracked branches: 0 started") {
		t.Errorf("Handle(scheduled event) = %+v, %v; want the re-drive's pass", resp, err)
	}
}
