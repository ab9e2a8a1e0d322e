package main

import (
	"archive/zip"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
)

// Local runs (scripts/invoke sets LP_STORE=memory unless told otherwise) have no AWS account:
// the deployer validates the event, reads the template and resolves the parameters, then
// reports what it would deploy (deploy.JobHandler.DryRun, deploy.CustomResource.DryRun). It
// calls no AWS API and sends no custom resource reply (the sample events' ResponseURLs are S3
// URLs in AWS).

func localHandler(log *slog.Logger) *handler {
	return &handler{
		log:    log,
		jobs:   &deploy.JobHandler{Artifacts: localArtifacts{log}, Log: log, DryRun: true},
		custom: &deploy.CustomResource{Template: infrastructure.PipelineTemplate, Log: log, DryRun: true},
	}
}

// localArtifacts stands in for S3: every input artifact is a ZIP of this repository's two
// templates, as built into the binary, at their paths in the repository (the source
// artifact's layout).
type localArtifacts struct{ log *slog.Logger }

func (l localArtifacts) GetObject(ctx context.Context, _ aws.Credentials, bucket, key string) ([]byte, error) {
	l.log.InfoContext(ctx, "local run: artifact not read from S3; serving the templates built into the binary", "bucket", bucket, "key", key)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string][]byte{
		"infrastructure/pipeline.yml": infrastructure.PipelineTemplate,
		"infrastructure/lambda.yml":   infrastructure.LambdaTemplate,
	} {
		w, err := zw.Create(name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// replier is the custom resource's answer channel. Against local endpoints (AWS_ENDPOINT_URL
// set), answers go to loopback response URLs only, so that a run against stand-ins never
// writes to AWS.
func replier(localEndpoints bool, log *slog.Logger) deploy.Replier {
	if localEndpoints {
		return loopbackReplier{log: log}
	}
	return deploy.HTTPReplier{}
}

type loopbackReplier struct {
	log  *slog.Logger
	http deploy.HTTPReplier
}

func (r loopbackReplier) Reply(ctx context.Context, responseURL string, body []byte) error {
	u, err := url.Parse(responseURL)
	if err == nil {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			return r.http.Reply(ctx, responseURL, body)
		}
	}
	host := "?"
	if u != nil {
		host = u.Host
	}
	r.log.InfoContext(ctx, "local endpoints: custom resource answer not sent to a non-loopback response URL", "host", host, "body", string(body))
	return nil
}
