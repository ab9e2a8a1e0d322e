package infrastructure

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// boundaryKeyActions are the IAM calls that give a role permissions or set its boundary and
// that IAM evaluates with the iam:PermissionsBoundary condition key (Service Authorization
// Reference, IAM): a grant of any of them must require the project's boundary.
var boundaryKeyActions = []string{
	"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary",
	"iam:DeleteRolePolicy", "iam:DetachRolePolicy",
}

// iamReads are IAM calls that change nothing (or, PassRole, hand a role to a service, which
// checkIAM restricts on its own).
func iamRead(action string) bool {
	_, name, _ := strings.Cut(strings.ToLower(action), ":")
	for _, p := range []string{"get", "list", "passrole", "simulate"} {
		if strings.HasPrefix(name, p) && !strings.ContainsAny(name[:min(len(name), len(p))], "*?") {
			return true
		}
	}
	return false
}

// checkBoundaryConditions: every Allow of template.yaml that grants an IAM write is either a
// boundaryKeyActions grant carrying StringEquals iam:PermissionsBoundary = the boundary the
// deployer passes on to every project stack (its PERMISSIONS_BOUNDARY_ARN), or a write
// without that key restricted to the projects' role paths; nothing grants iam:DeleteRolePermissionsBoundary; every role with IAM writes also
// carries the two Deny statements that keep the boundary on whatever else it is granted.
func checkBoundaryConditions(t *tmpl) []string {
	var problems []string
	report := func(where, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", t.name, where, fmt.Sprintf(format, args...)))
	}
	// The converger gives every project stack this boundary (deploy.ProjectSettings).
	boundary := at(t.section("Resources"), "DeployerFunction", "Properties", "Environment", "Variables", "PERMISSIONS_BOUNDARY_ARN")
	if boundary == nil {
		return []string{t.name + ": the deployer passes no PERMISSIONS_BOUNDARY_ARN to the project stacks"}
	}
	for _, id := range t.resourcesOfType("AWS::IAM::Role") {
		_, props := t.resource(id)
		pols, _ := props["Policies"].([]any)
		writes, keepsBoundary, noRemoval := false, false, false
		for i, p := range pols {
			for j, s := range statements(at(p, "PolicyDocument")) {
				st := s.(map[string]any)
				where := fmt.Sprintf("%s.Policies[%d].Statement[%d]", id, i, j)
				if sid, ok := st["Sid"].(string); ok {
					where += " (" + sid + ")"
				}
				var actions []string
				for _, a := range stringList(st["Action"]) {
					if s, ok := a.(string); ok {
						actions = append(actions, s)
					}
				}
				if st["Effect"] == "Deny" {
					covers := func(want ...string) bool {
						for _, w := range want {
							ok := false
							for _, a := range actions {
								ok = ok || actionCovers(a, w)
							}
							if !ok {
								return false
							}
						}
						return true
					}
					if covers(boundaryKeyActions...) && reflect.DeepEqual(at(st, "Condition", "StringNotEquals", "iam:PermissionsBoundary"), boundary) {
						keepsBoundary = true
					}
					if covers("iam:DeleteRolePermissionsBoundary") && st["Condition"] == nil {
						noRemoval = true
					}
					continue
				}
				var keyed, other []string
				for _, a := range actions {
					if actionCovers(a, "iam:DeleteRolePermissionsBoundary") {
						report(where, "grants %s: a role's boundary must never be removable", a)
					}
					isKeyed := false
					for _, k := range boundaryKeyActions {
						isKeyed = isKeyed || actionCovers(a, k)
					}
					switch {
					case isKeyed:
						keyed = append(keyed, a)
					case strings.HasPrefix(strings.ToLower(a), "iam:") && !iamRead(a):
						other = append(other, a)
					}
				}
				if len(keyed)+len(other) > 0 {
					writes = true
				}
				if len(keyed) > 0 && !reflect.DeepEqual(at(st, "Condition", "StringEquals", "iam:PermissionsBoundary"), boundary) {
					report(where, "grants %s without the condition StringEquals iam:PermissionsBoundary = %v", strings.Join(keyed, ", "), boundary)
				}
				if len(other) > 0 {
					for _, r := range stringList(st["Resource"]) {
						sub, _ := at(r, "Fn::Sub").(string)
						// One control plane serves every project: the projects' role paths
						// (/lambda-pipeline/project/<P>/…), never a role of the control plane.
						if !strings.Contains(sub, ":role/lambda-pipeline/project/*/") {
							report(where, "grants %s on %v: writes without the boundary key only on the project's role paths", strings.Join(other, ", "), r)
						}
					}
				}
			}
		}
		if writes && !keepsBoundary {
			report(id, "grants IAM writes without a Deny of %s when iam:PermissionsBoundary is not the boundary", strings.Join(boundaryKeyActions, ", "))
		}
		if writes && !noRemoval {
			report(id, "grants IAM writes without an unconditional Deny of iam:DeleteRolePermissionsBoundary")
		}
	}
	return problems
}

// Every IAM write grant in template.yaml carries the boundary condition.
func TestIAMWritesRequireTheBoundary(t *testing.T) {
	cp := controlPlane(t)
	expectNoProblems(t, checkBoundaryConditions(cp))
	// The two deploy roles are the ones that write IAM.
	for _, id := range []string{"PipelineStackRole", "AppStackRole"} {
		if statementOf(cp.root, id, "RolesUnderTheBoundary") == nil {
			t.Errorf("%s has no RolesUnderTheBoundary statement", id)
		}
	}
}

func TestCheckBoundaryConditionsFails(t *testing.T) {
	runMutations(t, controlPlane(t), checkBoundaryConditions, []mutation{
		{"condition dropped", func(r map[string]any) {
			delete(statementOf(r, "AppStackRole", "RolesUnderTheBoundary"), "Condition")
		}, "grants iam:CreateRole, iam:PutRolePolicy, iam:DeleteRolePolicy, iam:PutRolePermissionsBoundary without the condition"},
		{"another boundary", func(r map[string]any) {
			statementOf(r, "PipelineStackRole", "RolesUnderTheBoundary")["Condition"] = map[string]any{
				"StringEquals": map[string]any{"iam:PermissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"}}
		}, "RolesUnderTheBoundary): grants iam:CreateRole"},
		{"attach by wildcard", func(r map[string]any) {
			st := statementOf(r, "AppStackRole", "RoleLifecycle")
			st["Action"] = append(st["Action"].([]any), "iam:Attach*")
		}, "grants iam:Attach* without the condition"},
		{"boundary removal", func(r map[string]any) {
			st := statementOf(r, "AppStackRole", "RoleLifecycle")
			st["Action"] = append(st["Action"].([]any), "iam:DeleteRolePermissionsBoundary")
		}, "a role's boundary must never be removable"},
		{"lifecycle beyond the path", func(r map[string]any) {
			statementOf(r, "PipelineStackRole", "RoleLifecycle")["Resource"] = map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
		}, "writes without the boundary key only on the project's role paths"},
		{"deny dropped", func(r map[string]any) {
			statementOf(r, "AppStackRole", "BoundaryStays")["Effect"] = "Allow"
		}, "AppStackRole: grants IAM writes without a Deny"},
		{"removal deny dropped", func(r map[string]any) {
			statementOf(r, "PipelineStackRole", "BoundaryNotRemovable")["Action"] = []any{"iam:DeletePolicy"}
		}, "without an unconditional Deny of iam:DeleteRolePermissionsBoundary"},
	})
}

// checkBoundaryPolicy: the boundary the control plane creates denies IAM writes, other roles,
// Organizations and account actions, and reaches none of the control plane's resources but
// the two the pipeline needs (objects in the artifacts bucket, invoking the deployer).
func checkBoundaryPolicy(t *tmpl) []string {
	var problems []string
	ids := boundaryPolicies(t)
	if len(ids) != 1 || !ids["ProjectBoundary"] {
		return []string{fmt.Sprintf("%s: want one boundary policy, ProjectBoundary, required by the deploy roles; got %v", t.name, sortedKeys(ids))}
	}
	_, props := t.resource("ProjectBoundary")
	env := newSampleEnv(t, controlPlaneStack, nil)
	type deny struct {
		actions   []string
		not       bool // NotAction
		resources []string
	}
	var denies []deny
	for _, s := range statements(props["PolicyDocument"]) {
		st := s.(map[string]any)
		if st["Effect"] == "Allow" {
			for _, a := range stringList(st["Action"]) {
				if s := fmt.Sprint(a); strings.HasPrefix(s, "iam:") && s != "iam:PassRole" {
					problems = append(problems, fmt.Sprintf("%s: ProjectBoundary allows %s", t.name, s))
				}
			}
			continue
		}
		d := deny{}
		key := "Action"
		if st["NotAction"] != nil {
			key, d.not = "NotAction", true
		}
		for _, a := range stringList(st[key]) {
			d.actions = append(d.actions, fmt.Sprint(a))
		}
		for _, r := range stringList(st["Resource"]) {
			s, err := env.evalString(r)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: ProjectBoundary: %v", t.name, err))
				continue
			}
			d.resources = append(d.resources, s)
		}
		denies = append(denies, d)
	}
	denied := func(action, resource string) bool {
		for _, d := range denies {
			match := false
			for _, a := range d.actions {
				match = match || actionCovers(a, action)
			}
			if match == d.not {
				continue
			}
			for _, r := range d.resources {
				if arnLike(r, resource) {
					return true
				}
			}
		}
		return false
	}
	expect := func(action, resource string, want bool) {
		if denied(action, resource) != want {
			verb := "does not deny"
			if !want {
				verb = "denies"
			}
			problems = append(problems, fmt.Sprintf("%s: ProjectBoundary %s %s on %s", t.name, verb, action, resource))
		}
	}
	for _, a := range []string{"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:CreateUser", "iam:CreateAccessKey",
		"iam:UpdateAssumeRolePolicy", "iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "sts:AssumeRole",
		"organizations:LeaveOrganization", "account:PutAlternateContact"} {
		expect(a, "arn:aws:iam::123456789012:role/anything", true)
	}
	for _, id := range t.resourceIDs() {
		typ, _ := t.resource(id)
		arn, _ := env.physical(id, "Arn")
		switch typ {
		case "AWS::DynamoDB::Table":
			expect("dynamodb:DeleteTable", arn.(string), true)
			expect("dynamodb:PutItem", arn.(string), true)
		case "AWS::SQS::Queue":
			expect("sqs:PurgeQueue", arn.(string), true)
		case "AWS::SNS::Topic":
			ref, _ := env.physical(id, "")
			expect("sns:Publish", ref.(string), true)
		case "AWS::Events::Rule":
			expect("events:PutTargets", arn.(string), true)
		case "AWS::S3::Bucket":
			expect("s3:PutBucketPolicy", arn.(string), true)
			expect("s3:DeleteObject", arn.(string)+"/x", true)
			expect("s3:GetObject", arn.(string)+"/x", false)
			expect("s3:PutObject", arn.(string)+"/x", false)
		case "AWS::CodeCommit::Repository":
			expect("codecommit:DeleteRepository", arn.(string), true)
			expect("codecommit:GetCommit", arn.(string), false)
		case "AWS::Serverless::Function":
			a := arn.(string)
			expect("lambda:UpdateFunctionCode", a, true)
			expect("lambda:AddPermission", a+":live", true)
			expect("lambda:InvokeFunction", a, id != "DeployerFunction")
		case "AWS::Logs::LogGroup":
			expect("logs:DeleteLogGroup", strings.TrimSuffix(arn.(string), ":*"), true)
		}
	}
	return problems
}

func TestBoundaryPolicy(t *testing.T) {
	expectNoProblems(t, checkBoundaryPolicy(controlPlane(t)))
}

func TestCheckBoundaryPolicyFails(t *testing.T) {
	runMutations(t, controlPlane(t), checkBoundaryPolicy, []mutation{
		{"table reachable", func(r map[string]any) {
			for _, s := range at(r, res("ProjectBoundary", "PolicyDocument", "Statement")...).([]any) {
				if at(s, "Sid") == "NotTheControlPlaneTable" {
					s.(map[string]any)["Action"] = "dynamodb:DeleteTable"
				}
			}
		}, "does not deny dynamodb:PutItem"},
		{"IAM allowed", func(r map[string]any) {
			st := at(r, res("ProjectBoundary", "PolicyDocument", "Statement", 0)...).(map[string]any)
			st["Action"] = append(st["Action"].([]any), "iam:CreateRole")
		}, "ProjectBoundary allows iam:CreateRole"},
		{"deployer open", func(r map[string]any) {
			for _, s := range at(r, res("ProjectBoundary", "PolicyDocument", "Statement")...).([]any) {
				if at(s, "Sid") == "TheDeployerIsOnlyInvoked" {
					s.(map[string]any)["NotAction"] = "lambda:*"
				}
			}
		}, "does not deny lambda:UpdateFunctionCode on arn:aws:lambda:eu-west-1:123456789012:function:my-lambda-control-plane-deployer"},
	})
}

// arnLike matches an IAM resource pattern ("*" any run of characters, "?" one character,
// case-sensitive) against an ARN.
func arnLike(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if arnLike(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && arnLike(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && arnLike(pattern[1:], s[1:])
}
