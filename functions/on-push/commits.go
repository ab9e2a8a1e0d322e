package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codecommit/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
)

// commits adapts the CodeCommit client to pushstart.CommitGetter and pushstart.BranchReader,
// which do not name the SDK's types so that the functions that do not look commits up do not
// link the CodeCommit client.
type commits struct{ client *codecommit.Client }

var (
	_ pushstart.CommitGetter = commits{}
	_ pushstart.BranchReader = commits{}
)

// Head reads the head commit of a branch. A missing repository or branch (a project not
// converged yet, an empty repository) is pipeline.ErrNotFound. "GetBranch", AWS CodeCommit API
// Reference, https://docs.aws.amazon.com/codecommit/latest/APIReference/API_GetBranch.html
func (c commits) Head(ctx context.Context, repository, branch string) (string, error) {
	out, err := c.client.GetBranch(ctx, &codecommit.GetBranchInput{RepositoryName: aws.String(repository), BranchName: aws.String(branch)})
	var noBranch *types.BranchDoesNotExistException
	var noRepo *types.RepositoryDoesNotExistException
	if errors.As(err, &noBranch) || errors.As(err, &noRepo) {
		return "", fmt.Errorf("get branch %s of %s: %w (%w)", branch, repository, pipeline.ErrNotFound, err)
	}
	if err != nil {
		return "", fmt.Errorf("get branch %s of %s: %w", branch, repository, err)
	}
	if out.Branch == nil || aws.ToString(out.Branch.CommitId) == "" {
		return "", fmt.Errorf("get branch %s of %s: the answer holds no commit", branch, repository)
	}
	return aws.ToString(out.Branch.CommitId), nil
}

func (c commits) GetCommit(ctx context.Context, repository, commitID string) (pushstart.CommitInfo, error) {
	out, err := c.client.GetCommit(ctx, &codecommit.GetCommitInput{RepositoryName: aws.String(repository), CommitId: aws.String(commitID)})
	if err != nil {
		return pushstart.CommitInfo{}, fmt.Errorf("get commit %s of %s: %w", commitID, repository, err)
	}
	if out.Commit == nil {
		return pushstart.CommitInfo{}, fmt.Errorf("get commit %s of %s: the answer holds no commit", commitID, repository)
	}
	info := pushstart.CommitInfo{Message: aws.ToString(out.Commit.Message)}
	if a := out.Commit.Author; a != nil {
		info.AuthorName, info.AuthorEmail, info.AuthorDate = aws.ToString(a.Name), aws.ToString(a.Email), aws.ToString(a.Date)
	}
	if c := out.Commit.Committer; c != nil {
		info.CommitterDate = aws.ToString(c.Date)
	}
	return info, nil
}

// localAWS stands in for CodeCommit and CodePipeline under LP_STORE=memory: it logs what the
// function would ask and answers without AWS.
type localAWS struct{ log *slog.Logger }

func (l localAWS) GetCommit(ctx context.Context, repository, commitID string) (pushstart.CommitInfo, error) {
	l.log.InfoContext(ctx, "local run: GetCommit not called", "repository", repository, "commitId", commitID)
	return pushstart.CommitInfo{}, nil
}

// Head knows no branch: the re-drive finds nothing to do.
func (l localAWS) Head(_ context.Context, repository, branch string) (string, error) {
	return "", fmt.Errorf("local run: no CodeCommit knows %s %s: %w", repository, branch, pipeline.ErrNotFound)
}

// Recent knows no pipeline.
func (l localAWS) Recent(_ context.Context, pipelineName string) ([]pipeline.ExecutionSummary, error) {
	return nil, fmt.Errorf("local run: no CodePipeline knows %s: %w", pipelineName, pipeline.ErrNotFound)
}

func (l localAWS) Start(ctx context.Context, pipelineName, commitID, token string) (string, error) {
	l.log.InfoContext(ctx, "local run: StartPipelineExecution not called", "pipeline", pipelineName,
		"clientRequestToken", token, "commitId", commitID)
	return "local-" + token, nil
}
