package enrich

import (
	"net/url"
	"regexp"
	"strings"
)

// Console links are built, never looked up: they cost no call and no permission. Each returns
// "" when it lacks a part, rather than a link that opens the wrong page.

// executionURL is the CodePipeline console page of one execution.
func executionURL(region, pipelineName, executionID string) string {
	if region == "" || pipelineName == "" || executionID == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/codesuite/codepipeline/pipelines/" + url.PathEscape(pipelineName) +
		"/executions/" + url.PathEscape(executionID) + "/timeline?region=" + url.QueryEscape(region)
}

// commitURL is the CodeCommit console page of one commit.
func commitURL(region, repository, commitID string) string {
	if region == "" || repository == "" || commitID == "" {
		return ""
	}
	return "https://" + region + ".console.aws.amazon.com/codesuite/codecommit/repositories/" + url.PathEscape(repository) +
		"/commit/" + url.PathEscape(commitID) + "?region=" + url.QueryEscape(region)
}

// s3ObjectURL is the S3 console page of an object (the console needs a sign-in; the presigned
// link does not).
func s3ObjectURL(region, bucket, key string) string {
	if bucket == "" || key == "" {
		return ""
	}
	u := "https://s3.console.aws.amazon.com/s3/object/" + url.PathEscape(bucket) + "?"
	if region != "" {
		u += "region=" + url.QueryEscape(region) + "&"
	}
	return u + "prefix=" + url.QueryEscape(key)
}

// logEventsURL is the CloudWatch console page of a log stream, for when CodeBuild gave no
// deepLink. The console reads the group and stream from the fragment encoded twice, with "%"
// written "$" (so "/aws/codebuild/p" is "$252Faws$252Fcodebuild$252Fp").
func logEventsURL(region, group, stream string) string {
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

func repositoryFromURL(u string) string {
	if m := repositoryInURL.FindStringSubmatch(u); m != nil {
		return m[1]
	}
	return ""
}
