package infrastructure

import (
	"strings"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/delivery"
)

// TestGivenUpNotificationsAlarm: the metric filter counts exactly the line the notifier logs
// when it gives a notification up, and its alarm tells the topic.
func TestGivenUpNotificationsAlarm(t *testing.T) {
	cp := controlPlane(t)
	_, filter := cp.resource("NotificationsGivenUpFilter")
	pattern, _ := filter["FilterPattern"].(string)
	if !strings.Contains(pattern, `$.msg = "`+delivery.LogGivenUp+`"`) {
		t.Errorf("filter pattern %q does not match the notifier's log line %q", pattern, delivery.LogGivenUp)
	}
	group, _ := filter["LogGroupName"].(map[string]any)
	if group["Ref"] != "NotifierLogGroup" {
		t.Errorf("filter on %v, want the notifier's log group", filter["LogGroupName"])
	}
	_, alarm := cp.resource("NotificationsGivenUpAlarm")
	if alarm["MetricName"] != "NotificationsGivenUp" || alarm["Namespace"] != "LambdaPipeline/Notifier" {
		t.Errorf("alarm on %v/%v, want the filter's metric", alarm["Namespace"], alarm["MetricName"])
	}
	actions, _ := alarm["AlarmActions"].([]any)
	if len(actions) != 1 || actions[0].(map[string]any)["Ref"] != "NotificationsTopic" {
		t.Errorf("alarm actions %v, want the notifications topic", actions)
	}
}
