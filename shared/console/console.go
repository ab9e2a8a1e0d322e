// Package console builds AWS console links: the one place that knows their shapes. Links are
// built, never looked up: they cost no call and no permission.
package console

import (
	"net/url"
	"regexp"
	"strings"
)

// Each function returns "" when it lacks a part, rather than a link that opens the wrong page.

// ExecutionURL is the CodePipeline console page of one execution.
func ExecutionURL(region, pipelineName, executionID string) string {
	if region == "" || pipelineName == "" || executionID == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/codesuite/codepipeline/pipelines/" + url.PathEscape(pipelineName) +
		"/executions/" + url.PathEscape(executionID) + "/timeline?region=" + url.QueryEscape(region)
}

// CommitURL is the CodeCommit console page of one commit.
func CommitURL(region, repository, commitID string) string {
	if region == "" || repository == "" || commitID == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/codesuite/codecommit/repositories/" + url.PathEscape(repository) +
		"/commit/" + url.PathEscape(commitID) + "?region=" + url.QueryEscape(region)
}

// StackEventsURL is the CloudFormation console's events tab of a stack, by name or (better,
// it survives the stack's deletion) by stack id.
func StackEventsURL(region, stack string) string {
	if region == "" || stack == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/cloudformation/home?region=" + url.QueryEscape(region) +
		"#/stacks/events?stackId=" + url.QueryEscape(stack)
}

// S3ObjectURL is the S3 console page of an object (the console needs a sign-in; the presigned
// link does not).
func S3ObjectURL(region, bucket, key string) string {
	if bucket == "" || key == "" {
		return ""
	}
	u := "https://s3.console.aws.amazon.com/s3/object/" + url.PathEscape(bucket) + "?"
	if region != "" {
		u += "region=" + url.QueryEscape(region) + "&"
	}
	return u + "prefix=" + url.QueryEscape(key)
}

// LogEventsURL is the CloudWatch console page of a log stream, for when CodeBuild gave no
// deepLink. The console reads the group and stream from the fragment encoded twice, with "%"
// written "$" (so "/aws/codebuild/p" is "$252Faws$252Fcodebuild$252Fp").
func LogEventsURL(region, group, stream string) string {
	if region == "" || group == "" || stream == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/cloudwatch/home?region=" + url.QueryEscape(region) +
		"#logsV2:log-groups/log-group/" + consoleEscape(group) + "/log-events/" + consoleEscape(stream)
}

func consoleEscape(s string) string {
	return strings.ReplaceAll(encodeURIComponent(encodeURIComponent(s)), "%", "$")
}

// encodeURIComponent escapes as JavaScript's function of that name does, which is what the
// console decodes: everything but A–Z a–z 0–9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// repositoryInURL reads the repository name from a CodeCommit console link, in either of the
// forms CodePipeline reports as the Source action's external URL:
// …/codecommit/home#/repository/<name>/commit/<id> and
// …/codesuite/codecommit/repositories/<name>/commit/<id>.
var repositoryInURL = regexp.MustCompile(`/(?:repository|repositories)/([\w.-]{1,100})/commit/`)

// RepositoryFromURL returns the repository a CodeCommit commit link names, or "".
func RepositoryFromURL(u string) string {
	if m := repositoryInURL.FindStringSubmatch(u); m != nil {
		return m[1]
	}
	return ""
}
