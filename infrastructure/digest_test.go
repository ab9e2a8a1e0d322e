package infrastructure

import (
	"regexp"
	"testing"

	"github.com/lambda-pipeline/lambda-pipeline/shared/digest"
)

// TestWeeklyDigestSchedule: the digest is off unless WeeklyDigest names a time; its schedule
// invokes the notifier with the payload the notifier routes to the digest, and every value
// the parameter accepts makes a valid cron expression.
func TestWeeklyDigestSchedule(t *testing.T) {
	cp := controlPlane(t)
	for _, id := range []string{"WeeklyDigestSchedule", "WeeklyDigestInvokePermission", "WeeklyDigestTablePolicy"} {
		r, _ := cp.section("Resources")[id].(map[string]any)
		if r["Condition"] != "SendWeeklyDigest" {
			t.Errorf("%s: condition %v, want SendWeeklyDigest", id, r["Condition"])
		}
	}
	_, props := cp.resource("WeeklyDigestSchedule")
	targets, _ := props["Targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("targets %v", targets)
	}
	target, _ := targets[0].(map[string]any)
	if target["Input"] != digest.Payload {
		t.Errorf("input %v, want %s (what the notifier routes to the digest)", target["Input"], digest.Payload)
	}
	arn, _ := target["Arn"].(map[string]any)
	if got, _ := arn["Fn::GetAtt"].([]any); len(got) == 0 || got[0] != "NotifierFunction" {
		t.Errorf("target %v, want the notifier", target["Arn"])
	}

	param, _ := cp.section("Parameters")["WeeklyDigest"].(map[string]any)
	if param["Default"] != "off" {
		t.Errorf("default %v, want off", param["Default"])
	}
	pattern := regexp.MustCompile(param["AllowedPattern"].(string))
	cron := regexp.MustCompile(`^(MON|TUE|WED|THU|FRI|SAT|SUN)-([0-9]|1[0-9]|2[0-3])$`)
	for _, v := range []string{"off", "MON-9", "SUN-23", "WED-0"} {
		if !pattern.MatchString(v) {
			t.Errorf("%q refused", v)
		}
		if v != "off" && !cron.MatchString(v) {
			t.Errorf("%q accepted but not DAY-HOUR", v)
		}
	}
	for _, v := range []string{"", "on", "MON", "MON-24", "MON-09:30", "mon-9", "MON-09"} {
		if pattern.MatchString(v) {
			t.Errorf("%q accepted", v)
		}
	}
}
