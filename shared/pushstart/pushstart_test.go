package pushstart_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/smithy-go"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/dynalitetest"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
	"github.com/lambda-pipeline/lambda-pipeline/shared/testing/harness"
)

// One dynalite for the whole test binary; each test uses its own table.
func TestMain(m *testing.M) { os.Exit(dynalitetest.Main(m)) }

var (
	_ pushstart.PushStore        = (*runstore.Memory)(nil)
	_ pushstart.PushStore        = (*runstore.Dynamo)(nil)
	_ pushstart.ExecutionStarter = codepipelineapi.Starter{}
)

const (
	pipelineName = "my-lambda-pipeline"
	repository   = "my-lambda"
	// The commit of events/push-main.json and events/push-main-created.json.
	mainCommit = "b7e6f4c2a1d0e9f8c7b6a5d4e3f2a1b0c9d8e7f6"
	mainEvent  = "8d6f3c1a-2b4e-4f70-9c1d-5e7a8b9c0d11"
)

// pushTestStore is a push store whose runs can be read back.
type pushTestStore interface {
	pushstart.PushStore
	pipeline.RunStore
	GetPush(ctx context.Context, repository, commitID string) (pipeline.PushClaim, []pipeline.PushSkip, error)
}

// sdkCommits adapts the SDK's CodeCommit client, as functions/on-push does.
type sdkCommits struct{ c *codecommit.Client }

func (s sdkCommits) GetCommit(ctx context.Context, repo, id string) (pushstart.CommitInfo, error) {
	out, err := s.c.GetCommit(ctx, &codecommit.GetCommitInput{RepositoryName: aws.String(repo), CommitId: aws.String(id)})
	if err != nil {
		return pushstart.CommitInfo{}, err
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

type pushEnv struct {
	h     *pushstart.Pushes
	cp    *awsfake.CodePipeline
	cc    *awsfake.CodeCommit
	store pushTestStore
	clock *harness.Clock
	logs  *harness.LogBuffer
}

var pushedAt = time.Date(2026, 11, 20, 10, 15, 3, 0, time.UTC)

func newPushEnv(t *testing.T, store pushTestStore, cpOpts ...func(*codepipeline.Options)) *pushEnv {
	t.Helper()
	e := &pushEnv{cp: awsfake.NewCodePipeline(t, pipelineName), cc: awsfake.NewCodeCommit(t, repository), store: store,
		clock: harness.NewClock(pushedAt.Add(2 * time.Second)), logs: &harness.LogBuffer{}}
	e.h = &pushstart.Pushes{
		Commits:   sdkCommits{e.cc.Client(t)},
		Pipelines: codepipelineapi.Starter{API: e.cp.Client(t, cpOpts...)},
		Store:     store,
		Log:       slog.New(slog.NewJSONHandler(e.logs, nil)),
		Clock:     e.clock,

		PipelineName: pipelineName, RepositoryName: repository, Branch: "main",
	}
	return e
}

// eachPushStore runs f with the memory store and with the DynamoDB store over dynalite.
func eachPushStore(t *testing.T, f func(t *testing.T, newStore func() pushTestStore)) {
	t.Run("memory", func(t *testing.T) { f(t, func() pushTestStore { return runstore.NewMemory() }) })
	t.Run("dynamo", func(t *testing.T) {
		f(t, func() pushTestStore {
			db := dynalitetest.Start(t).Client(t)
			return runstore.NewDynamo(db, dynalitetest.CreateTable(t, db, runstore.TableInput("")), pipeline.SystemClock{})
		})
	})
}

func readEvent(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushEvent builds a CodeCommit event.
func pushEvent(t *testing.T, id, kind, refType, ref, commit string) json.RawMessage {
	t.Helper()
	detail := map[string]string{"event": kind, "repositoryName": repository, "repositoryId": "6c1e2a9f-3b7d-4e08-a2c5-91d4f7e3b0a6",
		"referenceType": refType, "referenceName": ref, "referenceFullName": "refs/heads/" + ref}
	if commit != "" {
		detail["commitId"] = commit
	}
	b, err := json.Marshal(map[string]any{"version": "0", "id": id, "detail-type": "CodeCommit Repository State Change",
		"source": "aws.codecommit", "account": "123456789012", "time": pushedAt.Format(time.RFC3339), "region": "eu-west-1",
		"resources": []string{"arn:aws:codecommit:eu-west-1:123456789012:" + repository}, "detail": detail})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *pushEnv) handle(t *testing.T, raw json.RawMessage) lambdaio.Response {
	t.Helper()
	resp, err := e.h.Handle(context.Background(), raw)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return resp
}

func (e *pushEnv) addMainCommit(message string) {
	e.cc.AddCommit(repository, awsfake.Commit{ID: mainCommit, Message: message, AuthorName: "Ana Lima", AuthorEmail: "ana@example.com",
		AuthorDate: pushedAt.Add(-time.Minute), CommitterDate: pushedAt.Add(-30 * time.Second)})
}

func TestPushStartsOneRunPinnedToTheCommit(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		e.addMainCommit("Retry with backoff\n\nCloses #12")

		first := e.handle(t, readEvent(t, "push-main.json"))
		if first.Outcome != lambdaio.OutcomeRecorded || first.ExecutionID == "" || first.Pipeline != pipelineName {
			t.Fatalf("first delivery = %+v, want recorded with an execution id", first)
		}
		// The same event again, then the branch created again on the same commit (another
		// event id): nothing more starts.
		for _, name := range []string{"push-main.json", "push-main-created.json"} {
			again := e.handle(t, readEvent(t, name))
			if again.Outcome != lambdaio.OutcomeIgnored || again.ExecutionID != first.ExecutionID {
				t.Errorf("%s after the start = %+v, want ignored with execution %s", name, again, first.ExecutionID)
			}
		}

		starts := e.cp.Starts()
		if len(starts) != 1 || e.cp.Calls(awsfake.OpStartPipelineExecution) != 1 {
			t.Fatalf("StartPipelineExecution calls = %+v, want exactly one", starts)
		}
		s := starts[0]
		wantRev := awsfake.SourceRevision{ActionName: "Source", RevisionType: "COMMIT_ID", RevisionValue: mainCommit}
		if s.Pipeline != pipelineName || len(s.SourceRevisions) != 1 || s.SourceRevisions[0] != wantRev {
			t.Errorf("start = %+v, want %s pinned to %+v", s, pipelineName, wantRev)
		}
		if s.ClientRequestToken != pushstart.RequestToken(mainEvent) {
			t.Errorf("token = %q, want the one derived from the event id, %q", s.ClientRequestToken, pushstart.RequestToken(mainEvent))
		}
		if n := e.cc.Calls(awsfake.OpGetCommit); n != 1 {
			t.Errorf("GetCommit calls = %d, want 1 (duplicates stop at the claim)", n)
		}

		run, err := pipeline.LoadRun(context.Background(), e.store, pipeline.Key{Pipeline: pipelineName, ExecutionID: first.ExecutionID})
		if err != nil {
			t.Fatal(err)
		}
		// The lead time starts at the committer date (a rebase moves it past the author date).
		want := pipeline.Commit{ID: mainCommit, Message: "Retry with backoff\n\nCloses #12", Author: "Ana Lima <ana@example.com>", PushedAt: pushedAt,
			CommittedAt: pushedAt.Add(-30 * time.Second).Truncate(time.Second),
			URL:         "https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/my-lambda/commit/" + mainCommit + "?region=eu-west-1"}
		if !run.Commit.PushedAt.Equal(want.PushedAt) {
			t.Errorf("pushed at = %v, want %v", run.Commit.PushedAt, want.PushedAt)
		}
		if !run.Commit.CommittedAt.Equal(want.CommittedAt) {
			t.Errorf("committed at = %v, want %v", run.Commit.CommittedAt, want.CommittedAt)
		}
		run.Commit.PushedAt, run.Commit.CommittedAt = want.PushedAt, want.CommittedAt
		if run.Commit != want {
			t.Errorf("recorded commit = %+v\nwant %+v", run.Commit, want)
		}
		claim, _, err := e.store.GetPush(context.Background(), repository, mainCommit)
		if err != nil || claim.State != pipeline.PushStarted || claim.ExecutionID != first.ExecutionID {
			t.Errorf("claim = %+v, %v; want STARTED with %s", claim, err, first.ExecutionID)
		}
	})
}

func TestPushConcurrentDeliveriesStartOnce(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		e.addMainCommit("Retry with backoff")
		raw := readEvent(t, "push-main.json")

		const deliveries = 8
		var wg sync.WaitGroup
		resps := make([]lambdaio.Response, deliveries)
		errs := make([]error, deliveries)
		for i := range deliveries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resps[i], errs[i] = e.h.Handle(context.Background(), raw)
			}()
		}
		wg.Wait()

		recorded := 0
		for i := range deliveries {
			if errs[i] != nil {
				t.Errorf("delivery %d: %v", i, errs[i])
			}
			switch resps[i].Outcome {
			case lambdaio.OutcomeRecorded:
				recorded++
			case lambdaio.OutcomeIgnored:
			default:
				t.Errorf("delivery %d = %+v", i, resps[i])
			}
		}
		if recorded != 1 {
			t.Errorf("%d deliveries started the run, want 1", recorded)
		}
		if n := e.cp.Calls(awsfake.OpStartPipelineExecution); n != 1 {
			t.Errorf("StartPipelineExecution calls = %d, want 1", n)
		}
	})
}

func TestPushSkipCI(t *testing.T) {
	for _, message := range []string{"Update docs [skip ci]", "[CI SKIP] typo", "Refactor\n\nNo build needed: [Skip Ci]"} {
		t.Run(message, func(t *testing.T) {
			e := newPushEnv(t, runstore.NewMemory())
			e.addMainCommit(message)
			for range 2 {
				resp := e.handle(t, readEvent(t, "push-main.json"))
				if resp.Outcome != lambdaio.OutcomeSkipped || !strings.Contains(strings.ToLower(resp.Reason), "skip") {
					t.Errorf("response = %+v, want skipped", resp)
				}
			}
			if n := e.cp.Calls(awsfake.OpStartPipelineExecution); n != 0 {
				t.Errorf("StartPipelineExecution calls = %d, want 0", n)
			}
			if n := e.cc.Calls(awsfake.OpGetCommit); n != 1 {
				t.Errorf("GetCommit calls = %d, want 1 (the skip is recorded in the claim)", n)
			}
			claim, _, _ := e.store.GetPush(context.Background(), repository, mainCommit)
			if claim.State != pipeline.PushSkipped {
				t.Errorf("claim = %+v, want SKIPPED", claim)
			}
		})
	}
	t.Run("without brackets it runs", func(t *testing.T) {
		e := newPushEnv(t, runstore.NewMemory())
		e.addMainCommit("Do not skip ci checks any more")
		if resp := e.handle(t, readEvent(t, "push-main.json")); resp.Outcome != lambdaio.OutcomeRecorded {
			t.Errorf("response = %+v, want recorded", resp)
		}
	})
}

func TestPushOtherReferencesAreSkippedAndRecorded(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		e.addMainCommit("m")
		otherRepo := pushEvent(t, "11111111-0000-4000-8000-000000000001", pipeline.PushReferenceUpdated, "branch", "main", mainCommit)
		otherRepo = json.RawMessage(strings.ReplaceAll(string(otherRepo), `"repositoryName":"my-lambda"`, `"repositoryName":"someone-else"`))
		cases := []struct {
			name   string
			raw    json.RawMessage
			commit string
			reason string
		}{
			{"other branch", readEvent(t, "push-other-branch.json"), "", "is not the tracked branch main"},
			{"tag", readEvent(t, "push-tag.json"), mainCommit, "tag v1.4.0 is not a branch"},
			{"deleted branch", readEvent(t, "branch-deleted.json"), "c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3", "is not the tracked branch main"},
			{"deleted main", pushEvent(t, "11111111-0000-4000-8000-000000000002", pipeline.PushReferenceDeleted, "branch", "main", ""), "", "branch main was deleted"},
			{"other repository", otherRepo, "", "repository someone-else is not the tracked repository my-lambda"},
		}
		for _, c := range cases {
			resp := e.handle(t, c.raw)
			if resp.Outcome != lambdaio.OutcomeSkipped || !strings.Contains(resp.Reason, c.reason) {
				t.Errorf("%s: response = %+v, want skipped: %q", c.name, resp, c.reason)
			}
			if c.commit == "" {
				continue
			}
			_, skips, err := e.store.GetPush(context.Background(), repository, c.commit)
			if err != nil || len(skips) == 0 || !strings.Contains(skips[len(skips)-1].Reason, c.reason) {
				t.Errorf("%s: recorded skips = %+v, %v", c.name, skips, err)
			}
		}
		if n := e.cp.Calls(awsfake.OpStartPipelineExecution); n != 0 {
			t.Errorf("StartPipelineExecution calls = %d, want 0", n)
		}
		if n := e.cc.Calls(awsfake.OpGetCommit); n != 0 {
			t.Errorf("GetCommit calls = %d, want 0", n)
		}
	})
}

func TestPushStartsEvenWhenTheCommitLookupFails(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		// The commit is unknown to the fake: GetCommit answers CommitIdDoesNotExistException.
		resp := e.handle(t, readEvent(t, "push-main.json"))
		if resp.Outcome != lambdaio.OutcomeRecorded || resp.ExecutionID == "" {
			t.Fatalf("response = %+v, want the run started", resp)
		}
		if n := len(e.cp.Started()); n != 1 {
			t.Errorf("%d executions started, want 1", n)
		}
		run, err := pipeline.LoadRun(context.Background(), e.store, pipeline.Key{Pipeline: pipelineName, ExecutionID: resp.ExecutionID})
		if err != nil || run.Commit.ID != mainCommit || run.Commit.Author != "" {
			t.Errorf("recorded commit = %+v, %v; want the id without author", run.Commit, err)
		}
		if warn := e.logs.Lines("commit look-up failed; starting the run without author and message"); len(warn) != 1 ||
			!strings.Contains(warn[0]["error"].(string), "CommitIdDoesNotExistException") {
			t.Errorf("warnings = %v", warn)
		}
	})
}

func TestPushThrottledStartIsRetried(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore(), func(o *codepipeline.Options) { o.RetryMaxAttempts = 3 })
		e.addMainCommit("m")
		e.cp.FailNext(awsfake.OpStartPipelineExecution, awsfake.Throttling, 3)
		raw := readEvent(t, "push-main.json")

		_, err := e.h.Handle(context.Background(), raw)
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
			t.Fatalf("Handle = %v, want the ThrottlingException returned for Lambda to retry", err)
		}
		if len(e.cp.Started()) != 0 {
			t.Fatalf("a throttled start started a run")
		}
		// Lambda's retry, right away: the claim was released.
		resp := e.handle(t, raw)
		if resp.Outcome != lambdaio.OutcomeRecorded {
			t.Fatalf("retry = %+v, want the run started", resp)
		}
		if n := len(e.cp.Started()); n != 1 {
			t.Errorf("%d executions started, want 1", n)
		}
		if resp := e.handle(t, raw); resp.Outcome != lambdaio.OutcomeIgnored || resp.ExecutionID != e.cp.Started()[0].ID {
			t.Errorf("third delivery = %+v, want ignored", resp)
		}
	})
}

// A delivery that crashed between claiming and starting holds the claim until its lease ends;
// then its retry starts the run, with the token the crashed delivery would have used.
func TestPushRetakesACrashedClaimAfterTheLease(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		e.addMainCommit("m")
		raw := readEvent(t, "push-main.json")
		p := pipeline.Push{ID: mainEvent, Repository: repository, CommitID: mainCommit, RefType: "branch", RefName: "main"}
		crashedAt := e.clock.Now()
		if c, err := e.store.ClaimPush(context.Background(), p, pushstart.RequestToken(mainEvent), crashedAt, pushstart.DefaultPushLease); err != nil || !c.Held {
			t.Fatalf("claim = %+v, %v", c, err)
		}

		e.clock.Set(crashedAt.Add(pushstart.DefaultPushLease - time.Second))
		if resp := e.handle(t, raw); resp.Outcome != lambdaio.OutcomeIgnored || e.cp.Calls(awsfake.OpStartPipelineExecution) != 0 {
			t.Fatalf("under the lease: %+v", resp)
		}
		e.clock.Set(crashedAt.Add(pushstart.DefaultPushLease + time.Second))
		if resp := e.handle(t, raw); resp.Outcome != lambdaio.OutcomeRecorded {
			t.Fatalf("after the lease: %+v, want the run started", resp)
		}
		if starts := e.cp.Starts(); len(starts) != 1 || starts[0].ClientRequestToken != pushstart.RequestToken(mainEvent) {
			t.Errorf("starts = %+v", starts)
		}
	})
}

func TestPushRejectsWhatIsNotAPush(t *testing.T) {
	e := newPushEnv(t, runstore.NewMemory())
	for _, raw := range []json.RawMessage{json.RawMessage(`{"not":"an event"`), readEvent(t, "pipeline-failed.json")} {
		resp, err := e.h.Handle(context.Background(), raw)
		if err != nil || resp.Outcome != lambdaio.OutcomeRejected {
			t.Errorf("Handle(%.40s) = %+v, %v; want rejected, nil", raw, resp, err)
		}
	}
	if n := len(e.logs.Lines("event rejected")); n != 2 {
		t.Errorf("%d rejections logged, want one per event", n)
	}
}

func TestRequestToken(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)
	ids := []string{mainEvent, "", "id with spaces/and#symbols", strings.Repeat("x", 500), "8d6f3c1a-2b4e-4f70-9c1d-5e7a8b9c0d12"}
	seen := map[string]string{}
	for _, id := range ids {
		tok := pushstart.RequestToken(id)
		if !valid.MatchString(tok) {
			t.Errorf("RequestToken(%q) = %q, not a valid clientRequestToken", id, tok)
		}
		if tok != pushstart.RequestToken(id) {
			t.Errorf("RequestToken(%q) is not deterministic", id)
		}
		if other, dup := seen[tok]; dup {
			t.Errorf("ids %q and %q share token %q", id, other, tok)
		}
		seen[tok] = id
	}
}

// Issue 9, defect 6: a push to a same-named repository of another account or region (its
// event forwarded to this bus) starts nothing here: the commit is not in the home's
// repository, and the home's pipeline is not that repository's.
func TestPushOfAnotherAccountStartsNothing(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		e.addMainCommit("Retry with backoff")
		e.h.Home = pipeline.Home{Account: "999999999999", Region: "eu-west-1"}
		resp := e.handle(t, readEvent(t, "push-main.json"))
		if resp.Outcome != lambdaio.OutcomeSkipped || !strings.Contains(resp.Reason, "123456789012") {
			t.Errorf("push of another account = %+v, want skipped, naming the account", resp)
		}
		if n := e.cp.Calls(awsfake.OpStartPipelineExecution); n != 0 {
			t.Errorf("StartPipelineExecution calls = %d, want none", n)
		}
		// The home's own push starts its run.
		e.h.Home = pipeline.Home{Account: "123456789012", Region: "eu-west-1"}
		if resp := e.handle(t, readEvent(t, "push-main.json")); resp.Outcome != lambdaio.OutcomeRecorded {
			t.Errorf("push of the home = %+v, want recorded", resp)
		}
	})
}
