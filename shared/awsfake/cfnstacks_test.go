package awsfake_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const tmpl = `AWSTemplateFormatVersion: "2010-09-09"
Description: test stack
Parameters:
  Key:
    Type: String
  Size:
    Type: Number
    Default: 3
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties: {}
  Queue:
    Type: AWS::SQS::Queue
    Properties: {}
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Role: !GetAtt Role.Arn
Outputs:
  FunctionName:
    Value: !Ref Function
`

// cfnClient drives the fake through the SDK; time moves only when it says so (fake.Advance).
type cfnClient struct {
	t    *testing.T
	c    *cloudformation.Client
	fake *awsfake.CloudFormation
}

func newCFNClient(t *testing.T) (*awsfake.CloudFormation, cfnClient) {
	fake := awsfake.NewCloudFormation(t)
	return fake, cfnClient{t, fake.Client(t), fake}
}

func (c cfnClient) createChangeSet(name, typ string, params ...types.Parameter) (*cloudformation.CreateChangeSetOutput, error) {
	return c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{
		StackName: aws.String(stackName), ChangeSetName: aws.String(name), ChangeSetType: types.ChangeSetType(typ),
		TemplateBody: aws.String(tmpl), Parameters: params, Capabilities: []types.Capability{types.CapabilityCapabilityIam},
		ClientToken: aws.String(name),
	})
}

func (c cfnClient) describeChangeSet(name string) *cloudformation.DescribeChangeSetOutput {
	c.t.Helper()
	out, err := c.c.DescribeChangeSet(context.Background(), &cloudformation.DescribeChangeSetInput{StackName: aws.String(stackName), ChangeSetName: aws.String(name)})
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c cfnClient) status() string {
	c.t.Helper()
	out, err := c.c.DescribeStacks(context.Background(), &cloudformation.DescribeStacksInput{StackName: aws.String(stackName)})
	if err != nil {
		c.t.Fatal(err)
	}
	return string(out.Stacks[0].StackStatus)
}

// statuses describes the stack every simulated second until no operation runs on it,
// returning each status seen.
func (c cfnClient) statuses() []string {
	c.t.Helper()
	var seen []string
	for range 3600 {
		st := c.status()
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if !strings.HasSuffix(st, "_IN_PROGRESS") || st == "REVIEW_IN_PROGRESS" {
			return seen
		}
		c.fake.Advance(time.Second)
	}
	c.t.Fatalf("the stack is still moving after an hour: %v", seen)
	return nil
}

// changeSetStatuses describes the change set every simulated second until it is created or
// failed, returning each "Status/ExecutionStatus" seen.
func (c cfnClient) changeSetStatuses(name string) []string {
	c.t.Helper()
	var seen []string
	for range 600 {
		d := c.describeChangeSet(name)
		st := string(d.Status) + "/" + string(d.ExecutionStatus)
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if d.Status != types.ChangeSetStatusCreatePending && d.Status != types.ChangeSetStatusCreateInProgress {
			return seen
		}
		c.fake.Advance(time.Second)
	}
	c.t.Fatalf("change set %s still pending after 10 minutes: %v", name, seen)
	return nil
}

func (c cfnClient) execute(name, token string) error {
	_, err := c.c.ExecuteChangeSet(context.Background(), &cloudformation.ExecuteChangeSetInput{
		StackName: aws.String(stackName), ChangeSetName: aws.String(name), ClientRequestToken: aws.String(token)})
	return err
}

func keyParam(v string) types.Parameter {
	return types.Parameter{ParameterKey: aws.String("Key"), ParameterValue: aws.String(v)}
}

// createStack takes a new stack through a CREATE change set to CREATE_COMPLETE.
func createStack(t *testing.T, c cfnClient) {
	t.Helper()
	if _, err := c.createChangeSet("cs1", "CREATE", keyParam("a")); err != nil {
		t.Fatal(err)
	}
	c.changeSetStatuses("cs1")
	if err := c.execute("cs1", "tok1"); err != nil {
		t.Fatal(err)
	}
	c.statuses()
}

func apiErr(t *testing.T, err error) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae
}

func TestStackLifecycleFollowsRealSequences(t *testing.T) {
	fake, c := newCFNClient(t)

	out, err := c.createChangeSet("cs1", "CREATE", keyParam("a"))
	if err != nil {
		t.Fatal(err)
	}
	if st := c.status(); st != "REVIEW_IN_PROGRESS" {
		t.Errorf("after a CREATE change set: %s", st)
	}
	if cs, want := c.changeSetStatuses("cs1"), []string{"CREATE_PENDING/UNAVAILABLE", "CREATE_IN_PROGRESS/UNAVAILABLE", "CREATE_COMPLETE/AVAILABLE"}; !equal(cs, want) {
		t.Errorf("change set: %v, want %v", cs, want)
	}
	if err := c.execute("cs1", "tok1"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.statuses(), []string{"CREATE_IN_PROGRESS", "CREATE_COMPLETE"}; !equal(got, want) {
		t.Errorf("create: %v, want %v", got, want)
	}
	d := c.describeChangeSet("cs1")
	if d.ExecutionStatus != types.ExecutionStatusExecuteComplete || aws.ToString(d.StackId) != aws.ToString(out.StackId) {
		t.Errorf("executed change set: %s %s", d.ExecutionStatus, aws.ToString(d.StackId))
	}
	st, _ := fake.Stack(stackName)
	if st.Parameters["Key"] != "a" || st.Parameters["Size"] != "3" || st.Outputs["FunctionName"] != stackName+"-FunctionName" {
		t.Errorf("stack: %+v", st)
	}

	// The same template and parameters (UsePreviousValue included): no changes.
	if _, err := c.createChangeSet("cs2", "UPDATE", types.Parameter{ParameterKey: aws.String("Key"), UsePreviousValue: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	c.changeSetStatuses("cs2")
	d = c.describeChangeSet("cs2")
	if d.Status != types.ChangeSetStatusFailed || d.ExecutionStatus != types.ExecutionStatusUnavailable || aws.ToString(d.StatusReason) != awsfake.NoChangesReason {
		t.Errorf("empty change set: %s %s %q", d.Status, d.ExecutionStatus, aws.ToString(d.StatusReason))
	}

	// A failing update rolls back.
	fake.FailNextDeploy(stackName, awsfake.DeployFailure{Resource: "Function", Reason: "bad code"})
	if _, err := c.createChangeSet("cs3", "UPDATE", keyParam("b")); err != nil {
		t.Fatal(err)
	}
	c.changeSetStatuses("cs3")
	if err := c.execute("cs3", "tok3"); err != nil {
		t.Fatal(err)
	}
	want := []string{"UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"}
	if got := c.statuses(); !equal(got, want) {
		t.Errorf("failed update: %v, want %v", got, want)
	}
	if d := c.describeChangeSet("cs3"); d.ExecutionStatus != types.ExecutionStatusExecuteFailed {
		t.Errorf("failed change set: %s", d.ExecutionStatus)
	}
	if st, _ := fake.Stack(stackName); st.Parameters["Key"] != "a" {
		t.Errorf("a rolled back update keeps the old parameters: %v", st.Parameters)
	}
	// Executing deleted the other change sets.
	if _, err := c.c.DescribeChangeSet(context.Background(), &cloudformation.DescribeChangeSetInput{StackName: aws.String(stackName), ChangeSetName: aws.String("cs2")}); err == nil {
		t.Error("cs2 survived the execution of cs3")
	} else {
		var nf *types.ChangeSetNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("missing change set: %v", err)
		}
	}
}

func TestFailedCreateRollsBackWithCascadeNoise(t *testing.T) {
	fake, c := newCFNClient(t)
	// Queue and Role start together; Function waits for Role. Queue fails while Role is still
	// being created: Role is cancelled, and Function never starts.
	fake.FailNextDeploy(stackName, awsfake.DeployFailure{Resource: "Queue", Reason: "Queue name taken"})
	createStack(t, c)
	if st := c.status(); st != "ROLLBACK_COMPLETE" {
		t.Fatalf("status %s", st)
	}
	var failed, cancelled, stackReason string
	for _, ev := range fake.Events(stackName) {
		switch {
		case ev.Status == "CREATE_FAILED" && ev.LogicalResourceID == "Queue":
			failed = ev.Reason
		case ev.Status == "CREATE_FAILED" && ev.LogicalResourceID == "Role":
			cancelled = ev.Reason
		case ev.Status == "ROLLBACK_IN_PROGRESS":
			stackReason = ev.Reason
		case ev.LogicalResourceID == "Function":
			t.Errorf("Function started although Role, which it depends on, never completed: %+v", ev)
		}
	}
	if failed != "Queue name taken" || cancelled != awsfake.ResourceCreationCancelled ||
		stackReason != "The following resource(s) failed to create: [Queue, Role]. Rollback requested by user." {
		t.Errorf("events: failed %q, cancelled %q, stack %q", failed, cancelled, stackReason)
	}

	// Only a delete is possible now, with CloudFormation's texts.
	_, err := c.createChangeSet("cs2", "UPDATE", keyParam("b"))
	st, _ := fake.Stack(stackName)
	if ae := apiErr(t, err); ae.ErrorCode() != "ValidationError" || ae.ErrorMessage() != "Stack:"+st.StackID+" is in ROLLBACK_COMPLETE state and can not be updated." {
		t.Errorf("update of ROLLBACK_COMPLETE: %v", err)
	}
	_, err = c.createChangeSet("cs2", "CREATE", keyParam("b"))
	if ae := apiErr(t, err); ae.ErrorMessage() != "Stack ["+stackName+"] already exists and cannot be created again with the changeSet [cs2]." {
		t.Errorf("create over an existing stack: %v", err)
	}
	if _, err := c.c.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(stackName), ClientRequestToken: aws.String("del")}); err != nil {
		t.Fatal(err)
	}
	if got := c.status(); got != "DELETE_IN_PROGRESS" {
		t.Errorf("delete: %v", got)
	}
	fake.Advance(time.Minute)
	_, err = c.c.DescribeStacks(context.Background(), &cloudformation.DescribeStacksInput{StackName: aws.String(stackName)})
	if ae := apiErr(t, err); ae.ErrorCode() != "ValidationError" || ae.ErrorMessage() != "Stack with id "+stackName+" does not exist" {
		t.Errorf("deleted stack by name: %v", err)
	}
	// By stack id, a deleted stack is still there.
	out, err := c.c.DescribeStacks(context.Background(), &cloudformation.DescribeStacksInput{StackName: aws.String(st.StackID)})
	if err != nil || out.Stacks[0].StackStatus != types.StackStatusDeleteComplete {
		t.Errorf("deleted stack by id: %v", err)
	}
}

func TestUpdateRollbackFailedAndContinue(t *testing.T) {
	fake, c := newCFNClient(t)
	createStack(t, c)
	fake.FailNextDeploy(stackName, awsfake.DeployFailure{Resource: "Function", Reason: "bad code", RollbackResource: "Role", RollbackReason: "cannot restore"})
	if _, err := c.createChangeSet("cs2", "UPDATE", keyParam("b")); err != nil {
		t.Fatal(err)
	}
	c.changeSetStatuses("cs2")
	if err := c.execute("cs2", "tok2"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.statuses(), []string{"UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED"}; !equal(got, want) {
		t.Errorf("failed rollback: %v", got)
	}
	// No change set on UPDATE_ROLLBACK_FAILED.
	if _, err := c.createChangeSet("cs3", "UPDATE", keyParam("c")); err == nil {
		t.Error("a change set on UPDATE_ROLLBACK_FAILED")
	}
	cont := func(token string) error {
		_, err := c.c.ContinueUpdateRollback(context.Background(), &cloudformation.ContinueUpdateRollbackInput{StackName: aws.String(stackName), ClientRequestToken: aws.String(token)})
		return err
	}
	if err := cont("cont"); err != nil {
		t.Fatal(err)
	}
	if got, want := c.statuses(), []string{"UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"}; !equal(got, want) {
		t.Errorf("continued rollback: %v", got)
	}
	var tokenErr *types.TokenAlreadyExistsException
	if err := cont("cont"); err == nil {
		t.Error("continue from UPDATE_ROLLBACK_COMPLETE")
	}
	// A token is used once per stack.
	if _, err := c.createChangeSet("cs4", "UPDATE", keyParam("d")); err != nil {
		t.Fatal(err)
	}
	c.changeSetStatuses("cs4")
	if err := c.execute("cs4", "tok2"); !errors.As(err, &tokenErr) {
		t.Errorf("reused token: %v", err)
	}
}

func TestChangeSetErrors(t *testing.T) {
	_, c := newCFNClient(t)
	if _, err := c.createChangeSet("cs1", "UPDATE", keyParam("a")); apiErr(t, err).ErrorMessage() != "Stack ["+stackName+"] does not exist" {
		t.Errorf("UPDATE of a missing stack: %v", err)
	}
	if _, err := c.createChangeSet("cs1", "CREATE"); apiErr(t, err).ErrorMessage() != "Parameters: [Key] must have values" {
		t.Errorf("missing parameter: %v", err)
	}
	_, err := c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{StackName: aws.String(stackName),
		ChangeSetName: aws.String("cs1"), ChangeSetType: types.ChangeSetTypeCreate, TemplateBody: aws.String(tmpl), Parameters: []types.Parameter{keyParam("a")}})
	var caps *types.InsufficientCapabilitiesException
	if !errors.As(err, &caps) || caps.ErrorMessage() != "Requires capabilities : [CAPABILITY_IAM]" {
		t.Errorf("capabilities: %v", err)
	}
	if _, err := c.createChangeSet("cs1", "CREATE", keyParam("a")); err != nil {
		t.Fatal(err)
	}
	// The same name and ClientToken is the same request; another token is a conflict.
	if _, err := c.createChangeSet("cs1", "CREATE", keyParam("a")); err != nil {
		t.Errorf("repeated request: %v", err)
	}
	_, err = c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{StackName: aws.String(stackName),
		ChangeSetName: aws.String("cs1"), ChangeSetType: types.ChangeSetTypeCreate, TemplateBody: aws.String(tmpl),
		Parameters: []types.Parameter{keyParam("a")}, Capabilities: []types.Capability{types.CapabilityCapabilityIam}})
	var exists *types.AlreadyExistsException
	if !errors.As(err, &exists) {
		t.Errorf("same name, no token: %v", err)
	}
	var invalid *types.InvalidChangeSetStatusException
	if err := c.execute("cs1", "tok"); !errors.As(err, &invalid) {
		t.Errorf("executing a pending change set: %v", err)
	}
}

func TestGetTemplateSummary(t *testing.T) {
	fake := awsfake.NewCloudFormation(t)
	out, err := fake.Client(t).GetTemplateSummary(context.Background(), &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String(tmpl)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Parameters) != 2 || aws.ToString(out.Parameters[0].ParameterKey) != "Key" || out.Parameters[0].DefaultValue != nil ||
		aws.ToString(out.Parameters[1].DefaultValue) != "3" || len(out.Capabilities) != 1 {
		t.Errorf("summary: %+v", out)
	}
	_, err = fake.Client(t).GetTemplateSummary(context.Background(), &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String("Resources: [")})
	if ae := apiErr(t, err); ae.ErrorCode() != "ValidationError" {
		t.Errorf("bad template: %v", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
