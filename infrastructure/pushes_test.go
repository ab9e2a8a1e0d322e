package infrastructure

import (
	"fmt"
	"testing"
)

// on-push's role grants every call the function makes — a push's (GetCommit, the claim's
// writes, StartPipelineExecution) and the push re-drive's (the project list, GetBranch,
// ListPipelineExecutions) — on the resources a project's names give, and no other pipeline.
func TestOnPushGrantsWhatItCalls(t *testing.T) {
	cp := controlPlane(t)
	env := newSampleEnv(cp, controlPlaneStack, nil)
	table, err := env.evalString(map[string]any{"Fn::GetAtt": []any{"RunsTable", "Arn"}})
	if err != nil {
		t.Fatal(err)
	}
	type grant struct{ actions, resources []string }
	var grants []grant
	add := func(doc any) {
		for _, s := range statements(doc) {
			st := s.(map[string]any)
			if st["Effect"] != "Allow" || st["Condition"] != nil {
				continue
			}
			g := grant{}
			for _, a := range stringList(st["Action"]) {
				g.actions = append(g.actions, fmt.Sprint(a))
			}
			for _, r := range stringList(st["Resource"]) {
				s, err := env.evalString(r)
				if err != nil {
					t.Fatal(err)
				}
				g.resources = append(g.resources, s)
			}
			grants = append(grants, g)
		}
	}
	_, role := cp.resource("OnPushRole")
	for _, p := range role["Policies"].([]any) {
		add(p.(map[string]any)["PolicyDocument"])
	}
	_, tablePolicy := cp.resource("OnPushTablePolicy")
	add(tablePolicy["PolicyDocument"])
	allowed := func(action, resource string) bool {
		for _, g := range grants {
			for _, a := range g.actions {
				for _, r := range g.resources {
					if actionCovers(a, action) && arnLike(r, resource) {
						return true
					}
				}
			}
		}
		return false
	}
	repo := "arn:aws:codecommit:eu-west-1:123456789012:" + sampleProject
	pipe := "arn:aws:codepipeline:eu-west-1:123456789012:" + sampleProject + "-pipeline"
	for _, c := range []struct{ action, resource string }{
		{"codecommit:GetCommit", repo}, {"codecommit:GetBranch", repo},
		{"codepipeline:StartPipelineExecution", pipe}, {"codepipeline:ListPipelineExecutions", pipe},
		{"dynamodb:UpdateItem", table}, {"dynamodb:PutItem", table}, {"dynamodb:GetItem", table},
		{"dynamodb:Query", table + "/index/byPipeline"},
	} {
		if !allowed(c.action, c.resource) {
			t.Errorf("on-push may not %s on %s", c.action, c.resource)
		}
	}
	for _, c := range []struct{ action, resource string }{
		{"codepipeline:StartPipelineExecution", "arn:aws:codepipeline:eu-west-1:123456789012:release-train"},
		{"dynamodb:DeleteItem", table}, {"dynamodb:Scan", table},
	} {
		if allowed(c.action, c.resource) {
			t.Errorf("on-push may %s on %s", c.action, c.resource)
		}
	}
}
