package enrich

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	cptypes "github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

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
		repo = repositoryFromURL(src.Result.URL)
	}
	if repo == "" {
		repo = repositoryFromURL(c.URL)
	}
	if c.URL == "" {
		c.URL = commitURL(e.Region, repo, c.ID)
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
		c.Author = author(aws.ToString(out.Commit.Author.Name), aws.ToString(out.Commit.Author.Email))
	}
	return c
}

// author formats a commit author the way the push handler records it: "Name <email>".
func author(name, email string) string {
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case email != "":
		return "<" + email + ">"
	}
	return name
}

// maxActionPages bounds ListActionExecutions: an execution has a few actions per attempt, so a
// longer listing is not worth the notification's delay.
const maxActionPages = 5

// failure returns where attempt n.Attempt failed: from the record when it names the stage and
// the action, else from codepipeline:ListActionExecutions (the action events were lost or have
// not arrived yet). looked reports that the answer came from the API, for Details.Failure.
func (e *Enricher) failure(ctx context.Context, n pipeline.Notification, run pipeline.Run, ns *notes) (f pipeline.Failure, looked bool) {
	f = run.FailureAt(n.Attempt)
	if (f.Stage != "" && f.Action != "") || e.Executions == nil {
		return f, false
	}
	var found *cptypes.ActionExecutionDetail
	why := e.lookup(ctx, func(ctx context.Context) error {
		p := codepipeline.NewListActionExecutionsPaginator(e.Executions, &codepipeline.ListActionExecutionsInput{
			PipelineName: aws.String(n.Pipeline),
			Filter:       &cptypes.ActionExecutionFilter{PipelineExecutionId: aws.String(n.ExecutionID)},
		})
		for page := 0; p.HasMorePages() && page < maxActionPages; page++ {
			out, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("list action executions of %s: %w", n.ExecutionID, err)
			}
			for i := range out.ActionExecutionDetails {
				a := &out.ActionExecutionDetails[i]
				if a.Status != cptypes.ActionExecutionStatusFailed || (f.Stage != "" && aws.ToString(a.StageName) != f.Stage) {
					continue
				}
				// The latest failure decides: a retried stage that failed again has two.
				if found == nil || aws.ToTime(a.LastUpdateTime).After(aws.ToTime(found.LastUpdateTime)) {
					found = a
				}
			}
		}
		return nil
	})
	if why != "" {
		ns.add(slotFailure, degraded("failed action", why, "codepipeline:ListActionExecutions"))
		return f, false
	}
	if found == nil {
		return f, false
	}
	return failureOf(*found, max(n.Attempt, f.Attempt)), true
}

// failureOf turns a failed action execution into a Failure. errorDetails.message is the
// reason the action gives, so it is the summary a person reads; the external summary is the
// fallback.
func failureOf(a cptypes.ActionExecutionDetail, attempt int) pipeline.Failure {
	f := pipeline.Failure{Stage: aws.ToString(a.StageName), Action: aws.ToString(a.ActionName), Attempt: attempt,
		At: aws.ToTime(a.LastUpdateTime)}
	if in := a.Input; in != nil && in.ActionTypeId != nil {
		t := in.ActionTypeId
		f.Type = pipeline.ActionType{Owner: string(t.Owner), Category: string(t.Category), Provider: aws.ToString(t.Provider), Version: aws.ToString(t.Version)}
	}
	if out := a.Output; out != nil {
		if r := out.ExecutionResult; r != nil {
			f.Result = pipeline.ExecutionResult{ExternalID: aws.ToString(r.ExternalExecutionId), Summary: aws.ToString(r.ExternalExecutionSummary),
				URL: aws.ToString(r.ExternalExecutionUrl)}
			if d := r.ErrorDetails; d != nil {
				f.Result.ErrorCode = aws.ToString(d.Code)
				if m := aws.ToString(d.Message); m != "" {
					f.Result.Summary = m
				}
			}
		}
		for _, art := range out.OutputArtifacts {
			pa := pipeline.Artifact{Name: aws.ToString(art.Name)}
			if loc := art.S3location; loc != nil {
				pa.Bucket, pa.Key = aws.ToString(loc.Bucket), aws.ToString(loc.Key)
			}
			f.Artifacts = append(f.Artifacts, pa)
		}
	}
	return f
}
