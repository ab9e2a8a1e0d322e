package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runLP(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, func(string) string { return "" })
	return code, out.String(), errb.String()
}

// refused is the policy package's folder of templates the gate refuses (in this repository).
var refused = filepath.Join("..", "..", "shared", "policy", "testdata") + string(filepath.Separator)

func TestPolicyCheckAcceptsTheShippedTemplates(t *testing.T) {
	code, out, errOut := runLP(t, "policy", "check", "../../infrastructure/lambda.yml", "../../infrastructure/pipeline.yml")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "OK: 2 template(s) pass the policy gate: ../../infrastructure/lambda.yml, ../../infrastructure/pipeline.yml\n", out)
}

// The four refusals of the issue, each on its own line naming the file, the resource, the
// statement and the rule.
func TestPolicyCheckRefusesEachEscalation(t *testing.T) {
	code, out, errOut := runLP(t, "policy", "check", refused+"other-account-trust.yml", refused+"no-boundary.yml",
		refused+"action-star.yml", refused+"resource-type.yml")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "4 violation(s) in 4 template(s)")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	for i, want := range []string{
		refused + "other-account-trust.yml: Backdoor AssumeRolePolicyDocument.Statement[0]: trust: principal AWS arn:aws:iam::999999999999:root",
		refused + "no-boundary.yml: FunctionRole PermissionsBoundary: boundary: ",
		refused + "action-star.yml: FunctionRole Policies[0] (everything).PolicyDocument.Statement[0] (Everything): action-star: ",
		refused + "resource-type.yml: Admin: resource-type: type \"AWS::IAM::User\"",
	} {
		assert.True(t, strings.HasPrefix(lines[i], want), "line %d:\n got %s\nwant %s…", i, lines[i], want)
	}
}

func TestPolicyCheckJSON(t *testing.T) {
	code, out, _ := runLP(t, "policy", "check", "--json", refused+"escalation.json")
	assert.Equal(t, 1, code)
	var res policyResult
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.False(t, res.OK)
	assert.Equal(t, []string{refused + "escalation.json"}, res.Templates)
	var got []string
	for _, v := range res.Violations {
		assert.Equal(t, refused+"escalation.json", v.File)
		got = append(got, v.Resource+"/"+v.Rule)
	}
	assert.Equal(t, []string{"Admin/action-star", "Backdoor/trust", "Instance/resource-type", "Unbounded/boundary"}, got)

	code, out, _ = runLP(t, "policy", "check", "--json", "../../infrastructure/lambda.yml")
	assert.Equal(t, 0, code)
	assert.JSONEq(t, `{"ok": true, "templates": ["../../infrastructure/lambda.yml"], "violations": []}`, out)
}

func TestPolicyCheckOptions(t *testing.T) {
	// A narrower principal list refuses the pipeline's CodePipeline role.
	code, out, _ := runLP(t, "policy", "check", "--principals", "lambda.amazonaws.com,codebuild.amazonaws.com", "../../infrastructure/pipeline.yml")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `PipelineRole AssumeRolePolicyDocument.Statement[0]: trust: service principal "codepipeline.amazonaws.com" is not allowed`)
	// A wider type list accepts the EC2 instance, not the rest.
	code, out, _ = runLP(t, "policy", "check", "--resource-types", "AWS::IAM::Role,AWS::EC2::*", refused+"escalation.json")
	assert.Equal(t, 1, code)
	assert.NotContains(t, out, "Instance")
	assert.Contains(t, out, "Unbounded")
}

func TestPolicyCheckUnreadable(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("Resources: [\n"), 0o600))
	code, out, _ := runLP(t, "policy", "check", bad, filepath.Join(dir, "missing.yml"))
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.True(t, strings.HasPrefix(lines[0], bad+": (template): parse: not a CloudFormation template"), lines[0])
	assert.Contains(t, lines[1], "missing.yml: (template): parse: ")
}

func TestPolicyCheckUsage(t *testing.T) {
	for _, args := range [][]string{{"policy"}, {"policy", "lint", "x.yml"}, {"policy", "check"}, {"policy", "check", "--nope", "x.yml"}} {
		code, _, errOut := runLP(t, args...)
		assert.Equal(t, 2, code, "%v", args)
		assert.Contains(t, errOut, "lp policy: ", "%v", args)
	}
}
