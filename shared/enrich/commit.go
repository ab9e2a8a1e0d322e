package enrich

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

var fullCommitID = regexp.MustCompile(`^[0-9a-f]{40}$`)

// sourceAction returns the run's CodeCommit source action, whose result carries the commit id
// (externalExecutionId) and its console link (externalExecutionUrl).
func sourceAction(run pipeline.Run) pipeline.Action {
	for _, name := range run.StageNames() {
		st := run.Stages[name]
		for _, an := range st.ActionNames() {
			if a := st.Actions[an]; a.Type.Category == "Source" || (a.Type.Category == "" && name == "Source") {
				return a
			}
		}
	}
	return pipeline.Action{}
}

// commit returns the run's commit with what the record lacks filled in: the id from the
// Source action, the console link, and the author and message from codecommit:GetCommit when
// the record has not got them (the push was not recorded, or the run was started by hand).
func (e *Enricher) commit(ctx context.Context, run pipeline.Run, ns *notes) pipeline.Commit {
	c := run.Commit
	src := sourceAction(run)
	if c.ID == "" && fullCommitID.MatchString(src.Result.ExternalID) {
		c.ID = src.Result.ExternalID
	}
	repo := e.RepositoryName
	if repo == "" {
		repo = console.RepositoryFromURL(src.Result.URL)
	}
	if repo == "" {
		repo = console.RepositoryFromURL(c.URL)
	}
	if c.URL == "" {
		c.URL = console.CommitURL(e.Region, repo, c.ID)
	}
	if (c.Author != "" && c.Message != "") || e.Commits == nil || c.ID == "" {
		return c
	}
	if repo == "" {
		ns.add(slotCommit, degraded("commit author and message", "repository name unknown", "codecommit:GetCommit"))
		return c
	}
	var out *codecommit.GetCommitOutput
	why := e.lookup(ctx, func(ctx context.Context) error {
		var err error
		out, err = e.Commits.GetCommit(ctx, &codecommit.GetCommitInput{RepositoryName: aws.String(repo), CommitId: aws.String(c.ID)})
		if err != nil {
			return fmt.Errorf("get commit %s of %s: %w", c.ID, repo, err)
		}
		return nil
	})
	if why != "" {
		ns.add(slotCommit, degraded("commit author and message", why, "codecommit:GetCommit"))
		return c
	}
	if out.Commit == nil {
		return c
	}
	if c.Message == "" {
		// Git ends a message with a newline; the notification shows it inline.
		c.Message = strings.TrimRight(aws.ToString(out.Commit.Message), "\r\n\t ")
	}
	if c.Author == "" && out.Commit.Author != nil {
		c.Author = pipeline.Author(aws.ToString(out.Commit.Author.Name), aws.ToString(out.Commit.Author.Email))
	}
	return c
}

// failure returns where attempt n.Attempt failed: from the record when it names the stage and
// the action, else from codepipeline:ListActionExecutions (the action events were lost or have
// not arrived yet). looked reports that the answer came from the API, for Details.Failure.
func (e *Enricher) failure(ctx context.Context, n pipeline.Notification, run pipeline.Run, ns *notes) (f pipeline.Failure, looked bool) {
	f = run.FailureAt(n.Attempt)
	if (f.Stage != "" && f.Action != "") || e.Executions == nil {
		return f, false
	}
	var actions []pipeline.ActionExecution
	why := e.lookup(ctx, func(ctx context.Context) error {
		var err error
		actions, err = e.Executions.Actions(ctx, pipeline.Key{Pipeline: n.Pipeline, ExecutionID: n.ExecutionID})
		return err
	})
	if why != "" {
		ns.add(slotFailure, degraded("failed action", why, "codepipeline:ListActionExecutions"))
		return f, false
	}
	found, ok := pipeline.ExecutionView{Actions: actions}.LatestFailure(f.Stage)
	if !ok {
		return f, false
	}
	return found.Failure(max(n.Attempt, f.Attempt)), true
}
