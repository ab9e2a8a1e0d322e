package deploy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/infrastructure"
	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
	"github.com/lambda-pipeline/lambda-pipeline/shared/deploy"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/policy"
)

// escalation is what a pusher who wants the account adds to a template: a role trusted by
// another account, with every action on everything, without the boundary.
const escalation = `
  Escalation:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { AWS: "arn:aws:iam::999999999999:root" }
            Action: sts:AssumeRole
      Policies:
        - PolicyName: admin
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Sid: Everything
                Effect: Allow
                Action: "*"
                Resource: "*"
`

// withResources returns template with extra (YAML resources, two-space indented) added to its
// Resources.
func withResources(t *testing.T, template []byte, extra string) []byte {
	t.Helper()
	s := string(template)
	i := strings.Index(s, "\nResources:\n")
	require.GreaterOrEqual(t, i, 0, "no Resources section")
	i += len("\nResources:\n")
	return []byte(s[:i] + strings.TrimPrefix(extra, "\n") + "\n" + s[i:])
}

// gated gives the world's job handler the policy gate, with approvals kept in store (nil: no
// approval store).
func (w *world) gated(store deploy.ApprovalStore) *deploy.Gate {
	g := &deploy.Gate{Policy: policy.DefaultConfig(), Approvals: store, Stacks: w.cfn.Client(w.t), Clock: pipeline.ClockFunc(w.clock.Now)}
	w.handler.Gate = g
	return g
}

// A pushed escalation, in either template, is refused before any change set exists: the
// action fails with each offending resource, statement and rule, and CloudFormation never
// executes (or even creates) a change set.
func TestPushedEscalationIsRefusedBeforeAnyChangeSet(t *testing.T) {
	for _, tc := range []struct {
		name, sample, file, stack string
		template                  []byte
	}{
		{"lambda.yml", "job-create-update-lambda.json", "infrastructure/lambda.yml", appStack, infrastructure.LambdaTemplate},
		{"pipeline.yml", "job-create-update-pipeline.json", "infrastructure/pipeline.yml", pipelineStack, infrastructure.PipelineTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			// The stack as the last good push left it (the pipeline stack as the control
			// plane's custom resource created it).
			if tc.stack == pipelineStack {
				cr := w.customResource()
				_, reply := cr.handle(t, cr.event("Create", nil))
				require.Equal(t, "SUCCESS", reply.Status, reply.Reason)
			} else {
				first, _ := w.runToEnd(w.job(tc.sample, "my-lambda-pipeline/BuildOutpu/b1"))
				require.True(t, first.Succeeded, first.FailureMessage)
			}
			executed := w.cfn.Calls(awsfake.OpExecuteChangeSet)
			created := w.cfn.Calls(awsfake.OpCreateChangeSet)
			require.Equal(t, 1, executed)

			w.gated(nil)
			w.putSource(sourceKey, map[string][]byte{
				"infrastructure/lambda.yml":   infrastructure.LambdaTemplate,
				"infrastructure/pipeline.yml": infrastructure.PipelineTemplate,
				tc.file:                       withResources(t, tc.template, escalation),
			})
			res, invocations := w.runToEnd(w.job(tc.sample, "my-lambda-pipeline/BuildOutpu/b2"))

			assert.Equal(t, 1, invocations)
			require.False(t, res.Succeeded)
			assert.Equal(t, "JobFailed", res.FailureType)
			assert.Equal(t, tc.stack, res.ExternalExecutionID)
			msg := res.FailureMessage
			assert.LessOrEqual(t, len(msg), 5000, "PutJobFailureResult takes 5000 characters")
			assert.Contains(t, msg, "policy gate: refused SourceArtifact::"+tc.file+" for stack "+tc.stack+" before any change set")
			for _, want := range []string{
				"Escalation PermissionsBoundary: boundary: the role has no permissions boundary",
				"Escalation AssumeRolePolicyDocument.Statement[0]: trust: principal AWS arn:aws:iam::999999999999:root: a role may trust only the services",
				`Escalation Policies[0] (admin).PolicyDocument.Statement[0] (Everything): action-star: Action "*"`,
				`Escalation Policies[0] (admin).PolicyDocument.Statement[0] (Everything): resource-star-write: Resource "*"`,
			} {
				assert.Contains(t, msg, want)
			}
			assert.Equal(t, executed, w.cfn.Calls(awsfake.OpExecuteChangeSet), "a change set was executed")
			assert.Equal(t, created, w.cfn.Calls(awsfake.OpCreateChangeSet), "a change set was created")
			st := w.stack(tc.stack)
			assert.NotContains(t, st.Template, "Escalation")
			w.assertNoSecretsLogged()
		})
	}
}

// A resource type outside the allow-list is refused too, with its own line; the rules come
// from the gate's configuration (the deployer's environment), not from the push.
func TestResourceTypeOutsideTheAllowListIsRefused(t *testing.T) {
	w := newWorld(t)
	w.gated(nil)
	w.putSource(sourceKey, map[string][]byte{"infrastructure/lambda.yml": withResources(t, infrastructure.LambdaTemplate, `
  Machine:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: ami-12345678
`)})
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, `Machine: resource-type: type "AWS::EC2::Instance" is outside the allow-list`)
	assert.Zero(t, w.cfn.Calls(awsfake.OpCreateChangeSet))
	_, exists := w.cfn.Stack(appStack)
	assert.False(t, exists)
}

// A template the gate cannot read is refused rather than deployed unchecked.
func TestUnreadableTemplateIsRefused(t *testing.T) {
	w := newWorld(t)
	w.gated(nil)
	w.putSource(sourceKey, map[string][]byte{"infrastructure/lambda.yml": []byte("Resources:\n  A: &x {Type: AWS::SNS::Topic}\n  B: *x\n")})
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.False(t, res.Succeeded)
	assert.Contains(t, res.FailureMessage, "the gate cannot read it")
	assert.Zero(t, w.cfn.Calls(awsfake.OpCreateChangeSet))
}

// Many violations still fit PutJobFailureResult's 5000 characters, the first ones in full.
func TestManyViolationsFitTheFailureMessage(t *testing.T) {
	w := newWorld(t)
	w.gated(nil)
	var extra strings.Builder
	for i := range 80 {
		extra.WriteString(strings.ReplaceAll(escalation, "Escalation:", "Escalation"+string(rune('A'+i/26))+string(rune('a'+i%26))+":"))
	}
	w.putSource(sourceKey, map[string][]byte{"infrastructure/lambda.yml": withResources(t, infrastructure.LambdaTemplate, extra.String())})
	res, _ := w.runToEnd(w.appJob("my-lambda-pipeline/BuildOutpu/b1"))
	require.False(t, res.Succeeded)
	assert.LessOrEqual(t, len(res.FailureMessage), 5000)
	assert.Contains(t, res.FailureMessage, "(320 violations;")
	assert.Contains(t, res.FailureMessage, "EscalationAa PermissionsBoundary: boundary")
	assert.Contains(t, res.FailureMessage, "more")
}

// The custom resource's built-in template goes through the same rules: a control plane built
// with an escalating pipeline.yml answers FAILED and creates nothing.
func TestCustomResourceTemplateIsChecked(t *testing.T) {
	w := newWorld(t)
	cr := w.customResource()
	cr.cr.Gate = &deploy.Gate{Policy: policy.DefaultConfig()}
	cr.cr.Template = withResources(t, infrastructure.PipelineTemplate, escalation)
	_, reply := cr.handle(t, cr.event("Create", nil))
	assert.Equal(t, "FAILED", reply.Status)
	assert.Contains(t, reply.Reason, "policy gate: refused the deployer's built-in pipeline.yml for stack "+pipelineStack)
	assert.Contains(t, reply.Reason, "Escalation PermissionsBoundary: boundary")
	assert.True(t, strings.HasPrefix(reply.PhysicalResourceID, "not-created:"), "a refused create names no stack: %s", reply.PhysicalResourceID)
	assert.Zero(t, w.cfn.Calls(awsfake.OpCreateChangeSet))

	// The shipped template passes.
	cr.cr.Template = infrastructure.PipelineTemplate
	_, reply = cr.handle(t, cr.event("Create", nil))
	assert.Equal(t, "SUCCESS", reply.Status, reply.Reason)
}
