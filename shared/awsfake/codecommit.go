package awsfake

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/codecommit"
)

// The CodeCommit operations the fake answers.
const (
	OpGetCommit = "GetCommit"
	OpGetBranch = "GetBranch"
)

// CodeCommit is a stateful fake of the CodeCommit API (JSON 1.1, target prefix
// CodeCommit_20150413): GetCommit and GetBranch over scripted repositories, commits and
// branches. It is safe for concurrent use.
type CodeCommit struct {
	*endpoint

	mu       sync.Mutex
	repos    map[string]map[string]Commit
	branches map[string]map[string]string // repository → branch → head commit
}

// Commit is a scripted commit.
type Commit struct {
	ID          string
	Message     string
	AuthorName  string
	AuthorEmail string
	AuthorDate  time.Time
	// CommitterDate is when the commit was made (a rebase or an amend moves it past the
	// author date); zero: the author date.
	CommitterDate time.Time
	Parents       []string
	TreeID        string
}

// NewCodeCommit starts a fake that knows the given (empty) repositories; the test's Cleanup
// stops it.
func NewCodeCommit(tb testing.TB, repositories ...string) *CodeCommit {
	tb.Helper()
	f := &CodeCommit{repos: map[string]map[string]Commit{}, branches: map[string]map[string]string{}}
	for _, r := range repositories {
		f.repos[r] = map[string]Commit{}
	}
	f.endpoint = newEndpoint(tb, "CodeCommit_20150413", map[string]op{OpGetCommit: f.getCommit, OpGetBranch: f.getBranch})
	return f
}

// Client returns an SDK client for the fake (see Config); optFns apply last.
func (f *CodeCommit) Client(tb testing.TB, optFns ...func(*codecommit.Options)) *codecommit.Client {
	tb.Helper()
	return codecommit.NewFromConfig(f.Config(), optFns...)
}

// AddCommit scripts a commit of a repository (the repository becomes known).
func (f *CodeCommit) AddCommit(repository string, c Commit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.repos[repository] == nil {
		f.repos[repository] = map[string]Commit{}
	}
	f.repos[repository][c.ID] = c
}

// SetBranch points a branch of a repository at a commit, as a push does (the repository
// becomes known; the commit need not be scripted).
func (f *CodeCommit) SetBranch(repository, branch, commitID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.repos[repository] == nil {
		f.repos[repository] = map[string]Commit{}
	}
	if f.branches[repository] == nil {
		f.branches[repository] = map[string]string{}
	}
	f.branches[repository][branch] = commitID
}

var (
	repositoryNamePattern = regexp.MustCompile(`^[\w.-]{1,100}$`)
	commitIDPattern       = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

type wireUser struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	// Date is git's "<epoch seconds> <±hhmm>", e.g. "1484167798 -0800", not an ISO time.
	Date string `json:"date"`
}

func gitDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d %s", t.Unix(), t.Format("-0700"))
}

// repositoryNameError is CodeCommit's refusal of a missing or malformed repository name, nil
// for a valid one.
func repositoryNameError(name string) *Error {
	switch {
	case name == "":
		return clientError("RepositoryNameRequiredException", "A repository name is required, but was not specified.")
	case !repositoryNamePattern.MatchString(name) || strings.HasSuffix(name, ".git"):
		return clientError("InvalidRepositoryNameException", "The repository name is not valid: %s", name)
	}
	return nil
}

func (f *CodeCommit) getCommit(body []byte) (any, *Error) {
	var in struct {
		RepositoryName string `json:"repositoryName"`
		CommitID       string `json:"commitId"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := repositoryNameError(in.RepositoryName); err != nil {
		return nil, err
	}
	switch {
	case in.CommitID == "":
		return nil, clientError("CommitIdRequiredException", "A commit ID is required, but was not specified.")
	case !commitIDPattern.MatchString(in.CommitID):
		return nil, clientError("InvalidCommitIdException", "The specified commit ID is not valid: %s", in.CommitID)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	repo, ok := f.repos[in.RepositoryName]
	if !ok {
		return nil, clientError("RepositoryDoesNotExistException", "%s does not exist", in.RepositoryName)
	}
	c, ok := repo[in.CommitID]
	if !ok {
		return nil, clientError("CommitIdDoesNotExistException", "Could not find commit %s", in.CommitID)
	}
	user := wireUser{Name: c.AuthorName, Email: c.AuthorEmail, Date: gitDate(c.AuthorDate)}
	committer := user
	if !c.CommitterDate.IsZero() {
		committer.Date = gitDate(c.CommitterDate)
	}
	parents := c.Parents
	if parents == nil {
		parents = []string{}
	}
	tree := c.TreeID
	if tree == "" {
		tree = strings.Repeat("0", 40)
	}
	return map[string]any{"commit": map[string]any{
		"commitId": c.ID, "treeId": tree, "parents": parents, "message": c.Message,
		"author": user, "committer": committer, "additionalData": "",
	}}, nil
}

// getBranch answers a branch's head commit. "GetBranch", AWS CodeCommit API Reference,
// https://docs.aws.amazon.com/codecommit/latest/APIReference/API_GetBranch.html
func (f *CodeCommit) getBranch(body []byte) (any, *Error) {
	var in struct {
		RepositoryName string `json:"repositoryName"`
		BranchName     string `json:"branchName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := repositoryNameError(in.RepositoryName); err != nil {
		return nil, err
	}
	switch {
	case in.BranchName == "":
		return nil, clientError("BranchNameRequiredException", "A branch name is required, but was not specified.")
	case len(in.BranchName) > 256:
		return nil, clientError("InvalidBranchNameException", "The specified reference name is not valid.")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.repos[in.RepositoryName]; !ok {
		return nil, clientError("RepositoryDoesNotExistException", "%s does not exist", in.RepositoryName)
	}
	head, ok := f.branches[in.RepositoryName][in.BranchName]
	if !ok {
		return nil, clientError("BranchDoesNotExistException", "Could not find branch %s", in.BranchName)
	}
	return map[string]any{"branch": map[string]string{"branchName": in.BranchName, "commitId": head}}, nil
}
