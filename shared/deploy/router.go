package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
)

// Router is the deployer's Lambda entry point: one binary serves CodePipeline's jobs and the
// PipelineStack custom resource. Every payload gets an answer where one can be given: a job
// that does not decode is failed by its id, a request that does not decode is answered FAILED
// at its ResponseURL, so that neither waits for a timeout.
type Router struct {
	Jobs   *JobHandler
	Custom *CustomResource
	Log    *slog.Logger
}

// Config is what a Router is built from.
type Config struct {
	Stacks StacksAPI
	Jobs   Jobs
	Region string
	// BaseEndpoint is aws.Config's: set, it is the local stand-ins' endpoint
	// (AWS_ENDPOINT_URL); artifacts are read from it, and custom resource answers go to
	// loopback response URLs only, so that a run against stand-ins never writes to AWS.
	BaseEndpoint *string
	// PipelineTemplate is the template the custom resource creates the pipeline stack from.
	PipelineTemplate []byte
	// Gate is the policy gate of every deploy. Nil: the default rules (policy.DefaultConfig)
	// and no approval store, so that a widening fails instead of deploying.
	Gate *Gate
	Log  *slog.Logger
}

// NewRouter wires the job handler and the custom resource over AWS clients.
func NewRouter(c Config) *Router {
	engine := &Engine{Stacks: c.Stacks, Region: c.Region}
	gate := c.Gate
	if gate == nil {
		gate = &Gate{Policy: policy.DefaultConfig(), Stacks: c.Stacks}
	}
	var reply Replier = HTTPReplier{}
	if aws.ToString(c.BaseEndpoint) != "" {
		reply = LoopbackReplier{Log: c.Log}
	}
	return &Router{
		Log:    c.Log,
		Jobs:   &JobHandler{Engine: engine, Jobs: c.Jobs, Artifacts: &S3Getter{Region: c.Region, Endpoint: aws.ToString(c.BaseEndpoint)}, Gate: gate, Log: c.Log},
		Custom: &CustomResource{Engine: engine, Template: c.PipelineTemplate, Reply: reply, Gate: gate, Log: c.Log},
	}
}

// NewDryRunRouter is the deployer of local runs (scripts/invoke), which have no AWS account:
// it validates the payload, reads the template and resolves the parameters, then reports what
// it would deploy (JobHandler.DryRun, CustomResource.DryRun). It calls no AWS API and sends no
// custom resource answer. Every input artifact is a ZIP of files (path in the ZIP → content).
func NewDryRunRouter(pipelineTemplate []byte, files map[string][]byte, log *slog.Logger) *Router {
	return &Router{
		Log:    log,
		Jobs:   &JobHandler{Artifacts: ZipArtifacts{Files: files, Log: log}, Gate: &Gate{Policy: policy.DefaultConfig()}, Log: log, DryRun: true},
		Custom: &CustomResource{Template: pipelineTemplate, Gate: &Gate{Policy: policy.DefaultConfig()}, Log: log, DryRun: true},
	}
}

// Handle routes a CodePipeline job or a custom resource request. The job carries temporary
// artifact credentials, and the request a presigned response URL: neither is logged. It
// returns an error when an answer could not be delivered (Lambda then retries; every step is
// idempotent), and for a payload that is neither a job nor a request with a ResponseURL:
// nobody can be answered, and the failed invocation (which holds no job credentials) ends in
// the deployer's failure queue, whose alarm makes the misdirected call visible.
func (r *Router) Handle(ctx context.Context, raw json.RawMessage) (lambdaio.Response, error) {
	if IsJob(raw) {
		job, err := DecodeJob(raw)
		if err != nil {
			r.Log.ErrorContext(ctx, "job rejected", "error", err.Error())
			// A job with an id is answered, so that the action fails now rather than at
			// CodePipeline's timeout; without one there is nothing to answer.
			if id := jobIDOf(raw); id != "" {
				if _, rerr := r.Jobs.Reject(ctx, id, err); rerr != nil {
					return lambdaio.Response{}, rerr
				}
			}
			return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Reason: err.Error()}, nil
		}
		rep, err := r.Jobs.Handle(ctx, job)
		if err != nil {
			return lambdaio.Response{}, err
		}
		return lambdaio.Response{Outcome: lambdaio.OutcomeDone, Status: rep.Result, Reason: rep.Summary}, nil
	}
	ev, err := DecodeCustomResource(raw)
	if err != nil {
		salvaged, ok := salvageRequest(raw)
		if !ok {
			r.Log.ErrorContext(ctx, "payload rejected: neither a CodePipeline job nor a custom resource request with a ResponseURL", "error", err.Error())
			return lambdaio.Response{}, errors.Join(errors.New("neither a CodePipeline job nor a custom resource request"), err)
		}
		r.Log.ErrorContext(ctx, "custom resource request rejected", "requestId", salvaged.RequestID, "error", err.Error())
		reply, rerr := r.Custom.Reject(ctx, salvaged, err)
		if rerr != nil {
			return lambdaio.Response{}, rerr
		}
		return lambdaio.Response{Outcome: lambdaio.OutcomeRejected, Status: string(reply.Status), Reason: reply.Reason}, nil
	}
	reply, err := r.Custom.Handle(ctx, ev)
	if err != nil {
		return lambdaio.Response{}, err
	}
	return lambdaio.Response{Outcome: lambdaio.OutcomeDone, Status: string(reply.Status), Reason: reply.Reason}, nil
}

// ZipArtifacts stands in for S3 in local runs: every input artifact is a ZIP of Files (path
// in the ZIP → content), the source artifact's layout.
type ZipArtifacts struct {
	Files map[string][]byte
	Log   *slog.Logger
}

// GetObject returns the ZIP, whatever the bucket and key.
func (z ZipArtifacts) GetObject(ctx context.Context, _ aws.Credentials, bucket, key string) ([]byte, error) {
	z.Log.InfoContext(ctx, "local run: artifact not read from S3; serving the files built into the binary", "bucket", bucket, "key", key)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(z.Files)) {
		w, err := zw.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(z.Files[name]); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// LoopbackReplier answers custom resource requests at loopback response URLs only (local
// stand-ins); an answer for any other URL is logged, not sent.
type LoopbackReplier struct {
	Log  *slog.Logger
	HTTP HTTPReplier
}

// Reply PUTs body to a loopback responseURL, and logs it otherwise.
func (r LoopbackReplier) Reply(ctx context.Context, responseURL string, body []byte) error {
	u, err := url.Parse(responseURL)
	if err == nil {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			return r.HTTP.Reply(ctx, responseURL, body)
		}
	}
	host := "?"
	if u != nil {
		host = u.Host
	}
	r.Log.InfoContext(ctx, "local endpoints: custom resource answer not sent to a non-loopback response URL", "host", host, "body", string(body))
	return nil
}
