package notify

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// A deploy action is a Lambda Invoke whose link is the stack's events: without the root-cause
// look-up its button must say where it leads, not "Open in Lambda".
func TestActionButtonNamesWhereItLeads(t *testing.T) {
	stackEvents := "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/events?stackId=my-lambda-app"
	m := Message{Type: pipeline.NotifyFailed, Provider: "Lambda", ActionURL: stackEvents,
		ConsoleURL: "https://eu-west-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/p/executions/e/timeline?region=eu-west-1"}
	var labels []string
	for _, b := range buttons(m) {
		labels = append(labels, b.Text.Text)
		if b.URL == stackEvents {
			assert.Equal(t, "Stack events", b.Text.Text)
		}
	}
	assert.NotContains(t, labels, "Open in Lambda")

	assert.Equal(t, "Open in CodeBuild", linkLabel("https://console.aws.amazon.com/codebuild/home?region=eu-west-1#/builds/b:1/view/new", "CodeBuild"))
	assert.Equal(t, "Open in Lambda", linkLabel("https://eu-west-1.console.aws.amazon.com/lambda/home?region=eu-west-1#/functions/f", "Lambda"))
	assert.Equal(t, "Open action", linkLabel("https://example.com/x", "Lambda"))
}
