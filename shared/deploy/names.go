package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Names and tokens derived from a deploy's token (the CodePipeline job id of the job that
// started the deploy, or the custom resource request id), so that every retry of a step asks
// CloudFormation for the same thing under the same name.
//
// CloudFormation's rules ("CreateChangeSet", "ExecuteChangeSet", CloudFormation API Reference,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html and
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html):
// a change set name is 1–128 characters of
// [a-zA-Z][-a-zA-Z0-9]*; CreateChangeSet's ClientToken is 1–128 characters; ExecuteChangeSet,
// DeleteStack and ContinueUpdateRollback take a ClientRequestToken of 1–128 characters of
// [a-zA-Z0-9][-a-zA-Z0-9]*.

const namePrefix = "lp-"

// maxTokenPart keeps the longest name (prefix, token part, "-continue") within 128 characters.
const maxTokenPart = 100

// tokenPart is token itself when it is made of letters, digits and hyphens and short enough
// (a UUID is); otherwise a readable prefix of it plus a hash of the whole, so that different
// tokens never share a name.
func tokenPart(token string) string {
	clean := true
	for _, r := range token {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			clean = false
			break
		}
	}
	if clean && token != "" && len(token) <= maxTokenPart {
		return token
	}
	var b strings.Builder
	for _, r := range token {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	sum := sha256.Sum256([]byte(token))
	return strings.Trim(b.String(), "-") + "-" + hex.EncodeToString(sum[:8])
}

// ChangeSetName is the change set a deploy with this token creates: "lp-<token>". It is also
// the CreateChangeSet ClientToken.
func ChangeSetName(token string) string { return namePrefix + tokenPart(token) }

// executeToken, deleteToken and continueToken are the ClientRequestTokens of the stack
// operations a deploy starts. Each operation gets its own: CloudFormation keeps a stack's
// tokens, and a token seen before is refused (TokenAlreadyExistsException).
func executeToken(token string) string  { return namePrefix + tokenPart(token) + "-execute" }
func deleteToken(token string) string   { return namePrefix + tokenPart(token) + "-delete" }
func continueToken(token string) string { return namePrefix + tokenPart(token) + "-continue" }
