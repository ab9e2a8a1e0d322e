package deploy

import (
	"errors"
	"regexp"
	"strings"

	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// How the deployer reads CloudFormation's errors. CloudFormation answers most refusals with a
// ValidationError (not a modeled exception: the SDK gives a smithy.APIError with that code),
// so the message is what tells a race with another operation from a refusal that no retry
// mends. See "Troubleshooting CloudFormation"
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html) and
// the CreateChangeSet, DeleteStack and ContinueUpdateRollback pages of the CloudFormation API
// Reference (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/).

// absentPattern is CloudFormation's "this stack does not exist": DescribeStacks says "Stack
// with id X does not exist", the other operations "Stack [X] does not exist". X is the name or
// the stack id the caller passed.
var absentPattern = regexp.MustCompile(`^Stack (?:with id (\S+)|\[([^\]]+)\]) does not exist\.?$`)

// statePattern is the refusal of an operation because of the stack's status, e.g.
// "Stack:arn:aws:cloudformation:…:stack/NAME/ID is in UPDATE_IN_PROGRESS state and can not be
// updated." (no space after "Stack:").
var statePattern = regexp.MustCompile(`^Stack[:\s]\s*\[?(\S+?)\]? is in ([A-Z_]+) state and can ?not be updated\.?$`)

// existsPattern is a CREATE change set for a stack that exists by now.
var existsPattern = regexp.MustCompile(`^Stack \[([^\]]+)\] already exists and cannot be created again`)

// namesStack reports whether ref (a name, a stack id, or an ARN) is the stack name or id.
func namesStack(ref, name, id string) bool {
	return ref != "" && (ref == name || (id != "" && ref == id) || strings.Contains(ref, ":stack/"+name+"/"))
}

// stackAbsent reports whether err says that the stack (by name or id) does not exist. Only
// that message means absent: "does not exist" about anything else (a parameter value, a key
// pair, an export, another stack) is a refusal.
func stackAbsent(err error, name, id string) bool {
	if apiCode(err) != "ValidationError" {
		return false
	}
	m := absentPattern.FindStringSubmatch(apiMessage(err))
	return m != nil && namesStack(m[1]+m[2], name, id)
}

// changeSetAbsent reports whether err says that the change set, or its stack, does not exist.
func changeSetAbsent(err error, stack, id string) bool {
	var cs *cftypes.ChangeSetNotFoundException
	return errors.As(err, &cs) || stackAbsent(err, stack, id)
}

// raced reports whether a CreateChangeSet refusal says only that the stack changed since the
// deployer looked at it: it appeared, vanished, or another operation runs on it. Observing it
// again leads the next step.
func raced(err error, name, id string) bool {
	if apiCode(err) != "ValidationError" {
		return false
	}
	msg := apiMessage(err)
	if m := statePattern.FindStringSubmatch(msg); m != nil {
		return namesStack(m[1], name, id)
	}
	if m := existsPattern.FindStringSubmatch(msg); m != nil {
		return namesStack(m[1], name, id)
	}
	return stackAbsent(err, name, id)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return err.Error()
}

// IsPermissionError reports whether err is an authorization failure, which no retry mends.
func IsPermissionError(err error) bool {
	switch apiCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId", "ExpiredToken":
		return true
	}
	return errors.Is(err, ErrArtifactDenied)
}

// throttleCodes are the error codes of a throttled call, as aws-sdk-go-v2's retryer knows them.
var throttleCodes = map[string]bool{
	"Throttling": true, "ThrottlingException": true, "ThrottledException": true, "RequestThrottledException": true,
	"TooManyRequestsException": true, "ProvisionedThroughputExceededException": true, "TransactionInProgressException": true,
	"RequestLimitExceeded": true, "BandwidthLimitExceeded": true, "RequestThrottled": true,
	"SlowDown": true, "PriorRequestNotComplete": true, "EC2ThrottledException": true,
}

// IsTransient reports whether err may go away by itself: a throttle, a server-side fault
// (5xx), or no answer at all (a network error, a timeout). Every other answer from AWS (a
// 4xx: a refusal, a validation error, access denied) is permanent: trying again asks the
// same question and gets the same answer.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		// No answer from AWS (a connection error, a deadline): nothing says it will recur.
		return !errors.Is(err, ErrArtifactDenied)
	}
	if throttleCodes[ae.ErrorCode()] || ae.ErrorFault() == smithy.FaultServer {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429) {
		return true
	}
	return false
}
