package deploy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-lambda-go/cfn"
)

// MaxReplyBody is the limit on a custom resource response body, in bytes ("Custom resource
// response objects",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/crpg-ref-responses.html).
const MaxReplyBody = 4096

// pipelineCapabilities are what infrastructure/pipeline.yml needs acknowledged (IAM roles with
// generated names), as its SelfUpdate action acknowledges them.
var pipelineCapabilities = []string{"CAPABILITY_IAM"}

// Replier sends a custom resource response to the request's ResponseURL.
type Replier interface {
	Reply(ctx context.Context, responseURL string, body []byte) error
}

// HTTPReplier PUTs the response as aws-lambda-go's cfn package does: no Content-Type (the URL
// is a presigned S3 PUT), success only on 200.
type HTTPReplier struct {
	Client *http.Client // default http.DefaultClient
}

// Reply PUTs body to responseURL.
func (r HTTPReplier) Reply(ctx context.Context, responseURL string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, responseURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("reply to CloudFormation: %w", err)
	}
	req.Header.Del("Content-Type")
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL carries a signature: name the host only.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("reply to CloudFormation at %s: %w", hostOf(responseURL), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reply to CloudFormation at %s: status %d", hostOf(responseURL), resp.StatusCode)
	}
	return nil
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "the response URL"
}

// CustomResource answers the control plane's Custom::PipelineStack resource: Create and
// Update deploy Template (infrastructure/pipeline.yml) to the StackName property with the
// other properties as parameters, through the RoleARN property; Delete deletes the stack.
//
// It always answers CloudFormation, SUCCESS or FAILED with a reason, as aws-lambda-go's
// cfn.LambdaWrap does (a panic included), so the control-plane stack never hangs. It polls the
// deploy within the invocation until it ends or the Poller's deadline (the function's timeout,
// 900 s in template.yaml, less the reserve); a deploy still running then is answered FAILED
// with a reason saying so. The physical resource id is the stack name.
type CustomResource struct {
	Engine   *Engine
	Template []byte
	Reply    Replier
	Poll     Poller
	Log      *slog.Logger
	// Gate checks Template before it is deployed (the rules only: the control plane's own
	// deploy, run by whoever deploys template.yaml, has nobody else to wait for).
	Gate *Gate
	// DryRun validates the request and reports the answer it would give after deploying,
	// without calling CloudFormation or replying (local runs: scripts/invoke).
	DryRun bool
}

// CustomReply is the response body (cfn.Response, with its JSON names).
type CustomReply struct {
	Status             cfn.StatusType `json:"Status"`
	Reason             string         `json:"Reason,omitempty"`
	PhysicalResourceID string         `json:"PhysicalResourceId"`
	StackID            string         `json:"StackId"`
	RequestID          string         `json:"RequestId"`
	LogicalResourceID  string         `json:"LogicalResourceId"`
	NoEcho             bool           `json:"NoEcho,omitempty"`
	Data               map[string]any `json:"Data,omitempty"`
}

// notCreatedPrefix marks the physical id of a resource whose Create failed before it named a
// stack: not a stack name (":" is not allowed in one), so its Delete deletes nothing.
const notCreatedPrefix = "not-created:"

// Handle answers one request. It returns an error only when the answer could not be sent
// (Lambda then retries the invocation; the deploy steps are idempotent).
func (c *CustomResource) Handle(ctx context.Context, ev cfn.Event) (reply CustomReply, err error) {
	reply = CustomReply{RequestID: ev.RequestID, StackID: ev.StackID, LogicalResourceID: ev.LogicalResourceID, PhysicalResourceID: ev.PhysicalResourceID}
	defer func() {
		if p := recover(); p != nil {
			c.log().ErrorContext(ctx, "custom resource handler panicked", "requestId", ev.RequestID, "panic", fmt.Sprint(p))
			reply.Status, reply.Reason, reply.Data = cfn.StatusFailed, "Function panicked, see log stream for details", nil
			if reply.PhysicalResourceID == "" {
				reply.PhysicalResourceID = notCreatedPrefix + ev.RequestID
			}
			reply, err = c.send(ctx, ev, reply)
		}
	}()
	reply = c.decide(ctx, ev, reply)
	if c.DryRun {
		c.log().InfoContext(ctx, "custom resource planned (dry run)", "requestType", string(ev.RequestType), "requestId", ev.RequestID,
			"physicalResourceId", reply.PhysicalResourceID, "status", string(reply.Status), "reason", reply.Reason)
		return reply, nil
	}
	return c.send(ctx, ev, reply)
}

// Reject answers FAILED to a request that does not decode (reason says why), so that
// CloudFormation fails the resource now instead of waiting for the request's timeout ("If a
// FAILED response or no response is returned, the operation fails", "Custom resources",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html).
// ev holds what could be read of the request. A ResponseURL that is not an http(s) URL gets no
// answer: the rejection is only logged. It returns an error only when the answer could not be
// delivered.
func (c *CustomResource) Reject(ctx context.Context, ev cfn.Event, reason error) (CustomReply, error) {
	reply := CustomReply{Status: cfn.StatusFailed, Reason: "malformed custom resource request: " + reason.Error(),
		RequestID: ev.RequestID, StackID: ev.StackID, LogicalResourceID: ev.LogicalResourceID,
		// Names no stack, so that a Delete that follows deletes nothing.
		PhysicalResourceID: cmp.Or(ev.PhysicalResourceID, notCreatedPrefix+cmp.Or(ev.RequestID, "malformed-request"))}
	if u, err := url.Parse(ev.ResponseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		c.log().ErrorContext(ctx, "custom resource request rejected; its ResponseURL is not a URL, so no answer is sent",
			"requestId", ev.RequestID, "reason", reply.Reason)
		return reply, nil
	}
	if c.DryRun {
		c.log().InfoContext(ctx, "custom resource rejected (dry run)", "requestId", ev.RequestID, "status", string(reply.Status), "reason", reply.Reason)
		return reply, nil
	}
	return c.send(ctx, ev, reply)
}

// decide runs the request and fills in the answer.
func (c *CustomResource) decide(ctx context.Context, ev cfn.Event, reply CustomReply) CustomReply {
	failed := func(reason string) CustomReply {
		reply.Status, reply.Reason = cfn.StatusFailed, reason
		return reply
	}
	props, perr := ParsePipelineStackProperties(ev.ResourceProperties)
	if ev.RequestType == cfn.RequestDelete {
		// The physical id is the stack the resource created (or a not-created marker).
		stack := ev.PhysicalResourceID
		if ValidateStackName(stack) != nil {
			reply.Status, reply.Reason = cfn.StatusSuccess, fmt.Sprintf("%s names no stack: nothing to delete", stack)
			return reply
		}
		if c.DryRun {
			reply.Status, reply.Reason = cfn.StatusSuccess, fmt.Sprintf("would delete stack %s (dry run: nothing sent to AWS)", stack)
			return reply
		}
		req := DeleteRequest{StackName: stack, Token: ev.RequestID}
		if perr == nil {
			req.RoleARN = props.RoleARN
		}
		out, err := c.Poll.Run(ctx, Progress{}, func(ctx context.Context, p Progress) (Outcome, error) {
			req.Progress = p
			return c.Engine.StepDelete(ctx, req)
		})
		switch {
		case err != nil:
			return failed(fmt.Sprintf("deleting stack %s: %v", stack, err))
		case out.Status == StatusDone:
			reply.Status, reply.Reason = cfn.StatusSuccess, out.Reason
			return reply
		case out.Status == StatusFailed:
			return failed(out.Reason)
		}
		return failed(c.outOfTime(ctx, out))
	}

	if perr != nil {
		if ev.RequestType == cfn.RequestCreate {
			reply.PhysicalResourceID = notCreatedPrefix + ev.RequestID
		}
		return failed(perr.Error())
	}
	// Create names the new stack; an Update that changes StackName replaces the resource
	// (CloudFormation then deletes the old physical id, the old stack).
	reply.PhysicalResourceID = props.StackName
	if ev.RequestType == cfn.RequestUpdate && ev.PhysicalResourceID != "" && ev.PhysicalResourceID != props.StackName {
		c.log().InfoContext(ctx, "pipeline stack renamed: replacing", "from", ev.PhysicalResourceID, "to", props.StackName)
	}
	// An Update of the same stack keeps the stack's template and changes only the parameters:
	// after its first run the pipeline keeps its own stack current from the repository, and
	// the template built into this binary may be older than that one. Create (and an Update
	// that renames the stack, or finds it gone) creates the stack from the built-in template.
	req := Request{StackName: props.StackName, TemplateBody: string(c.Template), Parameters: props.Parameters,
		Capabilities: pipelineCapabilities, RoleARN: props.RoleARN, Token: ev.RequestID,
		KeepTemplate: ev.RequestType == cfn.RequestUpdate && ev.PhysicalResourceID == props.StackName}
	if c.Gate != nil {
		if msg := c.Gate.Check(req.StackName, "the deployer's built-in pipeline.yml", req.TemplateBody); msg != "" {
			return c.keepOnFailure(ev, Outcome{}, failed(msg))
		}
	}
	if c.DryRun {
		reply.Status = cfn.StatusSuccess
		reply.Reason = fmt.Sprintf("would deploy stack %s through change set %s with parameters %s, role %s (dry run: nothing sent to AWS)",
			req.StackName, ChangeSetName(req.Token), describeOverrides(req.Parameters), req.RoleARN)
		return reply
	}
	out, err := c.Poll.Run(ctx, Progress{}, func(ctx context.Context, p Progress) (Outcome, error) {
		req.Progress = p
		return c.Engine.Step(ctx, req)
	})
	if err != nil {
		return c.keepOnFailure(ev, out, failed(fmt.Sprintf("deploying stack %s: %v", props.StackName, err)))
	}
	switch out.Status {
	case StatusDone:
		reply.Status, reply.Reason = cfn.StatusSuccess, out.Reason
		reply.Data = map[string]any{"StackId": out.StackID}
		for k, v := range out.Outputs {
			reply.Data[k] = v
		}
		return reply
	case StatusFailed:
		return c.keepOnFailure(ev, out, failed(out.Reason))
	}
	return c.keepOnFailure(ev, out, failed(c.outOfTime(ctx, out)))
}

// keepOnFailure sets the physical id of a failed Create or Update. A failed Update keeps the
// old id, so that CloudFormation's rollback does not read it as a replacement. A failed Create
// names the stack when this deploy created it, so that the rollback's Delete removes what the
// create left; when the stack was there before (or never came to be), the id names no stack,
// so that the rollback deletes nothing it did not create.
func (c *CustomResource) keepOnFailure(ev cfn.Event, out Outcome, reply CustomReply) CustomReply {
	switch {
	case ev.RequestType == cfn.RequestUpdate && ev.PhysicalResourceID != "":
		reply.PhysicalResourceID = ev.PhysicalResourceID
	case ev.RequestType == cfn.RequestCreate && !out.Progress.Created:
		reply.PhysicalResourceID = notCreatedPrefix + ev.RequestID
	}
	return reply
}

func (c *CustomResource) outOfTime(ctx context.Context, out Outcome) string {
	left := "its timeout"
	if d, ok := ctx.Deadline(); ok {
		left = fmt.Sprintf("its timeout (%s left)", d.Sub(c.Poll.now()).Round(time.Second))
	}
	return fmt.Sprintf("%s. The deployer stopped waiting before %s; CloudFormation carries on with the stack, so check it in the console and retry", out.Reason, left)
}

// send replies to CloudFormation, with a body within MaxReplyBody: Data goes first, then the
// reason is shortened. It tries three times (a network error, a 5xx).
func (c *CustomResource) send(ctx context.Context, ev cfn.Event, reply CustomReply) (CustomReply, error) {
	if reply.PhysicalResourceID == "" {
		reply.PhysicalResourceID = ev.RequestID
	}
	body, reply := encodeReply(reply)
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = c.Reply.Reply(ctx, ev.ResponseURL, body); err == nil {
			break
		}
		if attempt < 3 && c.Poll.sleep(ctx, time.Duration(attempt)*time.Second) != nil {
			break
		}
	}
	attrs := []any{"requestType", string(ev.RequestType), "requestId", ev.RequestID, "logicalResourceId", ev.LogicalResourceID,
		"physicalResourceId", reply.PhysicalResourceID, "status", string(reply.Status), "reason", reply.Reason}
	if err != nil {
		c.log().ErrorContext(ctx, "custom resource answer not delivered", append(attrs, "error", err.Error())...)
		return reply, err
	}
	c.log().InfoContext(ctx, "custom resource answered", attrs...)
	return reply, nil
}

// encodeReply marshals reply within MaxReplyBody, dropping Data and then shortening Reason
// as needed; it returns the reply as sent.
func encodeReply(reply CustomReply) ([]byte, CustomReply) {
	body := marshalReply(reply)
	if len(body) <= MaxReplyBody {
		return body, reply
	}
	if len(reply.Data) > 0 {
		reply.Data = nil
		if body = marshalReply(reply); len(body) <= MaxReplyBody {
			return body, reply
		}
	}
	// Escaping makes the reason longer on the wire than in memory: shrink until it fits.
	for budget := min(len(reply.Reason), MaxReplyBody); budget > 0; {
		r := reply
		r.Reason = truncate(reply.Reason, budget)
		if body = marshalReply(r); len(body) <= MaxReplyBody {
			return body, r
		}
		budget -= len(body) - MaxReplyBody
	}
	reply.Reason = ""
	return marshalReply(reply), reply
}

// marshalReply is JSON without HTML escaping (a reason's "<" stays one byte).
func marshalReply(reply CustomReply) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(reply)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func (c *CustomResource) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}
