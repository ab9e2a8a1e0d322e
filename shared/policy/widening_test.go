package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

const wideningBase = `
Parameters: { PermissionsBoundaryArn: { Type: String } }
Resources:
  FunctionRole:
    Type: AWS::IAM::Role
    Properties:
      PermissionsBoundary: !Ref PermissionsBoundaryArn
      AssumeRolePolicyDocument:
        Statement: [{ Effect: Allow, Principal: { Service: lambda.amazonaws.com }, Action: sts:AssumeRole }]
      Policies:
        - PolicyName: app
          PolicyDocument:
            Statement:
              - { Effect: Allow, Action: [dynamodb:GetItem], Resource: "arn:aws:dynamodb:eu-west-1:1:table/orders" }
              - { Effect: Allow, Action: [s3:GetObject], Resource: "arn:aws:s3:::b/*", Condition: { Bool: { aws:SecureTransport: true } } }
              - { Effect: Deny, Action: [s3:DeleteObject], Resource: "arn:aws:s3:::b/*" }
  Queue:
    Type: AWS::SQS::Queue
`

func TestWidening(t *testing.T) {
	base := mustParse(t, wideningBase)
	cases := []struct {
		name     string
		old, new string
		want     []Change
	}{
		{"same template", wideningBase, wideningBase, nil},
		{"a non-IAM change", wideningBase, wideningBase + "  Topic:\n    Type: AWS::SNS::Topic\n", nil},
		{"narrowing", wideningBase, replace(wideningBase, "[dynamodb:GetItem]", "[]"), nil},
		{"added action", wideningBase, replace(wideningBase, "[dynamodb:GetItem]", "[dynamodb:GetItem, dynamodb:DeleteItem]"),
			[]Change{{ChangeAction, "FunctionRole", "dynamodb:DeleteItem"}}},
		{"same action in another case", wideningBase, replace(wideningBase, "[dynamodb:GetItem]", "[DynamoDB:getitem]"), nil},
		{"added resource", wideningBase, replace(wideningBase, `"arn:aws:dynamodb:eu-west-1:1:table/orders"`, `["arn:aws:dynamodb:eu-west-1:1:table/orders", "arn:aws:dynamodb:eu-west-1:1:table/users"]`),
			[]Change{{ChangeResource, "FunctionRole", "arn:aws:dynamodb:eu-west-1:1:table/users"}}},
		{"known action on a known resource", wideningBase, replace(wideningBase, `[dynamodb:GetItem], Resource: "arn:aws:dynamodb:eu-west-1:1:table/orders"`, `[dynamodb:GetItem, s3:GetObject], Resource: "arn:aws:dynamodb:eu-west-1:1:table/orders"`),
			[]Change{{ChangeGrant, "FunctionRole", "s3:GetObject on arn:aws:dynamodb:eu-west-1:1:table/orders"}}},
		{"dropped condition", wideningBase, replace(wideningBase, `, Condition: { Bool: { aws:SecureTransport: true } }`, ``),
			[]Change{{ChangeGrant, "FunctionRole", "s3:GetObject on arn:aws:s3:::b/*"}}},
		{"removed deny", wideningBase, replace(wideningBase, `              - { Effect: Deny, Action: [s3:DeleteObject], Resource: "arn:aws:s3:::b/*" }
`, ``),
			[]Change{{ChangeRemovedDeny, "FunctionRole", "s3:DeleteObject on arn:aws:s3:::b/*"}}},
		{"added principal", wideningBase, replace(wideningBase, "{ Service: lambda.amazonaws.com }", `{ Service: lambda.amazonaws.com, AWS: "arn:aws:iam::999999999999:root" }`),
			[]Change{{ChangePrincipal, "FunctionRole", "AWS:arn:aws:iam::999999999999:root"}}},
		{"removed boundary", wideningBase, replace(wideningBase, "      PermissionsBoundary: !Ref PermissionsBoundaryArn\n", ""),
			[]Change{{ChangeRemovedBoundary, "FunctionRole", `was {"Ref":"PermissionsBoundaryArn"}`}}},
		{"changed boundary", wideningBase, replace(wideningBase, "!Ref PermissionsBoundaryArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
			[]Change{{ChangeBoundary, "FunctionRole", `{"Ref":"PermissionsBoundaryArn"} → arn:aws:iam::aws:policy/AdministratorAccess`}}},
		{"managed policy", wideningBase, replace(wideningBase, "      Policies:\n", "      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]\n      Policies:\n"),
			[]Change{{ChangeManagedPolicy, "FunctionRole", "arn:aws:iam::aws:policy/AdministratorAccess"}}},
		{"new role", wideningBase, wideningBase + `  Other:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: [{ Effect: Allow, Principal: { Service: codebuild.amazonaws.com }, Action: sts:AssumeRole }]
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement: [{ Effect: Allow, NotAction: iam:*, Resource: "*" }]
`, []Change{
			{ChangeNewRole, "Other", ""},
			{ChangePrincipal, "Other", "Service:codebuild.amazonaws.com"},
			{ChangeAction, "Other", "NotAction iam:*"},
			{ChangeResource, "Other", "*"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, Widening(mustParse(t, c.old), mustParse(t, c.new)))
		})
	}
	t.Run("a new stack widens by all its roles", func(t *testing.T) {
		got := Widening(nil, base)
		assert.Equal(t, []Change{
			{ChangeNewRole, "FunctionRole", ""},
			{ChangePrincipal, "FunctionRole", "Service:lambda.amazonaws.com"},
			{ChangeAction, "FunctionRole", "dynamodb:GetItem"},
			{ChangeAction, "FunctionRole", "s3:GetObject"},
			{ChangeResource, "FunctionRole", "arn:aws:dynamodb:eu-west-1:1:table/orders"},
			{ChangeResource, "FunctionRole", "arn:aws:s3:::b/*"},
		}, got)
	})
	t.Run("removing a role does not widen", func(t *testing.T) {
		assert.Empty(t, Widening(base, mustParse(t, "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")))
	})
	assert.Equal(t, "FunctionRole: added-action: s3:PutObject", Change{ChangeAction, "FunctionRole", "s3:PutObject"}.String())
	assert.Equal(t, "Other: new-role", Change{ChangeNewRole, "Other", ""}.String())
}

// The shipped templates do not widen against themselves, and each refused sample widens
// against nothing by at least its roles.
func TestWideningOfShippedTemplates(t *testing.T) {
	for _, p := range []string{"../../infrastructure/lambda.yml", "../../infrastructure/pipeline.yml"} {
		tp := readTemplate(t, p)
		assert.Empty(t, Widening(tp, tp), p)
		assert.NotEmpty(t, Widening(nil, tp), p)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		assert.Empty(t, Widening(tp, tp), f)
	}
}

func replace(s, old, new string) string {
	if !contains(s, old) {
		panic("replace: " + old + " not found")
	}
	return replaceOnce(s, old, new)
}
