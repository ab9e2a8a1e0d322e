// Package awsconfig builds the aws.Config a Lambda function needs from the environment Lambda
// gives it: the region and the execution role's credentials.
//
// It replaces config.LoadDefaultConfig in the functions on purpose: that loader links the
// shared-file, SSO, STS and IMDS providers, which a function never uses, and which took one
// bootstrap past the 8 MB budget (9.8 MB with it, see docs/benchmarks.md). It also keeps a
// cold start from looking for ~/.aws files.
package awsconfig

import (
	"cmp"
	"context"
	"errors"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// FromEnv returns a config with AWS_REGION (or AWS_DEFAULT_REGION), the credentials in
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the SDK's standard retryer,
// and AWS_ENDPOINT_URL as the base endpoint when set (local stand-ins only).
func FromEnv(getenv func(string) string) (aws.Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	region := cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		return aws.Config{}, errors.New("AWS_REGION is not set")
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(envCredentials{getenv}),
		Retryer:     func() aws.Retryer { return retry.NewStandard() },
	}
	if ep := getenv("AWS_ENDPOINT_URL"); ep != "" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	return cfg, nil
}

// envCredentials reads the credentials Lambda puts in the environment of each sandbox.
type envCredentials struct{ getenv func(string) string }

func (e envCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	id, secret := e.getenv("AWS_ACCESS_KEY_ID"), e.getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return aws.Credentials{}, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
	}
	return credentials.NewStaticCredentialsProvider(id, secret, e.getenv("AWS_SESSION_TOKEN")).Retrieve(ctx)
}
