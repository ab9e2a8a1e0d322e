package awsfake

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
)

// OpGetLogEvents is the CloudWatch Logs operation the fake answers.
const OpGetLogEvents = "GetLogEvents"

// Logs is a stateful fake of the CloudWatch Logs API (JSON 1.1, target prefix
// Logs_20140328): GetLogEvents over scripted log groups and streams. Calls can fail (FailNext)
// or hang (Hang). It is safe for concurrent use.
type Logs struct {
	*endpoint
	*hangs

	mu     sync.Mutex
	groups map[string]map[string][]LogEvent // group → stream → events by time
}

// LogEvent is one scripted log event. IngestionTime defaults to Timestamp.
type LogEvent struct {
	Timestamp     time.Time
	Message       string
	IngestionTime time.Time
}

// NewLogs starts a fake with no log groups; the test's Cleanup stops it.
func NewLogs(tb testing.TB) *Logs {
	tb.Helper()
	f := &Logs{groups: map[string]map[string][]LogEvent{}}
	f.endpoint, f.hangs = newHangingEndpoint(tb, "Logs_20140328", map[string]op{OpGetLogEvents: f.getLogEvents})
	return f
}

// Client returns an SDK client for the fake (see Config) that sends through HTTPClient;
// optFns apply last.
func (f *Logs) Client(tb testing.TB, optFns ...func(*cloudwatchlogs.Options)) *cloudwatchlogs.Client {
	tb.Helper()
	return cloudwatchlogs.NewFromConfig(f.Config(), append([]func(*cloudwatchlogs.Options){func(o *cloudwatchlogs.Options) { o.HTTPClient = HTTPClient() }}, optFns...)...)
}

// CreateLogGroup makes an empty log group known.
func (f *Logs) CreateLogGroup(group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups[group] == nil {
		f.groups[group] = map[string][]LogEvent{}
	}
}

// PutLogEvents appends events to a stream (the group and the stream become known), keeping
// the stream ordered by time as CloudWatch Logs stores it; events with equal times keep the
// order they were put in.
func (f *Logs) PutLogEvents(group, stream string, events ...LogEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups[group] == nil {
		f.groups[group] = map[string][]LogEvent{}
	}
	s := append(f.groups[group][stream], events...)
	for i := range s {
		if s[i].IngestionTime.IsZero() {
			s[i].IngestionTime = s[i].Timestamp
		}
	}
	sort.SliceStable(s, func(i, j int) bool { return s[i].Timestamp.Before(s[j].Timestamp) })
	f.groups[group][stream] = s
}

const (
	maxLogEventsLimit = 10000
	maxLogEventsBytes = 1 << 20 // a page holds ≤1 MB ("GetLogEvents", CloudWatch Logs API Reference)
	logEventOverhead  = 26      // bytes CloudWatch Logs counts per event beyond its message
)

type wireLogEvent struct {
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
}

// getLogEvents pages through one stream as "GetLogEvents" describes
// (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html): without a token,
// startFromHead=false (the default) answers the latest `limit` events and true the earliest;
// events within a page are oldest first; startTime is inclusive and endTime exclusive.
// Tokens are positions in the stream: nextForwardToken "f/<end>/s" and nextBackwardToken
// "b/<start>/s"; at either end of the stream the token returned is the one passed, which is
// how a reader knows it has reached it (and why a paginator that does not stop on a repeated
// token loops).
func (f *Logs) getLogEvents(body []byte) (any, *Error) {
	var in struct {
		LogGroupName       string `json:"logGroupName"`
		LogGroupIdentifier string `json:"logGroupIdentifier"`
		LogStreamName      string `json:"logStreamName"`
		StartTime          *int64 `json:"startTime"`
		EndTime            *int64 `json:"endTime"`
		NextToken          string `json:"nextToken"`
		Limit              *int   `json:"limit"`
		StartFromHead      *bool  `json:"startFromHead"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	invalid := func(format string, args ...any) *Error {
		return clientError("InvalidParameterException", format, args...)
	}
	if in.LogStreamName == "" {
		return nil, invalid("1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: Member must not be null")
	}
	if (in.LogGroupName == "") == (in.LogGroupIdentifier == "") {
		return nil, invalid("Exactly one of logGroupName and logGroupIdentifier must be specified")
	}
	group := in.LogGroupName
	if group == "" {
		// An identifier is the group's name or its ARN, arn:aws:logs:REGION:ACCOUNT:log-group:NAME.
		group = in.LogGroupIdentifier
		if _, name, ok := strings.Cut(group, ":log-group:"); ok && strings.HasPrefix(group, "arn:") {
			group = strings.TrimSuffix(name, ":*")
		}
	}
	limit := maxLogEventsLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxLogEventsLimit {
			return nil, invalid("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000", *in.Limit)
		}
		limit = *in.Limit
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	streams, ok := f.groups[group]
	if !ok {
		return nil, clientError("ResourceNotFoundException", "The specified log group does not exist.")
	}
	all, ok := streams[in.LogStreamName]
	if !ok {
		return nil, clientError("ResourceNotFoundException", "The specified log stream does not exist.")
	}
	var window []LogEvent
	for _, ev := range all {
		ms := ev.Timestamp.UnixMilli()
		if (in.StartTime == nil || ms >= *in.StartTime) && (in.EndTime == nil || ms < *in.EndTime) {
			window = append(window, ev)
		}
	}
	m := len(window)
	var a, b int
	backward := false
	switch {
	case in.NextToken != "":
		dir, pos, ok := parseLogToken(in.NextToken)
		if !ok || pos > m {
			return nil, invalid("The specified nextToken is invalid.")
		}
		if dir == 'f' {
			a, b = pos, min(pos+limit, m)
		} else {
			a, b, backward = max(pos-limit, 0), pos, true
		}
	case in.StartFromHead != nil && *in.StartFromHead:
		a, b = 0, min(limit, m)
	default:
		a, b, backward = max(m-limit, 0), m, true
	}
	// Keep the page within 1 MB, cutting on the side away from where it started.
	size := 0
	for i := a; i < b; i++ {
		size += len(window[i].Message) + logEventOverhead
	}
	for size > maxLogEventsBytes && a < b {
		if backward {
			size -= len(window[a].Message) + logEventOverhead
			a++
		} else {
			b--
			size -= len(window[b].Message) + logEventOverhead
		}
	}
	events := make([]wireLogEvent, 0, b-a)
	for _, ev := range window[a:b] {
		events = append(events, wireLogEvent{Timestamp: ev.Timestamp.UnixMilli(), Message: ev.Message, IngestionTime: ev.IngestionTime.UnixMilli()})
	}
	return map[string]any{"events": events, "nextForwardToken": logToken('f', b), "nextBackwardToken": logToken('b', a)}, nil
}

func logToken(dir byte, pos int) string { return fmt.Sprintf("%c/%056d/s", dir, pos) }

func parseLogToken(tok string) (dir byte, pos int, ok bool) {
	parts := strings.Split(tok, "/")
	if len(parts) != 3 || (parts[0] != "f" && parts[0] != "b") || parts[2] != "s" {
		return 0, 0, false
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		return 0, 0, false
	}
	return parts[0][0], n, true
}
