package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSMAPI is the one SSM operation WebhookURLFrom uses; *ssm.Client implements it.
type SSMAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// SecretsAPI is the one Secrets Manager operation WebhookURLFrom uses; *secretsmanager.Client
// implements it.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var (
	_ SSMAPI     = (*ssm.Client)(nil)
	_ SecretsAPI = (*secretsmanager.Client)(nil)
)

// Reference prefixes WebhookURLFrom understands.
const (
	RefSSM            = "ssm:"
	RefSecretsManager = "secretsmanager:"
)

// WebhookOption adjusts WebhookURLFrom.
type WebhookOption func(*webhookOptions)

type webhookOptions struct{ allowPrefixes []string }

// AllowWebhookURLPrefix also accepts URLs that start with prefix, e.g. a test receiver's
// "http://127.0.0.1:". Never set it in a deployed function.
func AllowWebhookURLPrefix(prefix string) WebhookOption {
	return func(o *webhookOptions) { o.allowPrefixes = append(o.allowPrefixes, prefix) }
}

// WebhookURLFrom reads the Slack webhook URL that ref points to:
//
//	ssm:/path/to/param            an SSM parameter (SecureString decrypted), name or ARN
//	secretsmanager:name-or-arn    a secret whose value is the URL, or JSON {"url": "..."}
//	                              or {"webhook_url": "..."}
//	arn:aws:ssm:… / arn:aws:secretsmanager:…   the same, told apart by the ARN's service
//	/path/to/name or name         either kind (template.yaml's SlackWebhookSecretName): the SSM
//	                              parameter if it exists, else the secret of that name
//
// An empty ref returns "" and no error: Slack is not configured. Call it once per cold start and
// keep the result (in Slack.URL); every call is a billed API request. Only https://hooks.slack.com/
// URLs are accepted, so that a wrong parameter cannot send run details elsewhere. The URL is a
// secret: no error, and nothing this package logs, contains it.
func WebhookURLFrom(ctx context.Context, ref string, ssmAPI SSMAPI, sm SecretsAPI, opts ...WebhookOption) (string, error) {
	var o webhookOptions
	for _, opt := range opts {
		opt(&o)
	}
	ref = strings.TrimSpace(ref)
	var raw string
	var err error
	switch {
	case ref == "":
		return "", nil
	case strings.HasPrefix(ref, RefSSM):
		raw, err = fromSSM(ctx, ssmAPI, strings.TrimPrefix(ref, RefSSM))
	case strings.HasPrefix(ref, RefSecretsManager):
		raw, err = fromSecretsManager(ctx, sm, strings.TrimPrefix(ref, RefSecretsManager))
	case strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":ssm:"):
		raw, err = fromSSM(ctx, ssmAPI, ref)
	case strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":secretsmanager:"):
		raw, err = fromSecretsManager(ctx, sm, ref)
	case bareName.MatchString(ref):
		raw, err = fromSSM(ctx, ssmAPI, ref)
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) && sm != nil {
			raw, err = fromSecretsManager(ctx, sm, ref)
			if err != nil {
				err = fmt.Errorf("no SSM parameter of that name, and %w", err)
			}
		}
	default:
		// Not quoted: someone may have put the URL itself where the reference belongs.
		return "", fmt.Errorf("read Slack webhook URL: the reference is not an SSM parameter or Secrets Manager secret name (%s<name>, %s<name-or-arn>, an ARN, or a bare name)",
			RefSSM, RefSecretsManager)
	}
	if err != nil {
		return "", fmt.Errorf("read Slack webhook URL from %s: %w", ref, err)
	}
	raw = strings.TrimSpace(raw)
	if err := checkWebhookURL(raw, o.allowPrefixes); err != nil {
		return "", fmt.Errorf("read Slack webhook URL from %s: %w", ref, err)
	}
	return raw, nil
}

// bareName is a parameter or secret name without a prefix, as template.yaml allows it.
var bareName = regexp.MustCompile(`^[A-Za-z0-9/_.+=@-]{1,512}$`)

func fromSSM(ctx context.Context, api SSMAPI, name string) (string, error) {
	if name == "" || api == nil {
		return "", errors.New("no parameter name or no SSM client")
	}
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("ssm GetParameter: %w", err)
	}
	if out.Parameter == nil {
		return "", nil
	}
	return aws.ToString(out.Parameter.Value), nil
}

func fromSecretsManager(ctx context.Context, api SecretsAPI, id string) (string, error) {
	if id == "" || api == nil {
		return "", errors.New("no secret id or no Secrets Manager client")
	}
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("secretsmanager GetSecretValue: %w", err)
	}
	raw := aws.ToString(out.SecretString)
	if raw == "" {
		raw = string(out.SecretBinary)
	}
	return fromSecret(raw)
}

// fromSecret takes the URL out of a secret: the bare URL, or a JSON object holding it (what the
// console's key/value editor stores).
func fromSecret(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "{") {
		return v, nil
	}
	var kv map[string]any
	if err := json.Unmarshal([]byte(v), &kv); err != nil {
		// The JSON error would quote the secret.
		return "", errors.New("the secret looks like JSON but does not parse")
	}
	for _, k := range []string{"url", "webhook_url"} {
		if s, ok := kv[k].(string); ok && s != "" {
			return s, nil
		}
	}
	return "", errors.New(`the secret's JSON has no "url" or "webhook_url" string`)
}

// checkWebhookURL accepts https://hooks.slack.com/<path>, or a URL with an allowed prefix. Its
// errors never quote the value (url.Parse's would).
func checkWebhookURL(raw string, allow []string) error {
	if raw == "" {
		return errors.New("the value is empty")
	}
	for _, p := range allow {
		if p != "" && strings.HasPrefix(raw, p) {
			return nil
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host != "hooks.slack.com" || len(strings.Trim(u.Path, "/")) == 0 || u.User != nil {
		return errors.New("the value is not an https://hooks.slack.com/ webhook URL")
	}
	return nil
}

// SlackFromSecret returns the Slack channel whose webhook URL is in the SSM parameter or Secrets
// Manager secret ref (see WebhookURLFrom), read on first use. An unreadable secret holds up
// Slack only: the error is the channel's, and the read is tried again on the next message.
func SlackFromSecret(ref string, ssmAPI SSMAPI, sm SecretsAPI, log *slog.Logger) *SlackChannel {
	return &SlackChannel{Log: log, Resolve: func(ctx context.Context) (string, error) {
		return WebhookURLFrom(ctx, ref, ssmAPI, sm)
	}}
}
