package pipeline

import (
	"fmt"
	"time"
)

// NotifyDigest is the weekly digest of a project's delivery metrics (shared/digest). It is
// claimed like a notification, under DigestKey, so that it goes out once per project and week
// however often the schedule fires; the notifier's stream handler leaves its claim alone.
const NotifyDigest NotificationType = "digest"

// ISOWeek returns the ISO 8601 week containing t, in UTC: the half-open interval from its
// Monday 00:00 to the next Monday 00:00, and its name, e.g. "2026-W49". Week-numbering years
// differ from calendar years around the new year (2027-01-01 is in 2026-W53).
func ISOWeek(t time.Time) (since, until time.Time, name string) {
	t = t.UTC()
	weekday := (int(t.Weekday()) + 6) % 7 // Monday 0 … Sunday 6
	since = time.Date(t.Year(), t.Month(), t.Day()-weekday, 0, 0, 0, 0, time.UTC)
	y, w := since.ISOWeek()
	return since, since.AddDate(0, 0, 7), fmt.Sprintf("%04d-W%02d", y, w)
}

// DigestNotification is the claim of a pipeline's digest for the ISO week named week: its
// Key is digest#<pipeline>#<week>.
func DigestNotification(pipelineName, week string, at time.Time) Notification {
	return Notification{Type: NotifyDigest, Pipeline: pipelineName, ExecutionID: week, At: at}
}
