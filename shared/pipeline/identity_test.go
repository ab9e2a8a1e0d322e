package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPipelineIdentity(t *testing.T) {
	home := Home{Account: "111111111111", Region: "eu-west-1"}
	cases := []struct {
		name                  string
		home                  Home
		account, region, want string
	}{
		{"home pipeline: its name", home, "111111111111", "eu-west-1", "app"},
		{"another account", home, "222222222222", "eu-west-1", "arn:aws:codepipeline:eu-west-1:222222222222:app"},
		{"another region", home, "111111111111", "us-east-1", "arn:aws:codepipeline:us-east-1:111111111111:app"},
		{"an event without account and region is home's", home, "", "", "app"},
		{"no home configured: every pipeline is home's", Home{}, "222222222222", "us-east-1", "app"},
		{"home region only: accounts are not told apart", Home{Region: "eu-west-1"}, "222222222222", "eu-west-1", "app"},
		{"China's partition", home, "222222222222", "cn-north-1", "arn:aws-cn:codepipeline:cn-north-1:222222222222:app"},
		{"GovCloud's partition", home, "222222222222", "us-gov-west-1", "arn:aws-us-gov:codepipeline:us-gov-west-1:222222222222:app"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.home.PipelineID(tc.account, tc.region, "app")
			assert.Equal(t, tc.want, id)
			ref := ParsePipelineID(id)
			assert.Equal(t, "app", ref.Name, "the name reads back from the identity")
			assert.Equal(t, id != "app", ref.Foreign())
			if ref.Foreign() {
				assert.Equal(t, id, ref.ARN())
				assert.Equal(t, "app ("+tc.account+"/"+tc.region+")", ref.String())
			} else {
				assert.Equal(t, "app", ref.String())
			}
		})
	}
	for _, s := range []string{"app", "arn:aws:s3:::bucket", "arn:aws:codepipeline:eu-west-1:1:", ""} {
		assert.False(t, ParsePipelineID(s).Foreign(), "%q is not a pipeline ARN", s)
	}
}

func TestIdentifyOnce(t *testing.T) {
	home := Home{Account: "111111111111", Region: "eu-west-1"}
	ev := Event{Pipeline: "app", Account: "222222222222", Region: "us-east-1", ExecutionID: "x"}
	once := home.Identify(ev)
	assert.Equal(t, "arn:aws:codepipeline:us-east-1:222222222222:app", once.Pipeline)
	assert.Equal(t, once, home.Identify(once), "an identified event keeps its identity")
	assert.Equal(t, Key{Pipeline: once.Pipeline, ExecutionID: "x"}, once.Key())
}

// inAccount places a sequence's events in an account and region, as EventBridge delivers them.
func inAccount(account, region string, events []Event) []Event {
	out := make([]Event, len(events))
	for i, ev := range events {
		ev.Account, ev.Region = account, region
		out[i] = ev
	}
	return out
}

// Issue 9, defect 6: a pipeline of one name in two accounts or regions is two pipelines. A
// failure in one and a success in the other is no recovery; the home's own success after its
// failure is.
func TestSameNameInTwoAccountsIsTwoPipelines(t *testing.T) {
	home := Home{Account: "111111111111", Region: "eu-west-1"}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	foreign := "arn:aws:codepipeline:us-east-1:222222222222:app"
	cases := []struct {
		name   string
		events []Event
		want   []string
	}{
		{"failed here, succeeded there: no recovery",
			concat(inAccount("111111111111", "eu-west-1", failedAt("app", "a", at(0), 2)), inAccount("222222222222", "us-east-1", succeeded("app", "b", at(20)))),
			[]string{"failed#app#a"}},
		{"failed there, succeeded here: no recovery",
			concat(inAccount("222222222222", "us-east-1", failedAt("app", "a", at(0), 2)), inAccount("111111111111", "eu-west-1", succeeded("app", "b", at(20)))),
			[]string{"failed#" + foreign + "#a"}},
		{"each recovers on its own",
			concat(inAccount("111111111111", "eu-west-1", failedAt("app", "a", at(0), 2)), inAccount("222222222222", "us-east-1", succeeded("app", "b", at(10))),
				inAccount("222222222222", "us-east-1", failedAt("app", "c", at(20), 2)), inAccount("111111111111", "eu-west-1", succeeded("app", "d", at(30))),
				inAccount("222222222222", "us-east-1", succeeded("app", "e", at(40)))),
			[]string{"failed#app#a", "failed#" + foreign + "#c", "recovered#app#d", "recovered#" + foreign + "#e"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var events []Event
			for _, ev := range tc.events {
				events = append(events, home.Identify(ev))
			}
			assert.Equal(t, tc.want, replay(t, events))
		})
	}
}
