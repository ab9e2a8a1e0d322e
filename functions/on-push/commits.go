package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
)

// commits adapts the CodeCommit client to pushstart.CommitGetter, which does not name the SDK's
// types so that the functions that do not look commits up do not link the CodeCommit client.
type commits struct{ client *codecommit.Client }

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
	return info, nil
}

// localAWS stands in for CodeCommit and CodePipeline under LP_STORE=memory: it logs what the
// function would ask and answers without AWS.
type localAWS struct{ log *slog.Logger }

func (l localAWS) GetCommit(ctx context.Context, repository, commitID string) (pushstart.CommitInfo, error) {
	l.log.InfoContext(ctx, "local run: GetCommit not called", "repository", repository, "commitId", commitID)
	return pushstart.CommitInfo{}, nil
}

func (l localAWS) Start(ctx context.Context, pipelineName, commitID, token string) (string, error) {
	l.log.InfoContext(ctx, "local run: StartPipelineExecution not called", "pipeline", pipelineName,
		"clientRequestToken", token, "commitId", commitID)
	return "local-" + token, nil
}
