package infrastructure

import (
	"reflect"
	"slices"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/runstore"
)

// The deployer reaches the runs table for approvals only: GetItem and PutItem, on items whose
// partition key starts with the prefix runstore writes them under (dynamodb:LeadingKeys), and
// it may read the stacks' current templates for the widening.
func TestDeployerTableAccessIsApprovalsOnly(t *testing.T) {
	cp := controlPlane(t)
	for _, s := range at(cp.root, res("DeployerRole", "Policies", 0, "PolicyDocument", "Statement")...).([]any) {
		st := s.(map[string]any)
		var dynamo []string
		for _, a := range stringList(st["Action"]) {
			if s, _ := a.(string); len(s) > 9 && s[:9] == "dynamodb:" {
				dynamo = append(dynamo, s)
			}
		}
		if len(dynamo) == 0 {
			continue
		}
		slices.Sort(dynamo)
		if !reflect.DeepEqual(dynamo, []string{"dynamodb:GetItem", "dynamodb:PutItem"}) {
			t.Errorf("statement %v grants %v; the deployer asks (PutItem) and reads (GetItem) approvals only", st["Sid"], dynamo)
		}
		if at(st, "Resource", "Fn::GetAtt") == nil || at(st, "Resource", "Fn::GetAtt").([]any)[0] != "RunsTable" {
			t.Errorf("statement %v is on %v, want the runs table itself (no index, no stream)", st["Sid"], st["Resource"])
		}
		keys := at(st, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys")
		if !reflect.DeepEqual(keys, []any{runstore.ApprovalPrefix + "*"}) {
			t.Errorf("statement %v: dynamodb:LeadingKeys %v, want [%s*] (ForAllValues:StringLike)", st["Sid"], keys, runstore.ApprovalPrefix)
		}
	}
	if !slices.Contains(stringList(statementOf(cp.root, "DeployerRole", "Stacks")["Action"]), any("cloudformation:GetTemplate")) {
		t.Error("the deployer cannot read a stack's template (cloudformation:GetTemplate), which the policy gate compares")
	}
}
