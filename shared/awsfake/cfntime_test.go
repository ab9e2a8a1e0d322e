package awsfake_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

// The fake follows CloudFormation's documented event sequences, in dependency order, on a
// clock (issue 9, defect 13).

// chain: Topic has no dependencies; Role waits for Topic (DependsOn); Function for Role
// (Fn::GetAtt) and Topic (Ref); Alias for Function (Fn::Sub); Logs for nothing but reads the
// parameter Key.
const chain = `Parameters:
  Key:
    Type: String
Resources:
  Alias:
    Type: AWS::Lambda::Alias
    Properties:
      Name: !Sub "${Function}-live"
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Role: !GetAtt Role.Arn
      Environment: { Variables: { TOPIC: { Ref: Topic } } }
  Role:
    Type: AWS::IAM::Role
    DependsOn: Topic
    Properties: {}
  Topic:
    Type: AWS::SNS::Topic
    Properties: {}
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: { "Fn::Sub": ["/${Prefix}/${Key}", { Prefix: app }] }
`

func (c cfnClient) deploy(name, typ, body, key string) {
	c.t.Helper()
	_, err := c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{
		StackName: aws.String(stackName), ChangeSetName: aws.String(name), ChangeSetType: types.ChangeSetType(typ),
		TemplateBody: aws.String(body), Parameters: []types.Parameter{keyParam(key)},
		Capabilities: []types.Capability{types.CapabilityCapabilityIam}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.changeSetStatuses(name)
	if err := c.execute(name, name+"-exec"); err != nil {
		c.t.Fatal(err)
	}
}

// eventsOf returns the events of one resource, oldest first.
func eventsOf(events []awsfake.StackEvent, id string) []awsfake.StackEvent {
	var out []awsfake.StackEvent
	for _, ev := range events {
		if ev.LogicalResourceID == id {
			out = append(out, ev)
		}
	}
	return out
}

func TestCreatedResourcesFollowTheDocumentedSequenceInDependencyOrder(t *testing.T) {
	fake, c := newCFNClient(t)
	c.deploy("cs1", "CREATE", chain, "a")
	if got := c.statuses(); !equal(got, []string{"CREATE_IN_PROGRESS", "CREATE_COMPLETE"}) {
		t.Fatalf("statuses %v", got)
	}
	events := fake.Events(stackName)
	for _, id := range []string{"Alias", "Function", "Role", "Topic", "Logs"} {
		evs := eventsOf(events, id)
		if len(evs) != 3 {
			t.Fatalf("%s: %d events, want 3: %+v", id, len(evs), evs)
		}
		first, initiated, done := evs[0], evs[1], evs[2]
		if first.Status != "CREATE_IN_PROGRESS" || first.PhysicalResourceID != "" || first.Reason != "" {
			t.Errorf("%s: first event %+v, want CREATE_IN_PROGRESS without a physical id", id, first)
		}
		if initiated.Status != "CREATE_IN_PROGRESS" || initiated.PhysicalResourceID == "" || initiated.Reason != awsfake.ResourceCreationInitiated {
			t.Errorf("%s: second event %+v, want CREATE_IN_PROGRESS %q with the physical id", id, initiated, awsfake.ResourceCreationInitiated)
		}
		if done.Status != "CREATE_COMPLETE" || done.PhysicalResourceID != initiated.PhysicalResourceID || !done.Timestamp.After(initiated.Timestamp) {
			t.Errorf("%s: last event %+v", id, done)
		}
	}
	startOf := func(id string) time.Time { return eventsOf(events, id)[0].Timestamp }
	endOf := func(id string) time.Time { return eventsOf(events, id)[2].Timestamp }
	for _, dep := range [][2]string{{"Role", "Topic"}, {"Function", "Role"}, {"Function", "Topic"}, {"Alias", "Function"}} {
		if startOf(dep[0]).Before(endOf(dep[1])) {
			t.Errorf("%s started at %s, before %s (which it depends on) completed at %s", dep[0], startOf(dep[0]), dep[1], endOf(dep[1]))
		}
	}
	if !startOf("Logs").Equal(startOf("Topic")) {
		t.Errorf("independent resources start together: Logs %s, Topic %s", startOf("Logs"), startOf("Topic"))
	}
	// The stack's own CREATE_COMPLETE comes last.
	if last := events[len(events)-1]; last.LogicalResourceID != stackName || last.Status != "CREATE_COMPLETE" || last.Timestamp.Before(endOf("Alias")) {
		t.Errorf("last event %+v", last)
	}
}

func TestNothingMovesUntilTimePasses(t *testing.T) {
	fake, c := newCFNClient(t)
	_, err := c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{
		StackName: aws.String(stackName), ChangeSetName: aws.String("cs1"), ChangeSetType: types.ChangeSetTypeCreate,
		TemplateBody: aws.String(chain), Parameters: []types.Parameter{keyParam("a")}, Capabilities: []types.Capability{types.CapabilityCapabilityIam}})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if d := c.describeChangeSet("cs1"); d.Status != types.ChangeSetStatusCreatePending {
			t.Fatalf("the change set moved without time passing: %s", d.Status)
		}
	}
	c.changeSetStatuses("cs1")
	if err := c.execute("cs1", "tok"); err != nil {
		t.Fatal(err)
	}
	n := len(fake.Events(stackName))
	for range 20 {
		if st := c.status(); st != "CREATE_IN_PROGRESS" {
			t.Fatalf("the stack moved without time passing: %s", st)
		}
	}
	if got := len(fake.Events(stackName)); got != n {
		t.Errorf("%d events appeared without time passing", got-n)
	}
	fake.Advance(10 * time.Minute)
	if st := c.status(); st != "CREATE_COMPLETE" {
		t.Errorf("after 10 minutes: %s", st)
	}
}

// A test's own clock drives the fake, and stamps its events.
func TestUseClock(t *testing.T) {
	fake, c := newCFNClient(t)
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	fake.UseClock(func() time.Time { return now })
	_, err := c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{
		StackName: aws.String(stackName), ChangeSetName: aws.String("cs1"), ChangeSetType: types.ChangeSetTypeCreate,
		TemplateBody: aws.String(chain), Parameters: []types.Parameter{keyParam("a")}, Capabilities: []types.Capability{types.CapabilityCapabilityIam}})
	if err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Hour) // the fake's own clock: no effect now
	if d := c.describeChangeSet("cs1"); d.Status != types.ChangeSetStatusCreatePending {
		t.Errorf("moved on the fake's own clock: %s", d.Status)
	}
	now = now.Add(time.Minute)
	if d := c.describeChangeSet("cs1"); d.Status != types.ChangeSetStatusCreateComplete {
		t.Errorf("did not move on the test's clock: %s", d.Status)
	}
	if ev := fake.Events(stackName)[0]; !ev.Timestamp.Equal(now.Add(-time.Minute)) {
		t.Errorf("REVIEW_IN_PROGRESS at %s, want %s", ev.Timestamp, now.Add(-time.Minute))
	}
}

// An update touches only what changed: a resource whose definition changed, one that reads a
// changed parameter, and what depends on a changed resource's attributes only if its own
// definition changed.
func TestUpdateTouchesOnlyWhatChanged(t *testing.T) {
	fake, c := newCFNClient(t)
	c.deploy("cs1", "CREATE", chain, "a")
	c.statuses()
	before := len(fake.Events(stackName))
	c.deploy("cs2", "UPDATE", strings.Replace(chain, "Properties: {}\n  Logs:", "Properties: { DisplayName: v2 }\n  Logs:", 1), "b")
	if got := c.statuses(); !equal(got, []string{"UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE"}) {
		t.Fatalf("statuses %v", got)
	}
	var touched []string
	for _, ev := range fake.Events(stackName)[before:] {
		if ev.LogicalResourceID != stackName && !slices.Contains(touched, ev.LogicalResourceID) {
			touched = append(touched, ev.LogicalResourceID)
		}
		if ev.LogicalResourceID != stackName && ev.PhysicalResourceID == "" {
			t.Errorf("an updated resource's event has no physical id: %+v", ev)
		}
	}
	slices.Sort(touched)
	if want := []string{"Logs", "Topic"}; !equal(touched, want) {
		t.Errorf("updated %v, want %v (Topic's definition changed, Logs reads Key)", touched, want)
	}
}

func TestNoChangesHasBothWordings(t *testing.T) {
	for _, reason := range []string{awsfake.NoChangesReason, awsfake.NoUpdatesReason} {
		fake, c := newCFNClient(t)
		c.deploy("cs1", "CREATE", chain, "a")
		c.statuses()
		fake.SetNoChangesReason(reason)
		_, err := c.c.CreateChangeSet(context.Background(), &cloudformation.CreateChangeSetInput{
			StackName: aws.String(stackName), ChangeSetName: aws.String("cs2"), TemplateBody: aws.String(chain),
			Parameters: []types.Parameter{keyParam("a")}, Capabilities: []types.Capability{types.CapabilityCapabilityIam}})
		if err != nil {
			t.Fatal(err)
		}
		got := c.changeSetStatuses("cs2")
		d := c.describeChangeSet("cs2")
		if got[len(got)-1] != "FAILED/UNAVAILABLE" || aws.ToString(d.StatusReason) != reason {
			t.Errorf("no changes: %v %q, want FAILED with %q", got, aws.ToString(d.StatusReason), reason)
		}
	}
}

func TestTemplateDependencyErrors(t *testing.T) {
	_, c := newCFNClient(t)
	for body, want := range map[string]string{
		"Resources:\n  A:\n    Type: AWS::SNS::Topic\n    DependsOn: B\n  B:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: !GetAtt A.TopicName\n": "Circular dependency between resources: [A, B]",
		"Resources:\n  A:\n    Type: AWS::SNS::Topic\n    Properties:\n      DisplayName: !Ref Nope\n":                                                              "Template format error: Unresolved resource dependencies [Nope] in the Resources block of the template",
	} {
		_, err := c.c.GetTemplateSummary(context.Background(), &cloudformation.GetTemplateSummaryInput{TemplateBody: aws.String(body)})
		if ae := apiErr(t, err); ae.ErrorCode() != "ValidationError" || ae.ErrorMessage() != want {
			t.Errorf("%v, want %q", err, want)
		}
	}
}

func TestDeleteGoesInReverseDependencyOrder(t *testing.T) {
	fake, c := newCFNClient(t)
	c.deploy("cs1", "CREATE", chain, "a")
	c.statuses()
	st, _ := fake.Stack(stackName)
	if _, err := c.c.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(stackName)}); err != nil {
		t.Fatal(err)
	}
	fake.Advance(10 * time.Minute)
	deleted := map[string]time.Time{}
	for _, ev := range fake.Events(st.StackID) {
		if ev.Status == "DELETE_COMPLETE" {
			deleted[ev.LogicalResourceID] = ev.Timestamp
		}
	}
	for _, dep := range [][2]string{{"Alias", "Function"}, {"Function", "Role"}, {"Role", "Topic"}} {
		if !deleted[dep[0]].Before(deleted[dep[1]]) {
			t.Errorf("%s deleted at %s, not before %s at %s", dep[0], deleted[dep[0]], dep[1], deleted[dep[1]])
		}
	}
	if _, ok := deleted[stackName]; !ok {
		t.Errorf("the stack was not deleted: %v", deleted)
	}
}
