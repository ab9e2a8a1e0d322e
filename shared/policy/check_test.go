package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustParse(t testing.TB, src string) *Template {
	t.Helper()
	tp, err := Parse([]byte(src))
	require.NoError(t, err)
	return tp
}

func readTemplate(t testing.TB, path string) *Template {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	tp, err := Parse(b)
	require.NoError(t, err, path)
	return tp
}

// The gate accepts the project's two templates as shipped.
func TestShippedTemplatesPass(t *testing.T) {
	for _, name := range []string{"lambda.yml", "pipeline.yml"} {
		t.Run(name, func(t *testing.T) {
			got := Check(readTemplate(t, filepath.Join("..", "..", "infrastructure", name)), DefaultConfig())
			assert.Empty(t, got)
		})
	}
}

// Each refused template in testdata breaks exactly the rule it is named for, once, on the
// resource that breaks it.
func TestRefusedTemplates(t *testing.T) {
	cases := []struct {
		file     string
		want     []Violation
		contains []string // in the first violation's message
	}{
		{"other-account-trust.yml", []Violation{{Resource: "Backdoor", Statement: "AssumeRolePolicyDocument.Statement[0]", Rule: RuleTrust}},
			[]string{"principal AWS arn:aws:iam::999999999999:root"}},
		{"no-boundary.yml", []Violation{{Resource: "FunctionRole", Statement: "PermissionsBoundary", Rule: RuleBoundary}},
			[]string{"no permissions boundary", "!Ref PermissionsBoundaryArn"}},
		{"action-star.yml", []Violation{{Resource: "FunctionRole", Statement: "Policies[0] (everything).PolicyDocument.Statement[0] (Everything)", Rule: RuleActionStar}},
			[]string{`Action "*"`}},
		{"resource-type.yml", []Violation{{Resource: "Admin", Rule: RuleResourceType}},
			[]string{`"AWS::IAM::User" is outside the allow-list`}},
		{"escalation.json", []Violation{
			{Resource: "Admin", Statement: "Policies[0] (admin).PolicyDocument.Statement[0] (All)", Rule: RuleActionStar},
			{Resource: "Backdoor", Statement: "AssumeRolePolicyDocument.Statement[0]", Rule: RuleTrust},
			{Resource: "Instance", Rule: RuleResourceType},
			{Resource: "Unbounded", Statement: "PermissionsBoundary", Rule: RuleBoundary},
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got := Check(readTemplate(t, filepath.Join("testdata", c.file)), DefaultConfig())
			require.Len(t, got, len(c.want), "%v", got)
			for i := range got {
				assert.Equal(t, c.want[i].Resource, got[i].Resource)
				assert.Equal(t, c.want[i].Statement, got[i].Statement)
				assert.Equal(t, c.want[i].Rule, got[i].Rule)
			}
			for _, s := range c.contains {
				assert.Contains(t, got[0].Message, s)
			}
		})
	}
}

// role wraps one identity-policy statement (YAML, indented for the slot) in a bounded role
// trusted by Lambda.
func role(statement string) string {
	return `
Parameters:
  PermissionsBoundaryArn: { Type: String }
  Star: { Type: String, Default: "*" }
Conditions:
  C: !Equals [a, b]
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      PermissionsBoundary: !Ref PermissionsBoundaryArn
      AssumeRolePolicyDocument:
        Statement:
          - { Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
` + statement
}

func rules(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func TestStatementRules(t *testing.T) {
	cases := []struct {
		name, statement string
		want            []string
	}{
		{"named resource", `              - { Effect: Allow, Action: [s3:GetObject, s3:PutObject], Resource: !Sub "arn:aws:s3:::b/*" }`, nil},
		{"reads on star", `              - { Effect: Allow, Action: [s3:ListAllMyBuckets, dynamodb:Describe*, lambda:Get*], Resource: "*" }`, nil},
		{"allowed star writes", `              - { Effect: Allow, Action: [xray:PutTraceSegments, cloudwatch:PutMetricData], Resource: "*" }`, nil},
		{"write on star", `              - { Effect: Allow, Action: [s3:GetObject, s3:PutObject], Resource: "*" }`, []string{RuleResourceStar}},
		{"service wildcard on star", `              - { Effect: Allow, Action: dynamodb:*, Resource: "*" }`, []string{RuleResourceStar}},
		{"ambiguous wildcard on star", `              - { Effect: Allow, Action: s3:G*, Resource: "*" }`, []string{RuleResourceStar}},
		{"star ARN", `              - { Effect: Allow, Action: sqs:SendMessage, Resource: "arn:aws:sqs:*:*:*" }`, []string{RuleResourceStar}},
		{"star in a list", `              - { Effect: Allow, Action: sqs:SendMessage, Resource: [!Sub "arn:aws:sqs:eu-west-1:1:q", "*"] }`, []string{RuleResourceStar}},
		{"star by parameter default", `              - { Effect: Allow, Action: sqs:SendMessage, Resource: !Ref Star }`, []string{RuleResourceStar}},
		{"action star", `              - { Effect: Allow, Action: "*", Resource: "arn:aws:s3:::b" }`, []string{RuleActionStar}},
		{"action star star", `              - { Effect: Allow, Action: "*:*", Resource: "arn:aws:s3:::b" }`, []string{RuleActionStar}},
		{"iam star", `              - { Effect: Allow, Action: iam:*, Resource: "arn:aws:iam::1:role/x" }`, []string{RuleIAMWildcard}},
		{"iam wildcard any case", `              - { Effect: Allow, Action: IAM:Put*, Resource: "arn:aws:iam::1:role/x" }`, []string{RuleIAMWildcard}},
		{"iam on star", `              - { Effect: Allow, Action: iam:*, Resource: "*" }`, []string{RuleIAMWildcard, RuleResourceStar}},
		{"not action", `              - { Effect: Allow, NotAction: iam:*, Resource: "arn:aws:s3:::b" }`, []string{RuleNotAction}},
		{"not resource", `              - { Effect: Allow, Action: s3:GetObject, NotResource: "arn:aws:s3:::b/*" }`, []string{RuleNotResource}},
		{"deny anything", `              - { Effect: Deny, NotAction: "*", NotResource: "*" }`, nil},
		{"action by parameter", `              - { Effect: Allow, Action: !Ref Star, Resource: "arn:aws:s3:::b" }`, []string{RuleNotLiteral}},
		{"inside Fn::If", `              - !If [C, { Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::b/*" }, { Effect: Allow, Action: "*", Resource: "arn:aws:s3:::b" }]`, []string{RuleActionStar}},
		{"action list inside Fn::If", `              - { Effect: Allow, Action: !If [C, [s3:GetObject], [s3:PutObject]], Resource: "*" }`, []string{RuleResourceStar}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Check(mustParse(t, role(c.statement)), DefaultConfig())
			assert.Equal(t, c.want, rules(got), "%v", got)
		})
	}
}

func TestTrustRules(t *testing.T) {
	tmpl := func(principal string) string {
		return `
Parameters: { PermissionsBoundaryArn: { Type: String } }
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      PermissionsBoundary: !Ref PermissionsBoundaryArn
      AssumeRolePolicyDocument:
        Statement:
          - ` + principal + `
`
	}
	cases := []struct {
		name, statement string
		want            []string
	}{
		{"lambda", `{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }`, nil},
		{"two allowed services", `{ Effect: Allow, Principal: { Service: [lambda.amazonaws.com, codebuild.amazonaws.com] }, Action: sts:AssumeRole }`, nil},
		{"another service", `{ Effect: Allow, Principal: { Service: ec2.amazonaws.com }, Action: sts:AssumeRole }`, []string{RuleTrust}},
		{"anyone", `{ Effect: Allow, Principal: "*", Action: sts:AssumeRole }`, []string{RuleTrust}},
		{"any AWS account", `{ Effect: Allow, Principal: { AWS: "*" }, Action: sts:AssumeRole }`, []string{RuleTrust}},
		{"this account", `{ Effect: Allow, Principal: { AWS: !Sub "arn:aws:iam::${AWS::AccountId}:root" }, Action: sts:AssumeRole }`, []string{RuleTrust}},
		{"federated", `{ Effect: Allow, Principal: { Federated: cognito-identity.amazonaws.com }, Action: sts:AssumeRoleWithWebIdentity }`, []string{RuleTrust}},
		{"service and account", `{ Effect: Allow, Principal: { Service: lambda.amazonaws.com, AWS: "arn:aws:iam::999999999999:root" }, Action: sts:AssumeRole }`, []string{RuleTrust}},
		{"not principal", `{ Effect: Allow, NotPrincipal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }`, []string{RuleTrust}},
		{"computed service", `{ Effect: Allow, Principal: { Service: !Sub "lambda.${AWS::URLSuffix}" }, Action: sts:AssumeRole }`, []string{RuleNotLiteral}},
		{"deny", `{ Effect: Deny, Principal: "*", Action: sts:AssumeRole }`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Check(mustParse(t, tmpl(c.statement)), DefaultConfig())
			assert.Equal(t, c.want, rules(got), "%v", got)
		})
	}

	// The allowed principals are a parameter of the gate.
	cfg := DefaultConfig()
	cfg.AllowedPrincipals = []string{"states.amazonaws.com"}
	got := Check(mustParse(t, tmpl(`{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }`)), cfg)
	assert.Equal(t, []string{RuleTrust}, rules(got))
	got = Check(mustParse(t, tmpl(`{ Effect: Allow, Principal: { Service: states.amazonaws.com }, Action: sts:AssumeRole }`)), cfg)
	assert.Empty(t, got)
}

func TestRoleRules(t *testing.T) {
	base := `
Parameters: { PermissionsBoundaryArn: { Type: String }, Other: { Type: String } }
Conditions: { C: !Equals [a, b] }
Resources:
  R:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }]
`
	cases := []struct {
		name, props string
		want        []string
	}{
		{"boundary by parameter", "      PermissionsBoundary: !Ref PermissionsBoundaryArn\n", nil},
		{"boundary by literal", "      PermissionsBoundary: arn:aws:iam::123456789012:policy/lambda-pipeline/boundary\n", nil},
		{"another parameter", "      PermissionsBoundary: !Ref Other\n", []string{RuleBoundary}},
		{"another policy", "      PermissionsBoundary: arn:aws:iam::aws:policy/AdministratorAccess\n", []string{RuleBoundary}},
		{"boundary sometimes", "      PermissionsBoundary: !If [C, !Ref PermissionsBoundaryArn, !Ref AWS::NoValue]\n", []string{RuleBoundary}},
		{"managed policy", "      PermissionsBoundary: !Ref PermissionsBoundaryArn\n      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]\n", []string{RuleManagedPolicy}},
	}
	cfg := DefaultConfig()
	cfg.BoundaryARNs = []string{"arn:aws:iam::123456789012:policy/lambda-pipeline/boundary"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Check(mustParse(t, base+c.props), cfg)
			assert.Equal(t, c.want, rules(got), "%v", got)
		})
	}
	t.Run("no trust policy", func(t *testing.T) {
		got := Check(mustParse(t, "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      PermissionsBoundary: !Ref PermissionsBoundaryArn\n"), DefaultConfig())
		assert.Equal(t, []string{RuleTrust}, rules(got))
	})
}

func TestTemplateRules(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"allowed types", "Resources:\n  Q: { Type: AWS::SQS::Queue }\n  T: { Type: AWS::DynamoDB::Table }\n  F: { Type: AWS::Lambda::Function }\n  A: { Type: AWS::ApiGatewayV2::Api }\n", nil},
		{"SAM transform", "Transform: AWS::Serverless-2016-10-31\nResources:\n  F: { Type: AWS::Serverless::Function }\n", []string{RuleTransform, RuleResourceType}},
		{"macro", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      Fn::Transform: { Name: AWS::Include }\n", []string{RuleTransform}},
		{"custom resource", "Resources:\n  C: { Type: Custom::Thing }\n", []string{RuleResourceType}},
		{"nested stack", "Resources:\n  S: { Type: AWS::CloudFormation::Stack }\n", []string{RuleResourceType}},
		{"no type", "Resources:\n  X: { Properties: {} }\n", []string{RuleResourceType}},
		{"not a mapping", "Resources:\n  X: [1]\n", []string{RuleResourceType}},
		{"prefix is not a service", "Resources:\n  X: { Type: AWS::LambdaX::Function }\n", []string{RuleResourceType}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Check(mustParse(t, c.src), DefaultConfig())
			assert.Equal(t, c.want, rules(got), "%v", got)
		})
	}
	cfg := DefaultConfig()
	cfg.AllowedResourceTypes = []string{"AWS::SQS::Queue"}
	assert.Equal(t, []string{RuleResourceType}, rules(Check(mustParse(t, "Resources:\n  T: { Type: AWS::DynamoDB::Table }\n"), cfg)))
}

func TestViolationString(t *testing.T) {
	v := Violation{Resource: "R", Statement: "Policies[0].PolicyDocument.Statement[1] (S)", Rule: RuleActionStar, Message: "m"}
	assert.Equal(t, "R Policies[0].PolicyDocument.Statement[1] (S): action-star: m", v.String())
	assert.Equal(t, "(template): transform: m", Violation{Rule: RuleTransform, Message: "m"}.String())
}

func TestParse(t *testing.T) {
	t.Run("short forms", func(t *testing.T) {
		tp := mustParse(t, "Resources:\n  A:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub ${AWS::StackName}-q\n      X: !GetAtt B.Arn\n      Y: !Join [',', [!Ref C]]\n")
		_, props := tp.Resource("A")
		assert.Equal(t, map[string]any{"Fn::Sub": "${AWS::StackName}-q"}, props["QueueName"])
		assert.Equal(t, map[string]any{"Fn::GetAtt": []any{"B", "Arn"}}, props["X"])
		assert.Equal(t, map[string]any{"Fn::Join": []any{",", []any{map[string]any{"Ref": "C"}}}}, props["Y"])
	})
	t.Run("JSON", func(t *testing.T) {
		tp := mustParse(t, `{"Resources": {"A": {"Type": "AWS::SQS::Queue", "Properties": {"Q": {"Fn::GetAtt": ["B", "Arn"]}}}}}`)
		typ, props := tp.Resource("A")
		assert.Equal(t, "AWS::SQS::Queue", typ)
		assert.Equal(t, map[string]any{"Fn::GetAtt": []any{"B", "Arn"}}, props["Q"])
	})
	t.Run("version stays a string", func(t *testing.T) {
		tp := mustParse(t, "AWSTemplateFormatVersion: 2010-09-09\nResources: {}\n")
		assert.Equal(t, "2010-09-09", tp.Root["AWSTemplateFormatVersion"])
	})
	for name, src := range map[string]string{
		"duplicate key":   "Resources:\n  A: { Type: AWS::SQS::Queue }\n  A: { Type: AWS::IAM::User }\n",
		"anchor":          "Resources:\n  A: &a { Type: AWS::SQS::Queue }\n  B: *a\n",
		"merge key":       "Resources:\n  A:\n    <<: { Type: AWS::SQS::Queue }\n",
		"unknown tag":     "Resources:\n  A: !Evil { Type: AWS::SQS::Queue }\n",
		"GetAtt no dot":   "Resources:\n  A: { Type: AWS::SQS::Queue, Properties: { X: !GetAtt B } }\n",
		"two documents":   "Resources: {}\n---\nResources: {}\n",
		"a list":          "- Resources\n",
		"no resources":    "Parameters: {}\n",
		"not YAML":        "Resources: [\n",
		"too deep":        "Resources: " + strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5) + "\n",
		"complex key":     "Resources:\n  ? [a]\n  : 1\n",
		"empty":           "",
		"resources is []": "Resources: []\n",
		"Fn::If too deep": "Resources:\n  A: { Type: AWS::SQS::Queue, Properties: { X: " + strings.Repeat("!If [c, a, ", maxIfDepth+1) + "b" + strings.Repeat("]", maxIfDepth+1) + " } }\n",
	} {
		t.Run("refuses "+name, func(t *testing.T) {
			_, err := Parse([]byte(src))
			assert.ErrorIs(t, err, ErrNotTemplate)
		})
	}
	t.Run("refuses more than CloudFormation's limit", func(t *testing.T) {
		_, err := Parse([]byte("Resources: {}\n" + strings.Repeat("#", MaxTemplateBytes)))
		assert.ErrorIs(t, err, ErrNotTemplate)
	})
}
