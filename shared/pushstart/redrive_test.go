package pushstart_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codecommit"
	cctypes "github.com/aws/aws-sdk-go-v2/service/codecommit/types"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline"
	"github.com/aws/aws-sdk-go-v2/service/codepipeline/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/codepipelineapi"
	"github.com/lambda-pipeline/lambda-pipeline/shared/lambdaio"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pushstart"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

var _ pushstart.ExecutionLister = codepipelineapi.Lister{}

// sdkBranches adapts the SDK's CodeCommit client to pushstart.BranchReader, as functions/on-push
// does.
type sdkBranches struct{ c *codecommit.Client }

func (s sdkBranches) Head(ctx context.Context, repo, branch string) (string, error) {
	out, err := s.c.GetBranch(ctx, &codecommit.GetBranchInput{RepositoryName: aws.String(repo), BranchName: aws.String(branch)})
	var noBranch *cctypes.BranchDoesNotExistException
	var noRepo *cctypes.RepositoryDoesNotExistException
	if errors.As(err, &noBranch) || errors.As(err, &noRepo) {
		return "", errors.Join(pipeline.ErrNotFound, err)
	}
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Branch.CommitId), nil
}

// newRedrive wires a re-drive over the env's fakes and store, with one SDK attempt per call so
// that the injected failures reach the handler.
func (e *pushEnv) newRedrive(t *testing.T) *pushstart.Redrive {
	t.Helper()
	return &pushstart.Redrive{Pushes: e.h, Branches: sdkBranches{e.cc.Client(t)},
		Executions: codepipelineapi.Lister{API: e.cp.Client(t)}, Region: "eu-west-1"}
}

func (e *pushEnv) pass(t *testing.T, r *pushstart.Redrive) pushstart.RedriveReport {
	t.Helper()
	rep, err := r.Pass(context.Background())
	if err != nil {
		t.Fatalf("re-drive pass: %v", err)
	}
	return rep
}

// claimFails is a push store whose claims fail: on-push cannot even claim the commit.
type claimFails struct {
	pushTestStore
	on bool
}

func (s *claimFails) ClaimPush(ctx context.Context, p pipeline.Push, token string, now time.Time, lease time.Duration) (pipeline.PushClaim, error) {
	if s.on {
		return pipeline.PushClaim{}, errors.New("ProvisionedThroughputExceededException: injected")
	}
	return s.pushTestStore.ClaimPush(ctx, p, token, now, lease)
}

// A push whose every on-push invocation fails (the first delivery and Lambda's two retries) is
// lost without the re-drive: nothing else tells of it. The next re-drive pass starts the head
// exactly once, later passes start nothing more, and the on-push retry that arrives late —
// hours later, past RerunAfter — starts nothing either (issue 9, defect 12).
func TestRedriveStartsAPushWhoseEveryInvocationFailed(t *testing.T) {
	cases := []struct {
		name string
		fail func(e *pushEnv, s *claimFails)
		// token is the clientRequestToken the run must start with.
		token string
	}{
		{
			// StartPipelineExecution throttled every time: on-push claimed the commit, then
			// released the claim; the re-drive takes it with the token on-push fixed.
			name: "start throttled",
			fail: func(e *pushEnv, _ *claimFails) {
				e.cp.FailNext(awsfake.OpStartPipelineExecution, awsfake.Throttling, 3)
			},
			token: pushstart.RequestToken(mainEvent),
		},
		{
			// The table refused every claim: no claim exists; the re-drive's token derives
			// from the commit.
			name:  "claim refused",
			fail:  func(_ *pushEnv, s *claimFails) { s.on = true },
			token: pushstart.RequestToken(pipeline.RedrivePrefix + mainCommit),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
				store := &claimFails{pushTestStore: newStore()}
				e := newPushEnv(t, store, func(o *codepipeline.Options) { o.RetryMaxAttempts = 1 })
				e.addMainCommit("Retry with backoff")
				e.cc.SetBranch(repository, "main", mainCommit)
				r := e.newRedrive(t)
				raw := readEvent(t, "push-main.json")

				c.fail(e, store)
				for attempt := range 3 {
					if _, err := e.h.Handle(context.Background(), raw); err == nil {
						t.Fatalf("on-push attempt %d succeeded; the test needs every one to fail", attempt+1)
					}
				}
				store.on = false
				if n := len(e.cp.Started()); n != 0 {
					t.Fatalf("%d runs started by failing invocations", n)
				}

				e.clock.Set(e.clock.Now().Add(10 * time.Minute)) // the next pass
				rep := e.pass(t, r)
				if len(rep.Started) != 1 || rep.Outcomes[pushstart.HeadStarted] != 1 {
					t.Fatalf("pass = %+v, want the head started", rep)
				}
				starts := e.cp.Starts()
				if len(starts) != 1 || starts[0].ClientRequestToken != c.token || starts[0].SourceRevisions[0].RevisionValue != mainCommit {
					t.Fatalf("starts = %+v, want one, pinned to %s, token %s", starts, mainCommit, c.token)
				}
				execID := starts[0].ExecutionID
				run, err := pipeline.LoadRun(context.Background(), e.store, pipeline.Key{Pipeline: pipelineName, ExecutionID: execID})
				if err != nil || run.Commit.ID != mainCommit || run.Commit.Message != "Retry with backoff" || run.Commit.Author != "Ana Lima <ana@example.com>" {
					t.Errorf("recorded commit = %+v, %v", run.Commit, err)
				}
				if len(e.logs.Lines("push re-driven: no run had started for the head of the tracked branch")) != 1 {
					t.Error("the re-driven push was not logged as a warning")
				}

				// Later passes: the execution runs the head.
				e.clock.Set(e.clock.Now().Add(10 * time.Minute))
				if rep := e.pass(t, r); len(rep.Started) != 0 || rep.Outcomes[pushstart.HeadRunning] != 1 {
					t.Errorf("second pass = %+v, want the head found running", rep)
				}
				// The on-push retry arrives six hours late (Lambda retries throttled
				// invocations for up to six hours): the commit's run exists.
				e.clock.Set(pushedAt.Add(6 * time.Hour))
				resp, err := e.h.Handle(context.Background(), raw)
				if err != nil || resp.Outcome != lambdaio.OutcomeIgnored || resp.ExecutionID != execID {
					t.Errorf("late retry = %+v, %v; want ignored, execution %s", resp, err, execID)
				}
				if n := e.cp.Calls(awsfake.OpStartPipelineExecution); n != 1+countFailed(c.name) {
					t.Errorf("StartPipelineExecution calls = %d, want no call after the re-drive's", n)
				}
				if n := len(e.cp.Started()); n != 1 {
					t.Errorf("%d runs started, want exactly 1", n)
				}
			})
		})
	}
}

// countFailed is how many StartPipelineExecution calls a case's failing invocations made.
func countFailed(name string) int {
	if name == "start throttled" {
		return 3
	}
	return 0
}

// A pass that finds the head started, skipped, being started, or run by an execution starts
// nothing; neither does one for a branch or pipeline that does not exist yet.
func TestRedriveLeavesAloneWhatAPushStarted(t *testing.T) {
	eachPushStore(t, func(t *testing.T, newStore func() pushTestStore) {
		e := newPushEnv(t, newStore())
		e.addMainCommit("m")
		r := e.newRedrive(t)

		// No branch yet (an empty repository).
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadNoBranch] != 1 {
			t.Errorf("empty repository: %+v", rep)
		}
		// The push started the run: the execution runs the head.
		e.cc.SetBranch(repository, "main", mainCommit)
		if resp := e.handle(t, readEvent(t, "push-main.json")); resp.Outcome != lambdaio.OutcomeRecorded {
			t.Fatalf("push = %+v", resp)
		}
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadRunning] != 1 || len(rep.Started) != 0 {
			t.Errorf("pushed head: %+v", rep)
		}
		if n := e.cp.Calls(awsfake.OpStartPipelineExecution); n != 1 {
			t.Errorf("StartPipelineExecution calls = %d, want the push's only", n)
		}
	})
}

func TestRedriveWaitsAndSkips(t *testing.T) {
	ctx := context.Background()
	other := strings.Repeat("c", 40)
	t.Run("the pipeline does not exist yet", func(t *testing.T) {
		e := newPushEnv(t, runstore.NewMemory())
		e.cc.SetBranch(repository, "main", mainCommit)
		r := e.newRedrive(t)
		e.h.PipelineName = "not-created-pipeline"
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadNoPipeline] != 1 {
			t.Errorf("pass = %+v", rep)
		}
	})
	t.Run("an execution has not resolved its revisions", func(t *testing.T) {
		e := newPushEnv(t, runstore.NewMemory())
		e.cc.SetBranch(repository, "main", mainCommit)
		// The run CodePipeline starts when it creates the pipeline, still in Source.
		e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: "5e7c0000-0000-4000-8000-00000000aaaa", TriggerType: types.TriggerTypeCreatePipeline})
		r := e.newRedrive(t)
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadUnresolved] != 1 || len(e.cp.Starts()) != 0 {
			t.Errorf("pass = %+v", rep)
		}
		// It resolved the head: nothing to start.
		e.cp.SetExecution(awsfake.Execution{Pipeline: pipelineName, ID: "5e7c0000-0000-4000-8000-00000000aaaa", TriggerType: types.TriggerTypeCreatePipeline,
			SourceRevisions: []awsfake.SourceRevision{{ActionName: "Source", RevisionType: "COMMIT_ID", RevisionValue: mainCommit}}})
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadRunning] != 1 || len(e.cp.Starts()) != 0 {
			t.Errorf("pass = %+v", rep)
		}
		// A finished execution of another commit with no revisions does not hold it back.
		e.cc.SetBranch(repository, "main", other)
		e.cp.SetStatus("5e7c0000-0000-4000-8000-00000000aaaa", types.PipelineExecutionStatusFailed)
		if rep := e.pass(t, r); len(rep.Started) != 1 {
			t.Errorf("pass = %+v, want the new head started", rep)
		}
	})
	t.Run("skip ci", func(t *testing.T) {
		e := newPushEnv(t, runstore.NewMemory())
		e.addMainCommit("Docs only [skip ci]")
		e.cc.SetBranch(repository, "main", mainCommit)
		r := e.newRedrive(t)
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadSkipped] != 1 {
			t.Errorf("first pass = %+v", rep)
		}
		// Later passes, even past RerunAfter, find the claim settled: no look-up, no start.
		e.clock.Set(e.clock.Now().Add(time.Hour))
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadClaimed] != 1 {
			t.Errorf("second pass = %+v", rep)
		}
		if n, m := e.cp.Calls(awsfake.OpStartPipelineExecution), e.cc.Calls(awsfake.OpGetCommit); n != 0 || m != 1 {
			t.Errorf("StartPipelineExecution calls = %d, GetCommit calls = %d; want 0 and 1", n, m)
		}
		if resp := e.handle(t, readEvent(t, "push-main.json")); resp.Outcome != lambdaio.OutcomeSkipped {
			t.Errorf("the push, late = %+v, want skipped", resp)
		}
	})
	t.Run("an on-push delivery holds the claim", func(t *testing.T) {
		e := newPushEnv(t, runstore.NewMemory())
		e.cc.SetBranch(repository, "main", mainCommit)
		p := pipeline.Push{ID: mainEvent, Repository: repository, CommitID: mainCommit, RefType: "branch", RefName: "main", Time: pushedAt}
		if c, err := e.store.ClaimPush(ctx, p, pushstart.RequestToken(mainEvent), e.clock.Now(), pushstart.DefaultPushLease); err != nil || !c.Held {
			t.Fatalf("claim = %+v, %v", c, err)
		}
		r := e.newRedrive(t)
		if rep := e.pass(t, r); rep.Outcomes[pushstart.HeadClaimed] != 1 || len(e.cp.Starts()) != 0 {
			t.Errorf("under the lease: %+v", rep)
		}
		// The holder crashed: after its lease the re-drive starts the run with its token.
		e.clock.Set(e.clock.Now().Add(pushstart.DefaultPushLease + time.Second))
		if rep := e.pass(t, r); len(rep.Started) != 1 {
			t.Errorf("after the lease: %+v", rep)
		}
		if s := e.cp.Starts(); len(s) != 1 || s[0].ClientRequestToken != pushstart.RequestToken(mainEvent) {
			t.Errorf("starts = %+v", s)
		}
	})
}

// Routed by project, the re-drive walks every declared project's tracked branch.
func TestRedriveWalksEveryDeclaredProject(t *testing.T) {
	ctx := context.Background()
	e := newPushEnv(t, runstore.NewMemory())
	e.cp.AddPipeline("api-pipeline")
	e.cp.AddPipeline("web-pipeline")
	e.cc = awsfake.NewCodeCommit(t, "api", "web")
	e.h.Commits = sdkCommits{e.cc.Client(t)}
	param, _ := pipeline.ParseProjects("api")
	table := runstore.NewProjectsMemory()
	if err := table.Declare(ctx, pipeline.Project{Name: "web", Branch: "release"}, true, pushedAt); err != nil {
		t.Fatal(err)
	}
	e.h.Projects = &projects.Lookup{Parameter: param, Store: table}
	e.h.PipelineName, e.h.RepositoryName, e.h.Branch = "", "", ""
	apiHead, webHead := strings.Repeat("a", 40), strings.Repeat("b", 40)
	e.cc.SetBranch("api", "main", apiHead)
	e.cc.SetBranch("web", "main", strings.Repeat("c", 40)) // not web's tracked branch
	e.cc.SetBranch("web", "release", webHead)

	r := e.newRedrive(t)
	r.Projects = projects.Declared{Parameter: param, Store: table}
	rep := e.pass(t, r)
	if rep.Branches != 2 || len(rep.Started) != 2 {
		t.Fatalf("pass = %+v, want both projects' heads started", rep)
	}
	got := map[string]string{}
	for _, s := range e.cp.Starts() {
		got[s.Pipeline] = s.SourceRevisions[0].RevisionValue
	}
	if got["api-pipeline"] != apiHead || got["web-pipeline"] != webHead {
		t.Errorf("started %v", got)
	}
	r.Projects = nil
	if _, err := r.Pass(ctx); err == nil {
		t.Error("a re-drive routed by project without a project list passed")
	}
}
