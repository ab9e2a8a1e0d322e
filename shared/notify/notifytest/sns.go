package notifytest

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// SNS limits: "Publish", Amazon SNS API Reference,
// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html (docs/aws-behaviour.md, SNS).
const (
	snsMaxMessageBytes = 262144
	snsMaxSubjectChars = 99 // "less than 100 characters"
	snsAPIVersion      = "2010-03-31"
)

// Region is the region of the client NewSNS's fake hands out.
const Region = "us-east-1"

// Published is one message the SNS fake accepted.
type Published struct {
	TopicARN   string
	Subject    string // "" when none was sent
	Message    string
	Attributes map[string]Attribute
}

// Attribute is a message attribute as received.
type Attribute struct {
	DataType    string
	StringValue string
}

// Fault is an error the SNS fake answers with once: its awsQuery error code, HTTP status and
// message, e.g. {"Throttled", 400, "Rate exceeded"}.
type Fault struct {
	Code    string
	Status  int
	Message string
}

// Faults SNS answers with (docs/aws-behaviour.md, SNS and Found while building).
var (
	Throttled       = Fault{Code: "Throttled", Status: http.StatusTooManyRequests, Message: "Rate exceeded"}
	InternalFailure = Fault{Code: "InternalError", Status: http.StatusInternalServerError, Message: "An internal error occurred"}
)

func (f *Fault) Error() string { return f.Code + ": " + f.Message }

// SNSFake is an SNS endpoint for the Publish operation, speaking the protocol aws-sdk-go-v2's
// sns client (v1.48.0) speaks: awsQuery. A request is a form-encoded POST to "/" with
// Action=Publish&Version=2010-03-31, the members as form fields and the attributes map flattened
// as MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue; a success is
// 200 with an XML <PublishResponse><PublishResult><MessageId>…; an error is an XML
// <ErrorResponse><Error><Type/><Code/><Message/></Error>… whose Code the SDK maps to its typed
// errors (NotFound → *types.NotFoundException, InvalidParameter → *types.InvalidParameterException).
//
// It checks what SNS checks (docs/aws-behaviour.md, SNS): a SigV4 Authorization header, a known topic, a
// subject of less than 100 characters without line breaks or control characters, a message and
// attributes within 256 KB, attribute names and String values.
type SNSFake struct {
	srv *httptest.Server

	mu        sync.Mutex
	topics    map[string]bool
	published []Published
	faults    []Fault
	ids       int
}

// NewSNS starts an SNS fake holding the given topics; it stops when the test ends.
func NewSNS(tb testing.TB, topicARNs ...string) *SNSFake {
	tb.Helper()
	f := &SNSFake{topics: map[string]bool{}}
	for _, t := range topicARNs {
		f.topics[t] = true
	}
	f.srv = httptest.NewServer(f)
	tb.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's base endpoint.
func (f *SNSFake) URL() string { return f.srv.URL }

// Client is a real SNS client pointed at the fake, with dummy static credentials. optFns adjust
// it (e.g. RetryMaxAttempts).
func (f *SNSFake) Client(optFns ...func(*sns.Options)) *sns.Client {
	return sns.New(sns.Options{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDNOTIFYTEST", "notify-test-secret", ""),
		BaseEndpoint: aws.String(f.srv.URL),
		HTTPClient:   f.srv.Client(),
	}, optFns...)
}

// FailNext makes the next Publish calls fail with these faults, in order.
func (f *SNSFake) FailNext(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, faults...)
}

// Published returns the messages accepted so far, in order.
func (f *SNSFake) Published() []Published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Published(nil), f.published...)
}

func (f *SNSFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, fault := f.handle(r)
	if fault != nil {
		writeError(w, fault)
		return
	}
	f.mu.Lock()
	f.published = append(f.published, p)
	f.ids++
	id := f.ids
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>%08d-0000-4000-8000-000000000000</MessageId></PublishResult><ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata></PublishResponse>`, id, id)
}

func (f *SNSFake) handle(r *http.Request) (Published, *Fault) {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return Published{}, &Fault{"InvalidAction", http.StatusBadRequest, "awsQuery requests are form-encoded POSTs"}
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, "/sns/aws4_request") {
		return Published{}, &Fault{"MissingAuthenticationToken", http.StatusForbidden, "Request is missing Authentication Token"}
	}
	if err := r.ParseForm(); err != nil {
		return Published{}, &Fault{"MalformedQueryString", http.StatusBadRequest, err.Error()}
	}
	form := r.PostForm
	switch {
	case form.Get("Action") != "Publish":
		return Published{}, &Fault{"InvalidAction", http.StatusBadRequest, fmt.Sprintf("The action %s is not valid for this endpoint.", form.Get("Action"))}
	case form.Get("Version") != snsAPIVersion:
		return Published{}, &Fault{"InvalidParameterValue", http.StatusBadRequest, "Version"}
	}
	f.mu.Lock()
	if len(f.faults) > 0 {
		fault := f.faults[0]
		f.faults = f.faults[1:]
		f.mu.Unlock()
		return Published{}, &fault
	}
	known := f.topics[form.Get("TopicArn")]
	f.mu.Unlock()
	if !known {
		return Published{}, &Fault{"NotFound", http.StatusNotFound, "Topic does not exist"}
	}

	p := Published{TopicARN: form.Get("TopicArn"), Message: form.Get("Message"), Attributes: map[string]Attribute{}}
	_, hasSubject := form["Subject"]
	p.Subject = form.Get("Subject")
	for i := 1; ; i++ {
		prefix := "MessageAttributes.entry." + strconv.Itoa(i) + "."
		name, ok := form[prefix+"Name"]
		if !ok {
			break
		}
		p.Attributes[name[0]] = Attribute{DataType: form.Get(prefix + "Value.DataType"), StringValue: form.Get(prefix + "Value.StringValue")}
	}
	if err := ValidateSNS(p.Subject, hasSubject, p.Message, p.Attributes); err != nil {
		return Published{}, err
	}
	return p, nil
}

var attrName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,256}$`)

// ValidateSNS checks a publication as SNS does (docs/aws-behaviour.md, SNS) and returns the Fault SNS
// would answer with, or nil. hasSubject says whether a Subject was sent at all.
func ValidateSNS(subject string, hasSubject bool, message string, attrs map[string]Attribute) *Fault {
	bad := func(format string, args ...any) *Fault {
		return &Fault{"InvalidParameter", http.StatusBadRequest, "Invalid parameter: " + fmt.Sprintf(format, args...)}
	}
	if message == "" {
		return bad("Empty message")
	}
	if !utf8.ValidString(message) {
		return bad("Message must be UTF-8")
	}
	if hasSubject {
		if subject == "" || !utf8.ValidString(subject) || utf8.RuneCountInString(subject) > snsMaxSubjectChars ||
			strings.ContainsFunc(subject, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }) {
			return bad("Subject")
		}
	}
	size := len(message)
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := attrs[n]
		lower := strings.ToLower(n)
		if !attrName.MatchString(n) || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") || strings.Contains(n, "..") ||
			strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
			return &Fault{"ParameterValueInvalid", http.StatusBadRequest, fmt.Sprintf("The message attribute name '%s' is invalid.", n)}
		}
		switch dt := a.DataType; {
		case dt == "String.Array" || dt == "Binary" || strings.HasPrefix(dt, "Binary."):
		case dt == "String" || dt == "Number" || strings.HasPrefix(dt, "String.") || strings.HasPrefix(dt, "Number."):
			if a.StringValue == "" {
				return &Fault{"ParameterValueInvalid", http.StatusBadRequest,
					fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", n, dt)}
			}
		default:
			return &Fault{"ParameterValueInvalid", http.StatusBadRequest,
				fmt.Sprintf("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", n)}
		}
		size += len(n) + len(a.DataType) + len(a.StringValue)
	}
	if size > snsMaxMessageBytes {
		return bad("Message too long")
	}
	return nil
}

func writeError(w http.ResponseWriter, f *Fault) {
	var msg strings.Builder
	_ = xml.EscapeText(&msg, []byte(f.Message))
	kind := "Sender"
	if f.Status >= 500 {
		kind = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(f.Status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-error</RequestId></ErrorResponse>`,
		kind, f.Code, msg.String())
}
