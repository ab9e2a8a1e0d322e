package deploy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// The deployer's world in tests: the CloudFormation and CodePipeline job fakes behind the SDK
// clients, gofakes3 for the artifacts bucket (wrapped to record how requests were signed), a
// clock that only moves when the code sleeps (CloudFormation's fake runs on it too), and the
// JSON log.

const (
	appStack      = "my-lambda-app"
	pipelineStack = "my-lambda-pipeline"
	bucket        = "my-lambda-artifacts-123456789012-eu-west-1"
	sourceKey     = "my-lambda-pipeline/SourceArti/Xk3pQ9v"
	appRoleARN    = "arn:aws:iam::123456789012:role/my-lambda-control-plane-AppStackRole-1A2B3C4D5E6F"
	pipeRoleARN   = "arn:aws:iam::123456789012:role/my-lambda-control-plane-PipelineStackRole-7QZ1X2Y3W4V5"
	// The sample job's artifact credentials (events/job-*.json).
	secretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sessionToken = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"
	accessKey    = "AKIAIOSFODNN7EXAMPLE"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

// s3Recorder serves gofakes3 and records each request's credential and session token; keys
// listed in deny answer 403 as S3 does.
type s3Recorder struct {
	next http.Handler
	mu   sync.Mutex
	auth []string
	tok  []string
	deny map[string]bool
}

func (s *s3Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.tok = append(s.tok, r.Header.Get("X-Amz-Security-Token"))
	denied := s.deny[r.URL.Path]
	s.mu.Unlock()
	if denied {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
		return
	}
	s.next.ServeHTTP(w, r)
}

type world struct {
	t       *testing.T
	cfn     *awsfake.CloudFormation
	jobs    *awsfake.Jobs
	s3      *s3Recorder
	s3mem   *s3mem.Backend
	s3URL   string
	clock   *clock
	logs    *syncBuffer
	engine  *deploy.Engine
	handler *deploy.JobHandler
	seq     int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, cfn: awsfake.NewCloudFormation(t), jobs: awsfake.NewJobs(t), s3mem: s3mem.New(),
		clock: &clock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	w.s3 = &s3Recorder{next: gofakes3.New(w.s3mem).Server(), deny: map[string]bool{}}
	srv := httptest.NewServer(w.s3)
	t.Cleanup(srv.Close)
	w.s3URL = srv.URL
	if err := w.s3mem.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	w.putSource(sourceKey, map[string][]byte{
		"infrastructure/lambda.yml":   infrastructure.LambdaTemplate,
		"infrastructure/pipeline.yml": infrastructure.PipelineTemplate,
	})
	// CloudFormation moves on the world's clock: while the deployer waits, not when it asks.
	w.cfn.UseClock(w.clock.Now)
	w.engine = &deploy.Engine{Stacks: w.cfn.Client(t), Region: "eu-west-1"}
	log := slog.New(slog.NewJSONHandler(w.logs, nil))
	w.handler = &deploy.JobHandler{
		Engine: w.engine, Jobs: w.jobs.Client(t), Log: log,
		Artifacts: &deploy.S3Getter{Region: "eu-west-1", Endpoint: srv.URL, Client: awsfake.HTTPClient()},
		Poll:      w.poller(),
	}
	return w
}

func (w *world) poller() deploy.Poller {
	return deploy.Poller{Clock: w.clock, Sleep: w.clock.Sleep}
}

// putSource stores a ZIP with files as the source artifact at key.
func (w *world) putSource(key string, files map[string][]byte) {
	w.t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		f, err := zw.Create(name)
		if err != nil {
			w.t.Fatal(err)
		}
		if _, err := f.Write(body); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.s3mem.PutObject(bucket, key, map[string]string{}, bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil); err != nil {
		w.t.Fatal(err)
	}
}

// jobID is a fresh job id (CodePipeline's are UUIDs).
func (w *world) jobID() string {
	w.seq++
	return fmt.Sprintf("%08x-1111-4000-8000-%012x", w.seq, w.seq)
}

// job is a sample job (events/job-create-update-lambda.json or -pipeline.json) with a fresh
// id and BuildOutput at buildKey.
func (w *world) job(sample, buildKey string) events.CodePipelineJob {
	w.t.Helper()
	data, err := os.ReadFile("../../events/" + sample)
	if err != nil {
		w.t.Fatal(err)
	}
	job, err := deploy.DecodeJob(data)
	if err != nil {
		w.t.Fatal(err)
	}
	job.ID = w.jobID()
	// CodePipeline knows where every job it created runs (GetJobDetails).
	stage, action := "CreateUpdateLambda", "DeployFunction"
	if strings.Contains(sample, "pipeline") {
		stage, action = "CreateUpdatePipeline", "SelfUpdate"
	}
	w.jobs.Register(job.ID, awsfake.JobContext{Pipeline: samplePipeline, ExecutionID: sampleExecution, Stage: stage, Action: action})
	for i := range job.Data.InputArtifacts {
		if job.Data.InputArtifacts[i].Name == "BuildOutput" {
			job.Data.InputArtifacts[i].Location.S3Location.ObjectKey = buildKey
		}
	}
	return job
}

func (w *world) appJob(buildKey string) events.CodePipelineJob {
	return w.job("job-create-update-lambda.json", buildKey)
}

// run hands a job to the handler and returns the result the fake recorded for it.
func (w *world) run(job events.CodePipelineJob) (deploy.JobReport, awsfake.JobResult) {
	w.t.Helper()
	rep, err := w.handler.Handle(context.Background(), job)
	if err != nil {
		w.t.Fatalf("job %s: %v", job.ID, err)
	}
	res, ok := w.jobs.Result(job.ID)
	if !ok && rep.Result != deploy.JobDropped {
		w.t.Fatalf("job %s: no result reported (report %+v)", job.ID, rep)
	}
	return rep, res
}

// runToEnd runs a job and its continuations until a final result, returning it and how many
// invocations it took.
func (w *world) runToEnd(job events.CodePipelineJob) (awsfake.JobResult, int) {
	w.t.Helper()
	for n := 1; n <= 50; n++ {
		_, res := w.run(job)
		if res.ContinuationToken == "" {
			return res, n
		}
		next := job
		next.ID, next.Data.ContinuationToken = res.NextJobID, res.ContinuationToken
		job = next
		// CodePipeline creates the next job about 30 seconds later ("Add a custom action
		// to a pipeline",
		// https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-create-custom-action.html).
		_ = w.clock.Sleep(context.Background(), 30*time.Second)
	}
	w.t.Fatal("no final result after 50 invocations")
	return awsfake.JobResult{}, 0
}

func (w *world) stack(name string) awsfake.StackState {
	w.t.Helper()
	st, ok := w.cfn.Stack(name)
	if !ok {
		w.t.Fatalf("stack %s does not exist", name)
	}
	return st
}

func (w *world) assertNoSecretsLogged() {
	w.t.Helper()
	logs := w.logs.String()
	for _, s := range []string{secretKey, sessionToken, accessKey, "X-Amz-Signature", "Signature="} {
		if strings.Contains(logs, s) {
			w.t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}

// steps runs a deploy through the engine to its end, the way a job would (one step per poll),
// and fails the test unless it succeeds.
func (w *world) steps(req deploy.Request) deploy.Outcome {
	w.t.Helper()
	out, err := w.poller().Run(context.Background(), deploy.Progress{}, func(ctx context.Context, p deploy.Progress) (deploy.Outcome, error) {
		req.Progress = p
		return w.engine.Step(ctx, req)
	})
	if err != nil || out.Status != deploy.StatusDone {
		w.t.Fatalf("deploy of %s: %+v, %v", req.StackName, out, err)
	}
	return out
}
