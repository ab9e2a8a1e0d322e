// Package awsconfig builds the aws.Config a Lambda function needs from the environment Lambda
// gives it: the region and the execution role's credentials.
//
// It replaces config.LoadDefaultConfig in the functions on purpose: that loader links the
// shared-file, SSO, STS and IMDS providers, which a function never uses, and which took one
// bootstrap past the 8 MB budget (9.8 MB with it, see docs/benchmarks.md). It also keeps a
// cold start from looking for ~/.aws files.
//
// Endpoint overrides follow the AWS SDKs' "configured endpoints" rules (AWS SDKs and Tools
// Reference Guide, "Service-specific endpoints",
// https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html; see also
// docs/aws-behaviour.md, "SDK configuration"):
//
//   - AWS_ENDPOINT_URL_<SERVICE> sets the endpoint of one service, where <SERVICE> is the
//     service's SDK ID upper-cased with spaces turned into underscores (DYNAMODB, SNS,
//     CLOUDWATCH_LOGS, SECRETS_MANAGER, ...);
//   - AWS_ENDPOINT_URL sets the endpoint of every service that has no variable of its own;
//   - AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns both off.
//
// FromEnv does not resolve the per-service variables itself: it hands the SDK a configuration
// source (aws.Config.ConfigSources) that answers them, and each service client's NewFromConfig
// asks it, exactly as it asks the source config.LoadDefaultConfig would have built. So
// `dynamodb.NewFromConfig(cfg)` honours AWS_ENDPOINT_URL_DYNAMODB with no option at the call
// site. EndpointFor gives the same answer to code that does not go through an SDK client.
package awsconfig

import (
	"cmp"
	"context"
	"errors"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Environment variable names, as the AWS SDKs and Tools Reference Guide spells them.
const (
	envEndpointURL       = "AWS_ENDPOINT_URL"
	envIgnoreEndpointURL = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
)

// FromEnv returns a config with AWS_REGION (or AWS_DEFAULT_REGION), the credentials in
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the SDK's standard retryer,
// AWS_ENDPOINT_URL as the base endpoint when set, and a configuration source through which
// every service client built with NewFromConfig picks up its AWS_ENDPOINT_URL_<SERVICE>
// (local stand-ins only; see the package comment). A nil getenv means os.Getenv.
func FromEnv(getenv func(string) string) (aws.Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	region := cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		return aws.Config{}, errors.New("AWS_REGION is not set")
	}
	src := envEndpoints{getenv}
	cfg := aws.Config{
		Region:        region,
		Credentials:   aws.NewCredentialsCache(envCredentials{getenv}),
		Retryer:       func() aws.Retryer { return retry.NewStandard() },
		ConfigSources: []any{src},
	}
	if ep := src.global(); ep != "" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	return cfg, nil
}

// EndpointFor returns the endpoint URL configured in the environment for the service whose
// SDK ID is serviceID (the ServiceID constant of its aws-sdk-go-v2 package, e.g.
// dynamodb.ServiceID == "DynamoDB", cloudwatchlogs.ServiceID == "CloudWatch Logs"):
// AWS_ENDPOINT_URL_<SERVICE> if set, else AWS_ENDPOINT_URL, else "" (the service's own AWS
// endpoint). It returns "" when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true. A nil getenv
// means os.Getenv.
//
// SDK clients built from FromEnv's config need not call it; it is for code that talks to a
// service without an SDK client (an HTTP GET of an S3 object, say) and for tests.
func EndpointFor(getenv func(string) string, serviceID string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	src := envEndpoints{getenv}
	if src.ignored() {
		return ""
	}
	return cmp.Or(getenv(ServiceEndpointVar(serviceID)), getenv(envEndpointURL))
}

// ServiceEndpointVar returns the name of the variable that sets one service's endpoint:
// "AWS_ENDPOINT_URL_" and the SDK ID upper-cased, spaces replaced by underscores
// ("CloudWatch Logs" → AWS_ENDPOINT_URL_CLOUDWATCH_LOGS). The AWS SDKs and Tools Reference
// Guide lists every name ("Identifiers for service-specific endpoints",
// https://docs.aws.amazon.com/sdkref/latest/guide/ss-endpoints-table.html).
func ServiceEndpointVar(serviceID string) string {
	return envEndpointURL + "_" + strings.ReplaceAll(strings.ToUpper(serviceID), " ", "_")
}

// envEndpoints is the configuration source FromEnv puts in aws.Config.ConfigSources. Each
// service package's NewFromConfig looks in ConfigSources for a value with the method set
// below (the SDK's internal ServiceBaseEndpointProvider and IgnoreConfiguredEndpointsProvider,
// which config.EnvConfig also implements) and uses what it answers as the client's
// BaseEndpoint. Matching those interfaces by method set is how the SDK itself connects its
// config module to the service modules.
type envEndpoints struct{ getenv func(string) string }

// GetServiceBaseEndpoint answers a service client's question "is there an endpoint for
// sdkID?" with AWS_ENDPOINT_URL_<SERVICE> only: the global AWS_ENDPOINT_URL is already in
// aws.Config.BaseEndpoint.
func (e envEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	if v := e.getenv(ServiceEndpointVar(sdkID)); v != "" && !e.ignored() {
		return v, true, nil
	}
	return "", false, nil
}

// GetIgnoreConfiguredEndpoints reports AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, when it is set.
func (e envEndpoints) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	v := e.getenv(envIgnoreEndpointURL)
	if v == "" {
		return false, false, nil
	}
	return strings.EqualFold(v, "true"), true, nil
}

func (e envEndpoints) ignored() bool {
	v, _, _ := e.GetIgnoreConfiguredEndpoints(context.Background())
	return v
}

// global is AWS_ENDPOINT_URL unless configured endpoints are ignored.
func (e envEndpoints) global() string {
	if e.ignored() {
		return ""
	}
	return e.getenv(envEndpointURL)
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
