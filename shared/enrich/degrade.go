package enrich

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// degraded is the line a person reads when a look-up failed: what is missing, why, and which
// permission or API to look at, e.g. "build log: access denied (logs:GetLogEvents)".
func degraded(what, why, action string) string {
	return fmt.Sprintf("%s: %s (%s)", what, why, action)
}

// Error codes grouped by what they mean to the reader. The JSON services say
// ThrottlingException and AccessDeniedException; the query ones (CloudFormation) Throttling and
// AccessDenied.
var (
	throttleCodes = []string{"ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
		"RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown", "ProvisionedThroughputExceededException"}
	deniedCodes   = []string{"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "AuthorizationError"}
	notFoundCodes = []string{"ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "RepositoryDoesNotExistException",
		"CommitIdDoesNotExistException", "PipelineNotFoundException", "PipelineExecutionNotFoundException"}
)

// maxReasonLen keeps an unexpected error's text from swamping the message.
const maxReasonLen = 160

// reason says in a few words why a look-up failed: "throttled", "access denied", "not found",
// "timed out after 3s", or the error code and message of anything else. lctx is the look-up's
// own context, so that its deadline is told from the caller's cancellation.
func reason(err error, lctx context.Context, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(lctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch {
		case slices.Contains(throttleCodes, code):
			return "throttled"
		case slices.Contains(deniedCodes, code):
			return "access denied"
		case slices.Contains(notFoundCodes, code),
			// CloudFormation answers a missing stack with ValidationError "Stack [x] does not exist".
			code == "ValidationError" && strings.Contains(apiErr.ErrorMessage(), "does not exist"):
			return "not found"
		}
		msg := apiErr.ErrorMessage()
		if msg == "" || msg == code {
			return clip(code, maxReasonLen)
		}
		return clip(code+": "+msg, maxReasonLen)
	}
	return clip(innermost(err).Error(), maxReasonLen)
}

// innermost returns the error at the bottom of err's chain: the wrapping adds the context a
// log wants ("presign s3://b/k: …", "operation error CodeBuild: …") and the line already says
// which look-up failed, so a person reads the cause ("connection refused").
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil || next.Error() == "" {
			return err
		}
		err = next
	}
}

// clip cuts s to at most n runes, marking the cut with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
