package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// lp project add, lp projects and lp project remove against the runs table (dynalite), with
// the converger's status written in between as the deployer writes it.
func TestProjectCommands(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	srv := dynalitetest.Start(t)
	table := dynalitetest.UniqueTableName(t)
	db := []string{"--endpoint", srv.Endpoint(), "--table", table}

	stdout, stderr, status := lp(t, append([]string{"projects", "--json"}, db...)...)
	require.Equal(t, 0, status, stderr)
	assert.JSONEq(t, "[]", stdout)

	_, stderr, status = lp(t, append([]string{"project", "add", "api", "--branch", "release"}, db...)...)
	require.Equal(t, 0, status, stderr)
	_, stderr, status = lp(t, append([]string{"project", "add", "web"}, db...)...)
	require.Equal(t, 0, status, stderr)
	_, _, status = lp(t, append([]string{"project", "add", "Bad_Name"}, db...)...)
	assert.Equal(t, 2, status, "an invalid name is a usage error")

	// The converger reports api ready and web failed.
	store := runstore.NewProjects(srv.Client(t), table)
	ctx := context.Background()
	items, err := store.ListProjects(ctx)
	require.NoError(t, err)
	require.Len(t, items, 2)
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	ok, err := store.PutStatus(ctx, "api", items[0].Status.Version, pipeline.ProjectStatus{State: pipeline.ProjectReady, StackStatus: "CREATE_COMPLETE",
		LastStepAt: at, RepositoryCloneURL: "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/api", Generation: 1, SpecHash: "h"})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = store.PutStatus(ctx, "api", items[0].Status.Version, pipeline.ProjectStatus{State: pipeline.ProjectFailed})
	require.NoError(t, err)
	assert.False(t, ok, "a write from a stale version must lose")
	ok, err = store.PutStatus(ctx, "web", items[1].Status.Version, pipeline.ProjectStatus{State: pipeline.ProjectFailed, Reason: "Root cause: Pipeline CREATE_FAILED"})
	require.NoError(t, err)
	require.True(t, ok)

	stdout, stderr, status = lp(t, append([]string{"projects", "--json"}, db...)...)
	require.Equal(t, 0, status, stderr)
	var got []struct {
		Name, Branch, Pipeline string
		Status                 pipeline.ProjectStatus
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Len(t, got, 2)
	assert.Equal(t, "api", got[0].Name)
	assert.Equal(t, "release", got[0].Branch)
	assert.Equal(t, "api-pipeline", got[0].Pipeline)
	assert.Equal(t, pipeline.ProjectReady, got[0].Status.State)
	assert.Equal(t, "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/api", got[0].Status.RepositoryCloneURL)
	assert.Equal(t, pipeline.ProjectFailed, got[1].Status.State)
	assert.Contains(t, got[1].Status.Reason, "CREATE_FAILED")

	stdout, stderr, status = lp(t, append([]string{"projects"}, db...)...)
	require.Equal(t, 0, status, stderr)
	assert.Contains(t, stdout, "ready")
	assert.Contains(t, stdout, "git-codecommit")

	_, stderr, status = lp(t, append([]string{"project", "remove", "web"}, db...)...)
	require.Equal(t, 0, status, stderr)
	d, found, err := store.GetProject(ctx, "web")
	require.NoError(t, err)
	require.True(t, found)
	assert.True(t, d.Removed, "remove marks the project; the converger deletes its stack, then the item")
	_, _, status = lp(t, append([]string{"project", "remove", "nope"}, db...)...)
	assert.Equal(t, 1, status)

	// lp runs --project reads the project's pipeline.
	_, stderr, status = lp(t, append([]string{"runs", "--project", "api"}, db...)...)
	require.Equal(t, 0, status, stderr)
}
