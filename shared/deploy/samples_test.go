package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sample payloads a user invokes the deployer with must be ones the deployer accepts.
func TestSamplePayloadsParse(t *testing.T) {
	crs, err := filepath.Glob("../../events/custom-resource-*.json")
	require.NoError(t, err)
	require.Len(t, crs, 3)
	for _, f := range crs {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		ev, err := DecodeCustomResource(data)
		require.NoError(t, err, f)
		props, err := ParsePipelineStackProperties(ev.ResourceProperties)
		require.NoError(t, err, f)
		assert.Equal(t, "my-lambda-pipeline", props.StackName)
		assert.Equal(t, "my-lambda", props.Parameters["ProjectName"])
	}
	jobs, err := filepath.Glob("../../events/job-*.json")
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	for _, f := range jobs {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		job, err := DecodeJob(data)
		require.NoError(t, err, f)
		_, err = ParseUserParameters(job.Data.ActionConfiguration.Configuration.UserParameters)
		require.NoError(t, err, f)
	}
}
