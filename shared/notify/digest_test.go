package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lambda-pipeline/lambda-pipeline/shared/dora"
	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
)

// digestCases are the digests whose renderings testdata pins: a week that went better than the
// one before, and a quiet-then-broken week with keys that have no value.
func digestCases() map[string]dora.Digest {
	w49 := dora.Window{Since: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	broken := time.Date(2026, 12, 6, 18, 4, 0, 0, time.UTC)
	return map[string]dora.Digest{
		"digest-better": {Project: "shop", Pipeline: "shop-pipeline", Week: "2026-W49",
			Current: dora.Keys{Pipeline: "shop-pipeline", Window: w49, Deployments: 2, DeploymentsPerDay: 2.0 / 7,
				LeadTime: dora.Durations{Count: 3, Median: 30 * time.Minute}, DecisiveRuns: 3, FailedRuns: 1, ChangeFailureRate: 1.0 / 3,
				TimeToRestore: dora.Durations{Count: 1, Median: 2*time.Hour + 10*time.Minute}},
			Previous: dora.Keys{Pipeline: "shop-pipeline", Window: w49.Previous(), Deployments: 1, DeploymentsPerDay: 1.0 / 7,
				LeadTime: dora.Durations{Count: 1, Median: 15 * time.Minute}, DecisiveRuns: 1}},
		"digest-broken": {Project: "a-project-name-24-chars-", Pipeline: "a-project-name-24-chars--pipeline", Week: "2026-W49",
			Current:  dora.Keys{Window: w49, DecisiveRuns: 2, FailedRuns: 2, ChangeFailureRate: 1, BrokenSince: &broken},
			Previous: dora.Keys{Window: w49.Previous()}},
	}
}

func TestDigestGolden(t *testing.T) {
	for name, d := range digestCases() {
		t.Run(name, func(t *testing.T) {
			payload, err := RenderDigestSlack(d)
			require.NoError(t, err)
			require.NoError(t, notifytest.ValidateSlackPayload(payload), "Slack would refuse the payload")
			var pretty bytes.Buffer
			require.NoError(t, json.Indent(&pretty, payload, "", "  "))
			pretty.WriteString("\n")
			checkGolden(t, name+".slack.json.golden", pretty.Bytes())
			sketch, err := SketchSlack(payload)
			require.NoError(t, err)
			checkGolden(t, name+".slack.txt.golden", []byte(sketch))

			s := RenderDigestSNS(d)
			if f := notifytest.ValidateSNS(s.Subject, true, s.Body, snsAttrs(s)); f != nil {
				t.Fatalf("SNS would refuse the message: %v", f)
			}
			assert.LessOrEqual(t, len(s.Subject), 100)
			assert.Equal(t, map[string]string{AttrPipeline: d.Pipeline, AttrStatus: "DIGEST"}, s.Attributes)
			checkGolden(t, name+".sns.txt.golden", []byte(SNSText(s)))
		})
	}
}

func TestDigestRowsTrend(t *testing.T) {
	rows := DigestRows(digestCases()["digest-better"])
	got := map[string]string{}
	for _, r := range rows {
		got[r.Key] = r.Now + " | " + r.Before + " | " + r.Trend
	}
	assert.Equal(t, map[string]string{
		"Deployment frequency":     "2 deploys (0.29/day) | 1 deploy (0.14/day) | ↑ 100% better",
		"Lead time (median)":       "30m | 15m | ↑ 100% worse",
		"Change failure rate":      "33% (1 of 3 runs) | 0% (0 of 1 runs) | ↑ worse",
		"Time to restore (median)": "2h10m | - | ",
	}, got)
}

func TestSendDigestThroughTheChannels(t *testing.T) {
	d := digestCases()["digest-better"]
	recv := notifytest.NewSlack(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	slackCh := &SlackChannel{Poster: Slack{URL: recv.URL(), Client: recv.Client()}, Log: log}
	require.NoError(t, slackCh.SendDigest(context.Background(), d))
	require.Len(t, recv.Delivered(), 1)
	assert.Contains(t, string(recv.Delivered()[0]), "Weekly digest shop 2026-W49")

	fake := notifytest.NewSNS(t, "arn:aws:sns:eu-west-1:123456789012:lp")
	sns := &SNS{API: fake.Client(), TopicARN: "arn:aws:sns:eu-west-1:123456789012:lp"}
	require.NoError(t, sns.SendDigest(context.Background(), d))
	pub := fake.Published()
	require.Len(t, pub, 1)
	assert.True(t, strings.HasPrefix(pub[0].Subject, "Weekly digest shop"), pub[0].Subject)
}
