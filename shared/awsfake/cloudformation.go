package awsfake

import (
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
)

// OpDescribeStackEvents is the CloudFormation operation the fake answers for scripted stacks;
// cfnstacks.go adds the stack lifecycle operations.
const OpDescribeStackEvents = "DescribeStackEvents"

// cfnVersion is the API version every CloudFormation query request names.
const cfnVersion = "2010-05-15"

const cfnXMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// Errors a query-protocol service (CloudFormation) answers with: the codes differ from the
// JSON services' (Throttling, not ThrottlingException; AccessDenied, not
// AccessDeniedException). The SDK's retryer retries Throttling.
var QueryThrottling = Error{Code: "Throttling", Status: http.StatusBadRequest, Message: "Rate exceeded"}

// QueryAccessDeniedFor is what CloudFormation answers when the caller's role lacks action
// (e.g. "cloudformation:DescribeStackEvents").
func QueryAccessDeniedFor(action string) Error {
	return Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: fmt.Sprintf("User: arn:aws:sts::%s:assumed-role/notifier-role/notifier is not authorized to perform: %s", fakeAccountID, action)}
}

// CloudFormation is a stateful fake of the CloudFormation API, which speaks the awsQuery
// protocol: a form-encoded POST (Action=DescribeStackEvents&Version=2010-05-15&StackName=…)
// answered with XML (<DescribeStackEventsResponse><DescribeStackEventsResult>…), errors as
// <ErrorResponse><Error><Type>Sender</Type><Code>…</Code><Message>…</Message></Error>. It
// answers DescribeStackEvents over scripted stacks, and the stack lifecycle (change sets,
// DescribeStacks, DeleteStack, ContinueUpdateRollback: cfnstacks.go), whose operations add
// their own events; calls can fail (FailNext) or hang (Hang). It is safe for concurrent use.
type CloudFormation struct {
	*endpoint
	*hangs

	mu       sync.Mutex
	stacks   map[string]*fakeStack // by stack id
	live     map[string]string     // stack name → id of the stack that has it now
	pageSize int
	seq      int
	life     cfnLife // the lifecycle's scripts (cfnstacks.go)
	// clock, when set, is the test's clock (UseClock); else manual is the time (Advance).
	clock  func() time.Time
	manual time.Time
}

type fakeStack struct {
	id, name string
	deleted  bool
	events   []StackEvent // oldest first
	state    *stackState  // status, template, change sets (cfnstacks.go); nil for a scripted stack until an operation touches it
}

// StackEvent is one scripted stack event. The fake fills in StackId, StackName and EventId.
// A stack-level event has ResourceType AWS::CloudFormation::Stack and the stack's name as
// LogicalResourceID ("Stack status codes",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
type StackEvent struct {
	LogicalResourceID, PhysicalResourceID, ResourceType string
	Status, Reason                                      string
	Timestamp                                           time.Time
	ClientRequestToken                                  string
}

// DefaultStackEventsPageSize is how many events a DescribeStackEvents page holds unless
// SetStackEventsPageSize says otherwise. AWS pages by size (1 MB), which is about this many
// events.
const DefaultStackEventsPageSize = 100

// NewCloudFormation starts a fake with no stacks; the test's Cleanup stops it.
func NewCloudFormation(tb testing.TB) *CloudFormation {
	tb.Helper()
	f := &CloudFormation{stacks: map[string]*fakeStack{}, live: map[string]string{}, pageSize: DefaultStackEventsPageSize, life: newCFNLife(),
		manual: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
	// The endpoint gives the configuration, FailNext and Calls; the query protocol is served here.
	f.endpoint = newEndpoint(tb, "CloudFormation", map[string]op{})
	f.hangs = newHangs()
	serveWith(tb, f.endpoint, f.hangs, http.HandlerFunc(f.serveQuery))
	return f
}

// Client returns an SDK client for the fake (see Config) that sends through HTTPClient;
// optFns apply last.
func (f *CloudFormation) Client(tb testing.TB, optFns ...func(*cloudformation.Options)) *cloudformation.Client {
	tb.Helper()
	return cloudformation.NewFromConfig(f.Config(), append([]func(*cloudformation.Options){func(o *cloudformation.Options) { o.HTTPClient = HTTPClient() }}, optFns...)...)
}

// SetStackEventsPageSize sets how many events a DescribeStackEvents page holds, to exercise
// pagination with few events.
func (f *CloudFormation) SetStackEventsPageSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pageSize = max(n, 1)
}

// CreateStack makes a stack with no events and returns its stack id (an ARN). A name that a
// live stack has is refused, as CloudFormation does.
func (f *CloudFormation) CreateStack(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.live[name]; ok {
		return "", fmt.Errorf("stack [%s] already exists", name)
	}
	return f.create(name).id, nil
}

// create makes a live stack. The caller holds f.mu.
func (f *CloudFormation) create(name string) *fakeStack {
	f.seq++
	id := fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/5fa1c000-0000-4000-8000-%012d", Region, fakeAccountID, name, f.seq)
	s := &fakeStack{id: id, name: name}
	f.stacks[id] = s
	f.live[name] = id
	return s
}

// AddStackEvents appends events, oldest first, to a stack known by name or id (a name not
// known yet creates the stack).
func (f *CloudFormation) AddStackEvents(stack string, events ...StackEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.find(stack)
	if s == nil {
		s = f.create(stack)
	}
	s.events = append(s.events, events...)
}

// DeleteStack marks a stack deleted: its name is free and no longer finds it, its stack id
// still does ("DescribeStacks": a deleted stack is found by its stack ID only,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html).
func (f *CloudFormation) DeleteStack(stack string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.find(stack); s != nil {
		s.deleted = true
		delete(f.live, s.name)
	}
}

// find looks a stack up by live name or by id. The caller holds f.mu.
func (f *CloudFormation) find(stack string) *fakeStack {
	if id, ok := f.live[stack]; ok {
		return f.stacks[id]
	}
	return f.stacks[stack]
}

// serveQuery is the awsQuery half: signature presence, form decoding, Action dispatch,
// injected failures and hangs, XML answers.
func (f *CloudFormation) serveQuery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeQueryError(w, &Error{Code: "InvalidAction", Status: http.StatusNotFound, Message: r.Method + " " + r.URL.Path})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeQueryError(w, &Error{Code: "MissingAuthenticationToken", Status: http.StatusForbidden, Message: "Request is missing Authentication Token"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeQueryError(w, clientError("MalformedQueryString", "Content-Type %q is not application/x-www-form-urlencoded", r.Header.Get("Content-Type")))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeQueryError(w, clientError("MalformedQueryString", "%v", err))
		return
	}
	action, version := r.PostForm.Get("Action"), r.PostForm.Get("Version")
	handle, ok := f.queryOps()[action]
	if !ok || version != cfnVersion {
		writeQueryError(w, clientError("InvalidAction", "Could not find operation %s for version %s", action, version))
		return
	}
	if f.take(action) {
		f.wait(r)
		return
	}
	if injected := takeInjected(f.endpoint, action); injected != nil {
		writeQueryError(w, injected)
		return
	}
	// Every answer is about the present: what was due by now has happened.
	f.mu.Lock()
	f.catchUp()
	f.mu.Unlock()
	out, apiErr := handle(r.PostForm)
	if apiErr != nil {
		writeQueryError(w, apiErr)
		return
	}
	data, err := xml.Marshal(out)
	if err != nil {
		writeQueryError(w, &Error{Code: "InternalFailure", Status: http.StatusInternalServerError, Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", requestID())
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(data)
}

// writeQueryError answers as CloudFormation does: an ErrorResponse whose Type is Sender for a
// client error and Receiver for a server one. The SDK reads Code and Message.
func writeQueryError(w http.ResponseWriter, e *Error) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	resp := struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		XMLNS   string   `xml:"xmlns,attr"`
		Error   struct {
			Type    string
			Code    string
			Message string
		}
		RequestID string `xml:"RequestId"`
	}{XMLNS: cfnXMLNS, RequestID: requestID()}
	resp.Error.Type, resp.Error.Code, resp.Error.Message = typ, e.Code, e.Message
	data, _ := xml.Marshal(resp)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", resp.RequestID)
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(data)
}

type xmlStackEvent struct {
	StackID              string `xml:"StackId"`
	EventID              string `xml:"EventId"`
	StackName            string `xml:"StackName"`
	LogicalResourceID    string `xml:"LogicalResourceId,omitempty"`
	PhysicalResourceID   string `xml:"PhysicalResourceId,omitempty"`
	ResourceType         string `xml:"ResourceType,omitempty"`
	Timestamp            string `xml:"Timestamp"`
	ResourceStatus       string `xml:"ResourceStatus,omitempty"`
	ResourceStatusReason string `xml:"ResourceStatusReason,omitempty"`
	ClientRequestToken   string `xml:"ClientRequestToken,omitempty"`
}

type xmlDescribeStackEventsResponse struct {
	XMLName xml.Name `xml:"DescribeStackEventsResponse"`
	XMLNS   string   `xml:"xmlns,attr"`
	Result  struct {
		StackEvents []xmlStackEvent `xml:"StackEvents>member"`
		NextToken   string          `xml:"NextToken,omitempty"`
	} `xml:"DescribeStackEventsResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (f *CloudFormation) describeStackEvents(form url.Values) (any, *Error) {
	name := form.Get("StackName")
	if name == "" {
		return nil, clientError("ValidationError", "1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.find(name)
	if s == nil {
		return nil, clientError("ValidationError", "Stack [%s] does not exist", name)
	}
	// Newest first ("in reverse chronological order", "DescribeStackEvents",
	// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html).
	events := slices.Clone(s.events)
	slices.Reverse(events)
	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		rest, ok := strings.CutPrefix(tok, "fake|"+s.id+"|")
		n, err := strconv.Atoi(rest)
		if !ok || err != nil || n <= 0 || n > len(events) {
			return nil, clientError("ValidationError", "Invalid NextToken")
		}
		start = n
	}
	end := min(start+f.pageSize, len(events))
	out := xmlDescribeStackEventsResponse{XMLNS: cfnXMLNS, RequestID: requestID()}
	out.Result.StackEvents = []xmlStackEvent{}
	for i, ev := range events[start:end] {
		out.Result.StackEvents = append(out.Result.StackEvents, s.wire(ev, len(events)-1-(start+i)))
	}
	if end < len(events) {
		out.Result.NextToken = "fake|" + s.id + "|" + strconv.Itoa(end)
	}
	return out, nil
}

// wire renders the event at position seq (oldest 0) of the stack. Event ids follow
// CloudFormation's forms: "<LogicalId>-<STATUS>-<time>" for resources, a UUID for the stack.
func (s *fakeStack) wire(ev StackEvent, seq int) xmlStackEvent {
	ts := ev.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z")
	id := fmt.Sprintf("%s-%s-%s", ev.LogicalResourceID, ev.Status, ts)
	physical := ev.PhysicalResourceID
	if ev.ResourceType == "AWS::CloudFormation::Stack" && ev.LogicalResourceID == s.name {
		id = fmt.Sprintf("e7e1c000-0000-4000-8000-%012d", seq)
		if physical == "" {
			physical = s.id
		}
	}
	return xmlStackEvent{StackID: s.id, EventID: id, StackName: s.name, LogicalResourceID: ev.LogicalResourceID,
		PhysicalResourceID: physical, ResourceType: ev.ResourceType, Timestamp: ts, ResourceStatus: ev.Status,
		ResourceStatusReason: ev.Reason, ClientRequestToken: ev.ClientRequestToken}
}
