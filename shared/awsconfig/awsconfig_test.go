package awsconfig

import (
	"context"
	"testing"

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
