package awsfake_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codecommit/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const (
	repository = "my-lambda"
	commitID   = "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"
)

func getCommit(c *codecommit.Client, repo, id string) (*codecommit.GetCommitOutput, error) {
	return c.GetCommit(context.Background(), &codecommit.GetCommitInput{RepositoryName: aws.String(repo), CommitId: aws.String(id)})
}

func TestGetCommit(t *testing.T) {
	fake := awsfake.NewCodeCommit(t, repository)
	when := time.Date(2026, 11, 20, 10, 14, 0, 0, time.FixedZone("", -8*3600))
	fake.AddCommit(repository, awsfake.Commit{ID: commitID, Message: "Retry with backoff\n\nCloses #12", AuthorName: "Ana Lima",
		AuthorEmail: "ana@example.com", AuthorDate: when, Parents: []string{"a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0"}})
	c := fake.Client(t)

	out, err := getCommit(c, repository, commitID)
	if err != nil {
		t.Fatal(err)
	}
	cm := out.Commit
	if aws.ToString(cm.CommitId) != commitID || aws.ToString(cm.Message) != "Retry with backoff\n\nCloses #12" ||
		aws.ToString(cm.Author.Name) != "Ana Lima" || aws.ToString(cm.Author.Email) != "ana@example.com" ||
		len(cm.Parents) != 1 {
		t.Errorf("commit = %+v, author %+v", cm, cm.Author)
	}
	// CodeCommit gives git's date form, not an ISO time.
	if got, want := aws.ToString(cm.Author.Date), "1795198440 -0800"; got != want {
		t.Errorf("author date = %q, want %q", got, want)
	}
	if n := fake.Calls(awsfake.OpGetCommit); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
}

func TestGetCommitErrorsAreTyped(t *testing.T) {
	fake := awsfake.NewCodeCommit(t, repository)
	c := fake.Client(t)

	_, err := getCommit(c, repository, commitID)
	var noCommit *types.CommitIdDoesNotExistException
	if !errors.As(err, &noCommit) {
		t.Errorf("unknown commit: err = %v, want CommitIdDoesNotExistException", err)
	}
	_, err = getCommit(c, "other-repo", commitID)
	var noRepo *types.RepositoryDoesNotExistException
	if !errors.As(err, &noRepo) {
		t.Errorf("unknown repository: err = %v, want RepositoryDoesNotExistException", err)
	}
	_, err = getCommit(c, repository, "not-a-commit")
	var invalid *types.InvalidCommitIdException
	if !errors.As(err, &invalid) {
		t.Errorf("malformed commit id: err = %v, want InvalidCommitIdException", err)
	}

	fake.AddCommit(repository, awsfake.Commit{ID: commitID, Message: "m"})
	fake.FailNext(awsfake.OpGetCommit, awsfake.Throttling, 1)
	if _, err := getCommit(c, repository, commitID); err != nil {
		t.Errorf("one throttle should be retried by the SDK: %v", err)
	}
}

func TestGetBranch(t *testing.T) {
	fake := awsfake.NewCodeCommit(t, repository)
	c := fake.Client(t)
	get := func(repo, branch string) (*codecommit.GetBranchOutput, error) {
		return c.GetBranch(context.Background(), &codecommit.GetBranchInput{RepositoryName: aws.String(repo), BranchName: aws.String(branch)})
	}
	_, err := get(repository, "main")
	var noBranch *types.BranchDoesNotExistException
	if !errors.As(err, &noBranch) {
		t.Errorf("empty repository: err = %v, want BranchDoesNotExistException", err)
	}
	_, err = get("other-repo", "main")
	var noRepo *types.RepositoryDoesNotExistException
	if !errors.As(err, &noRepo) {
		t.Errorf("unknown repository: err = %v, want RepositoryDoesNotExistException", err)
	}
	fake.SetBranch(repository, "main", commitID)
	out, err := get(repository, "main")
	if err != nil || aws.ToString(out.Branch.CommitId) != commitID || aws.ToString(out.Branch.BranchName) != "main" {
		t.Errorf("GetBranch = %+v, %v", out, err)
	}
	if n := fake.Calls(awsfake.OpGetBranch); n != 3 {
		t.Errorf("calls = %d, want 3", n)
	}
}
