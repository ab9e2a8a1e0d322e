package pushstart_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/projects"
	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// repoPush is pushEvent for another repository.
func repoPush(t *testing.T, id, repo, branch, commit string) json.RawMessage {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(pushEvent(t, id, "referenceUpdated", "branch", branch, commit), &ev); err != nil {
		t.Fatal(err)
	}
	ev["detail"].(map[string]any)["repositoryName"] = repo
	ev["resources"] = []string{"arn:aws:codecommit:eu-west-1:123456789012:" + repo}
	b, _ := json.Marshal(ev)
	return b
}

// One on-push for every project: each repository's pushes start its own project's pipeline on
// its own branch; undeclared repositories and other branches start nothing; the same push
// twice starts one run.
func TestPushesAreRoutedByProject(t *testing.T) {
	ctx := context.Background()
	mem := runstore.NewMemory()
	e := newPushEnv(t, mem)
	e.cp.AddPipeline("api-pipeline")
	e.cp.AddPipeline("web-pipeline")
	e.cc = awsfake.NewCodeCommit(t, "api", "web", "stray")
	e.h.Commits = sdkCommits{e.cc.Client(t)}
	param, _ := pipeline.ParseProjects("api")
	table := runstore.NewProjectsMemory()
	if err := table.Declare(ctx, pipeline.Project{Name: "web", Branch: "release"}, true, pushedAt); err != nil {
		t.Fatal(err)
	}
	e.h.Projects = &projects.Lookup{Parameter: param, Store: table}
	e.h.PipelineName, e.h.RepositoryName, e.h.Branch = "", "", ""

	cases := []struct {
		id, repo, branch, commit              string
		wantPipeline, wantOutcome, wantReason string
	}{
		{"e1", "api", "main", strings.Repeat("a", 40), "api-pipeline", "recorded", ""},
		{"e2", "web", "release", strings.Repeat("b", 40), "web-pipeline", "recorded", ""},
		{"e3", "web", "main", strings.Repeat("c", 40), "web-pipeline", "skipped", "branch main is not the tracked branch release"},
		{"e4", "stray", "main", strings.Repeat("d", 40), "", "skipped", "repository stray belongs to no declared project"},
		{"e1", "api", "main", strings.Repeat("a", 40), "api-pipeline", "ignored", ""},
	}
	for _, c := range cases {
		resp, err := e.h.Handle(ctx, repoPush(t, c.id, c.repo, c.branch, c.commit))
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		if resp.Outcome != c.wantOutcome || resp.Pipeline != c.wantPipeline || !strings.Contains(resp.Reason, c.wantReason) {
			t.Errorf("push %s of %s/%s: %+v, want %s on %q (%q)", c.id, c.repo, c.branch, resp, c.wantOutcome, c.wantPipeline, c.wantReason)
		}
	}
	started := map[string]int{}
	for _, s := range e.cp.Starts() {
		if !s.Replayed {
			started[s.Pipeline]++
		}
	}
	if started["api-pipeline"] != 1 || started["web-pipeline"] != 1 || len(started) != 2 {
		t.Errorf("runs started: %v, want one per project", started)
	}
}
