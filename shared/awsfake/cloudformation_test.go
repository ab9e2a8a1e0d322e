package awsfake_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/lambda-pipeline/lambda-pipeline/shared/awsfake"
)

const stackName = "my-lambda-app"

func scriptUpdate(fake *awsfake.CloudFormation, t0 time.Time) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	fake.AddStackEvents(stackName,
		awsfake.StackEvent{LogicalResourceID: stackName, ResourceType: "AWS::CloudFormation::Stack", Status: "UPDATE_IN_PROGRESS", Reason: "User Initiated", Timestamp: at(0)},
		awsfake.StackEvent{LogicalResourceID: "Function", PhysicalResourceID: "my-fn", ResourceType: "AWS::Lambda::Function", Status: "UPDATE_IN_PROGRESS", Timestamp: at(2)},
		awsfake.StackEvent{LogicalResourceID: "Function", PhysicalResourceID: "my-fn", ResourceType: "AWS::Lambda::Function", Status: "UPDATE_FAILED",
			Reason: "Resource handler returned message: \"Unzipped size must be smaller than 262144000 bytes\"", Timestamp: at(5)},
		awsfake.StackEvent{LogicalResourceID: stackName, ResourceType: "AWS::CloudFormation::Stack", Status: "UPDATE_ROLLBACK_IN_PROGRESS",
			Reason: "The following resource(s) failed to update: [Function].", Timestamp: at(6)},
	)
}

func TestDescribeStackEventsNewestFirstPaged(t *testing.T) {
	fake := awsfake.NewCloudFormation(t)
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	scriptUpdate(fake, t0)
	fake.SetStackEventsPageSize(3)

	p := cloudformation.NewDescribeStackEventsPaginator(fake.Client(t), &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackName)})
	var events []types.StackEvent
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		events = append(events, out.StackEvents...)
	}
	if pages != 2 || len(events) != 4 {
		t.Fatalf("%d pages, %d events; want 2 and 4", pages, len(events))
	}
	first, failed := events[0], events[1]
	if first.ResourceStatus != types.ResourceStatusUpdateRollbackInProgress || aws.ToString(first.ResourceType) != "AWS::CloudFormation::Stack" ||
		!aws.ToTime(first.Timestamp).Equal(t0.Add(6*time.Second)) || !strings.HasPrefix(aws.ToString(first.StackId), "arn:aws:cloudformation:us-east-1:") ||
		aws.ToString(first.PhysicalResourceId) != aws.ToString(first.StackId) || aws.ToString(first.StackName) != stackName {
		t.Errorf("newest event = %+v", first)
	}
	if failed.ResourceStatus != types.ResourceStatusUpdateFailed || aws.ToString(failed.LogicalResourceId) != "Function" ||
		aws.ToString(failed.ResourceStatusReason) != "Resource handler returned message: \"Unzipped size must be smaller than 262144000 bytes\"" ||
		aws.ToString(failed.EventId) != "Function-UPDATE_FAILED-2026-11-20T10:00:05.000Z" {
		t.Errorf("failed event = %+v", failed)
	}
	if events[3].ResourceStatus != types.ResourceStatusUpdateInProgress {
		t.Errorf("oldest event = %s, want UPDATE_IN_PROGRESS", events[3].ResourceStatus)
	}
}

func TestDescribeStackEventsErrors(t *testing.T) {
	fake := awsfake.NewCloudFormation(t)
	c := fake.Client(t)
	describe := func(stack string) error {
		_, err := c.DescribeStackEvents(context.Background(), &cloudformation.DescribeStackEventsInput{StackName: aws.String(stack)})
		return err
	}
	// ValidationError is not a modeled error: the SDK gives a generic API error with its code.
	var apiErr smithy.APIError
	if err := describe("nope"); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationError" || apiErr.ErrorMessage() != "Stack [nope] does not exist" {
		t.Errorf("missing stack: err = %v", err)
	}

	// A deleted stack is found by its id only.
	id, err := fake.CreateStack(stackName)
	if err != nil {
		t.Fatal(err)
	}
	fake.DeleteStack(stackName)
	if err := describe(stackName); err == nil {
		t.Error("deleted stack found by name")
	}
	if err := describe(id); err != nil {
		t.Errorf("deleted stack by id: %v", err)
	}

	fake.FailNext(awsfake.OpDescribeStackEvents, awsfake.QueryAccessDeniedFor("cloudformation:DescribeStackEvents"), 1)
	if err := describe(id); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDenied" ||
		!strings.Contains(apiErr.ErrorMessage(), "not authorized to perform: cloudformation:DescribeStackEvents") {
		t.Errorf("denied: err = %v", err)
	}
	// CloudFormation's throttle code is retried by the SDK.
	fake.FailNext(awsfake.OpDescribeStackEvents, awsfake.QueryThrottling, 1)
	before := fake.Calls(awsfake.OpDescribeStackEvents)
	if err := describe(id); err != nil {
		t.Errorf("one throttle: %v", err)
	}
	if n := fake.Calls(awsfake.OpDescribeStackEvents) - before; n != 2 {
		t.Errorf("one throttle: %d calls, want 2", n)
	}

	fake.Hang(awsfake.OpDescribeStackEvents, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(id)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung call: err = %v, want the caller's deadline", err)
	}
}

// The wire format, for a reader that is not the SDK: form-encoded request, XML answers with
// the service's namespace, XML errors with Type, Code and Message.
func TestCloudFormationSpeaksTheQueryProtocol(t *testing.T) {
	fake := awsfake.NewCloudFormation(t)
	scriptUpdate(fake, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	post := func(form string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, fake.URL()+"/", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		cfg := fake.Config()
		creds, _ := cfg.Credentials.Retrieve(context.Background())
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, v4Hash(form), "cloudformation", cfg.Region, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, body := post("Action=DescribeStackEvents&Version=2010-05-15&StackName=" + stackName)
	if status != 200 || !strings.Contains(body, `<DescribeStackEventsResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStackEventsResult><StackEvents><member>`) ||
		!strings.Contains(body, "<ResponseMetadata><RequestId>") {
		t.Errorf("answer %d: %s", status, body)
	}
	status, body = post("Action=DescribeStackEvents&Version=2010-05-15&StackName=gone")
	if status != 400 || !strings.Contains(body, `<Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack [gone] does not exist</Message></Error>`) {
		t.Errorf("error %d: %s", status, body)
	}
	// UpdateStack is not faked (the deployer goes through change sets); DescribeStacks is.
	status, body = post("Action=UpdateStack&Version=2010-05-15")
	if status != 400 || !strings.Contains(body, "<Code>InvalidAction</Code>") {
		t.Errorf("unknown action %d: %s", status, body)
	}
}

func v4Hash(body string) string {
	sum := sha256.Sum256([]byte(body))
	return hex.EncodeToString(sum[:])
}
