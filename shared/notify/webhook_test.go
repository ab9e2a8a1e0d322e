package notify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/lambda-pipeline/lambda-pipeline/shared/notify/notifytest"
)

const realShaped = "https://hooks.slack.com/services/T00000000/B00000000/" + notifytest.WebhookSecret

type fakeSSM struct {
	value string
	err   error
	calls []ssm.GetParameterInput
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.calls = append(f.calls, *in)
	if f.err != nil {
		return nil, f.err
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(f.value)}}, nil
}

type fakeSecrets struct {
	str   *string
	bin   []byte
	err   error
	calls []secretsmanager.GetSecretValueInput
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls = append(f.calls, *in)
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: f.str, SecretBinary: f.bin}, nil
}

func TestWebhookURLFromSSM(t *testing.T) {
	p := &fakeSSM{value: realShaped + "\n"}
	got, err := WebhookURLFrom(context.Background(), "ssm:/lambda-pipeline/slack-webhook", p, nil)
	if err != nil || got != realShaped {
		t.Fatalf("got %q, %v", got, err)
	}
	if len(p.calls) != 1 || aws.ToString(p.calls[0].Name) != "/lambda-pipeline/slack-webhook" || !aws.ToBool(p.calls[0].WithDecryption) {
		t.Errorf("GetParameter calls %+v, want one with decryption", p.calls)
	}
}

func TestWebhookURLFromSecretsManager(t *testing.T) {
	arn := "arn:aws:secretsmanager:eu-west-1:123456789012:secret:lp/slack-AbCdEf"
	for name, f := range map[string]*fakeSecrets{
		"bare URL":           {str: aws.String("  " + realShaped + "\n")},
		"url key":            {str: aws.String(`{"url": "` + realShaped + `"}`)},
		"webhook_url key":    {str: aws.String(`{"channel": "#ci", "webhook_url": "` + realShaped + `"}`)},
		"binary secret only": {bin: []byte(realShaped)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := WebhookURLFrom(context.Background(), "secretsmanager:"+arn, nil, f)
			if err != nil || got != realShaped {
				t.Fatalf("got %q, %v", got, err)
			}
			if aws.ToString(f.calls[0].SecretId) != arn {
				t.Errorf("SecretId %q, want the whole ARN", aws.ToString(f.calls[0].SecretId))
			}
		})
	}
}

var errNoSecret = errors.New("ResourceNotFoundException: Secrets Manager can't find the specified secret")

// template.yaml passes a bare name that may be either kind; ARNs say their kind.
func TestWebhookURLFromBareNameOrARN(t *testing.T) {
	t.Run("an SSM parameter", func(t *testing.T) {
		p, s := &fakeSSM{value: realShaped}, &fakeSecrets{}
		got, err := WebhookURLFrom(context.Background(), "/team/slack-webhook", p, s)
		if err != nil || got != realShaped || len(s.calls) != 0 {
			t.Fatalf("got %q, %v, %d secret look-ups", got, err, len(s.calls))
		}
	})
	t.Run("a secret, when no parameter has the name", func(t *testing.T) {
		p, s := &fakeSSM{err: &ssmtypes.ParameterNotFound{}}, &fakeSecrets{str: aws.String(`{"url":"` + realShaped + `"}`)}
		got, err := WebhookURLFrom(context.Background(), "team-slack", p, s)
		if err != nil || got != realShaped || aws.ToString(s.calls[0].SecretId) != "team-slack" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("ARNs", func(t *testing.T) {
		p, s := &fakeSSM{value: realShaped}, &fakeSecrets{str: aws.String(realShaped)}
		for _, ref := range []string{"arn:aws:ssm:eu-west-1:123456789012:parameter/team/slack", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:slack-AbCdEf"} {
			if got, err := WebhookURLFrom(context.Background(), ref, p, s); err != nil || got != realShaped {
				t.Fatalf("%s: got %q, %v", ref, got, err)
			}
		}
		if len(p.calls) != 1 || len(s.calls) != 1 {
			t.Errorf("%d SSM and %d Secrets Manager calls, want one each", len(p.calls), len(s.calls))
		}
	})
}

func TestWebhookURLFromEmptyRefDisablesSlack(t *testing.T) {
	p, s := &fakeSSM{}, &fakeSecrets{}
	got, err := WebhookURLFrom(context.Background(), "  ", p, s)
	if got != "" || err != nil || len(p.calls)+len(s.calls) != 0 {
		t.Fatalf("got %q, %v after %d calls; want Slack off without a look-up", got, err, len(p.calls)+len(s.calls))
	}
}

func TestWebhookURLFromRejects(t *testing.T) {
	secretish := "https://evil.example.com/services/" + notifytest.WebhookSecret
	denied := errors.New("AccessDeniedException: not authorized to perform ssm:GetParameter")
	cases := map[string]struct {
		ref  string
		ssm  *fakeSSM
		sm   *fakeSecrets
		want string
		is   error
	}{
		"another host":             {ref: "ssm:/p", ssm: &fakeSSM{value: secretish}, want: "not an https://hooks.slack.com/"},
		"look-alike host":          {ref: "ssm:/p", ssm: &fakeSSM{value: "https://hooks.slack.com.evil.example/services/" + notifytest.WebhookSecret}, want: "not an https://hooks.slack.com/"},
		"plain http":               {ref: "ssm:/p", ssm: &fakeSSM{value: "http://hooks.slack.com/services/" + notifytest.WebhookSecret}, want: "not an https://hooks.slack.com/"},
		"no path":                  {ref: "ssm:/p", ssm: &fakeSSM{value: "https://hooks.slack.com/"}, want: "not an https://hooks.slack.com/"},
		"empty value":              {ref: "ssm:/p", ssm: &fakeSSM{value: ""}, want: "empty"},
		"bad JSON":                 {ref: "secretsmanager:s", sm: &fakeSecrets{str: aws.String(`{"url": "` + secretish)}, want: "does not parse"},
		"JSON without the URL":     {ref: "secretsmanager:s", sm: &fakeSecrets{str: aws.String(`{"token": "` + notifytest.WebhookSecret + `"}`)}, want: `no "url"`},
		"SSM error":                {ref: "ssm:/p", ssm: &fakeSSM{err: denied}, want: "ssm:/p", is: denied},
		"unknown scheme":           {ref: "vault:" + notifytest.WebhookSecret, want: "not an SSM parameter or Secrets Manager secret name"},
		"the URL itself as ref":    {ref: realShaped, want: "not an SSM parameter or Secrets Manager secret name"},
		"bare name found nowhere":  {ref: "team/slack", ssm: &fakeSSM{err: &ssmtypes.ParameterNotFound{}}, sm: &fakeSecrets{err: errNoSecret}, want: "no SSM parameter of that name", is: errNoSecret},
		"bare name, SSM denied":    {ref: "team/slack", ssm: &fakeSSM{err: denied}, sm: &fakeSecrets{str: aws.String(realShaped)}, want: "AccessDenied", is: denied},
		"ssm ref without a client": {ref: "ssm:/p", want: "no SSM client"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var p SSMAPI
			if c.ssm != nil {
				p = c.ssm
			}
			var s SecretsAPI
			if c.sm != nil {
				s = c.sm
			}
			got, err := WebhookURLFrom(context.Background(), c.ref, p, s)
			if err == nil || got != "" {
				t.Fatalf("got %q, %v; want an error", got, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q should contain %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q should wrap %q", err, c.is)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestWebhookURLPrefixOverrideForTests(t *testing.T) {
	r := notifytest.NewSlack(t)
	p := &fakeSSM{value: r.URL()}
	if _, err := WebhookURLFrom(context.Background(), "ssm:/p", p, nil); err == nil {
		t.Fatal("a loopback URL must be refused by default")
	}
	got, err := WebhookURLFrom(context.Background(), "ssm:/p", p, nil, AllowWebhookURLPrefix("http://127.0.0.1:"))
	if err != nil || got != r.URL() {
		t.Fatalf("got %q, %v", got, err)
	}
}
