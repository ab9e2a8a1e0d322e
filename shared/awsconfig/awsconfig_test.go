package awsconfig

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvReadsLambdasEnvironment(t *testing.T) {
	cfg, err := FromEnv(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
	}))
	require.NoError(t, err)
	assert.Equal(t, "eu-west-1", cfg.Region)
	assert.Nil(t, cfg.BaseEndpoint, "no endpoint override unless asked")
	creds, err := cfg.Credentials.Retrieve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "AKID", creds.AccessKeyID)
	assert.Equal(t, "token", creds.SessionToken)
	assert.NotNil(t, cfg.Retryer())
}

func TestFromEnvErrors(t *testing.T) {
	_, err := FromEnv(env(map[string]string{"AWS_ACCESS_KEY_ID": "AKID"}))
	assert.ErrorContains(t, err, "AWS_REGION")

	cfg, err := FromEnv(env(map[string]string{"AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}))
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9", *cfg.BaseEndpoint)
	_, err = cfg.Credentials.Retrieve(context.Background())
	assert.ErrorContains(t, err, "AWS_ACCESS_KEY_ID")
}

// clearProcessEndpoints unsets the endpoint variables of the test process for the duration of
// the test: each service client also looks at the process environment (os.LookupEnv), and a
// developer's shell must not decide these tests.
func clearProcessEndpoints(t *testing.T, names ...string) {
	t.Helper()
	for _, k := range append([]string{"AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"}, names...) {
		t.Setenv(k, "") // restores the old value after the test
		require.NoError(t, os.Unsetenv(k))
	}
}

func TestServiceEndpointVar(t *testing.T) {
	// The names the AWS SDKs and Tools Reference Guide lists for the services this project calls.
	for id, want := range map[string]string{
		dynamodb.ServiceID:       "AWS_ENDPOINT_URL_DYNAMODB",
		sns.ServiceID:            "AWS_ENDPOINT_URL_SNS",
		cloudwatchlogs.ServiceID: "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
		s3.ServiceID:             "AWS_ENDPOINT_URL_S3",
		"Secrets Manager":        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
		"CodePipeline":           "AWS_ENDPOINT_URL_CODEPIPELINE",
		"CloudFormation":         "AWS_ENDPOINT_URL_CLOUDFORMATION",
	} {
		assert.Equal(t, want, ServiceEndpointVar(id), id)
	}
}

func TestEndpointFor(t *testing.T) {
	vars := map[string]string{
		"AWS_ENDPOINT_URL":          "http://127.0.0.1:4566",
		"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
	}
	assert.Equal(t, "http://127.0.0.1:8000", EndpointFor(env(vars), dynamodb.ServiceID), "the service's own variable wins")
	assert.Equal(t, "http://127.0.0.1:4566", EndpointFor(env(vars), sns.ServiceID), "else the global one")
	assert.Empty(t, EndpointFor(env(map[string]string{}), sns.ServiceID), "else the AWS endpoint")
	assert.Equal(t, "http://127.0.0.1:8000", EndpointFor(env(map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}), dynamodb.ServiceID))

	vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "TRUE"
	assert.Empty(t, EndpointFor(env(vars), dynamodb.ServiceID), "ignored on request")
	vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false"
	assert.Equal(t, "http://127.0.0.1:8000", EndpointFor(env(vars), dynamodb.ServiceID))
}

// The clients resolve the per-service variables themselves, through the config source FromEnv
// installs, with no option at the call site.
func TestClientsPickTheirOwnEndpoint(t *testing.T) {
	clearProcessEndpoints(t, "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS")
	base := map[string]string{"AWS_REGION": "eu-west-1"}
	with := func(kv ...string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return env(m)
	}
	cases := []struct {
		name              string
		getenv            func(string) string
		dynamo, sns, logs string // "" means no override: the AWS endpoint
	}{
		{"none", with(), "", "", ""},
		{"global only", with("AWS_ENDPOINT_URL", "http://g"), "http://g", "http://g", "http://g"},
		{"per service only", with("AWS_ENDPOINT_URL_DYNAMODB", "http://d", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://l"), "http://d", "", "http://l"},
		{"per service over global", with("AWS_ENDPOINT_URL", "http://g", "AWS_ENDPOINT_URL_SNS", "http://s"), "http://g", "http://s", "http://g"},
		{"ignored", with("AWS_ENDPOINT_URL", "http://g", "AWS_ENDPOINT_URL_SNS", "http://s", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"), "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := FromEnv(c.getenv)
			require.NoError(t, err)
			assert.Equal(t, c.dynamo, aws.ToString(dynamodb.NewFromConfig(cfg).Options().BaseEndpoint), "DynamoDB")
			assert.Equal(t, c.sns, aws.ToString(sns.NewFromConfig(cfg).Options().BaseEndpoint), "SNS")
			assert.Equal(t, c.logs, aws.ToString(cloudwatchlogs.NewFromConfig(cfg).Options().BaseEndpoint), "CloudWatch Logs")
			// EndpointFor agrees with what the clients resolved.
			assert.Equal(t, c.dynamo, EndpointFor(c.getenv, dynamodb.ServiceID))
			assert.Equal(t, c.sns, EndpointFor(c.getenv, sns.ServiceID))
			assert.Equal(t, c.logs, EndpointFor(c.getenv, cloudwatchlogs.ServiceID))
		})
	}
}

// A request really goes to the service's own endpoint, not to the global one: the recipe of
// docs/local-invoke.md (DynamoDB on one port, everything else on another).
func TestRequestGoesToTheServiceEndpoint(t *testing.T) {
	clearProcessEndpoints(t, "AWS_ENDPOINT_URL_DYNAMODB")
	dynamo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "DynamoDB_20120810.ListTables", r.Header.Get("X-Amz-Target"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, `{"TableNames":["runs"]}`)
	}))
	defer dynamo.Close()
	global := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request to the global endpoint: %s %s", r.Method, r.Header.Get("X-Amz-Target"))
		w.WriteHeader(http.StatusTeapot)
	}))
	defer global.Close()

	cfg, err := FromEnv(env(map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_ENDPOINT_URL": global.URL, "AWS_ENDPOINT_URL_DYNAMODB": dynamo.URL,
	}))
	require.NoError(t, err)
	out, err := dynamodb.NewFromConfig(cfg).ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	assert.Equal(t, []string{"runs"}, out.TableNames)
}
