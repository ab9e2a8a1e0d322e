package enrich_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lambda-pipeline/lambda-pipeline/shared/enrich"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// S3Presigner replaces the SDK's presigner to keep the S3 client out of the binary; it must
// sign exactly what the SDK signs. The test takes the SDK's signing time from its URL and
// signs at that time: the URLs must be equal, signature included.
func TestS3PresignerSignsAsTheSDKDoes(t *testing.T) {
	// A Lambda role's credentials carry a session token.
	creds := credentials.NewStaticCredentialsProvider("ASIAFAKE", "fake-secret", "fake-session-token")
	ctx := context.Background()
	for _, tc := range []struct{ name, region, bucket, key, endpoint string }{
		{"virtual host", "us-east-1", "my-lambda-artifacts", "my-lambda-pipeline/BuildOutput/Xy12Abc", ""},
		{"other region", "eu-west-1", "my-lambda-artifacts", "p/BuildOutput/k", ""},
		{"key with characters to escape", "us-east-1", "my-lambda-artifacts", "dir with space/ü+=&?#%~'!*().zip", ""},
		{"dotted bucket is path-style", "us-east-1", "my.dotted.bucket", "k.zip", ""},
		{"custom endpoint is path-style", "us-east-1", "artifacts", "a/b c.zip", "http://127.0.0.1:4566"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := s3.NewFromConfig(aws.Config{Region: tc.region, Credentials: creds}, func(o *s3.Options) {
				if tc.endpoint != "" {
					o.BaseEndpoint, o.UsePathStyle = aws.String(tc.endpoint), true
				}
			})
			want, err := s3.NewPresignClient(client).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tc.bucket), Key: aws.String(tc.key)},
				s3.WithPresignExpires(6*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(want.URL)
			if err != nil {
				t.Fatal(err)
			}
			signedAt, err := time.Parse("20060102T150405Z", u.Query().Get("X-Amz-Date"))
			if err != nil {
				t.Fatal(err)
			}
			p := &enrich.S3Presigner{Credentials: creds, Region: tc.region, Endpoint: tc.endpoint, Clock: pipeline.ClockFunc(func() time.Time { return signedAt })}
			got, err := p.PresignGetObject(ctx, tc.bucket, tc.key, 6*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if got != want.URL {
				t.Errorf("presigned\n got  %s\n want %s", got, want.URL)
			}
		})
	}
}

func TestS3PresignerRefusesWhatS3Would(t *testing.T) {
	p := enrich.NewS3Presigner(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", "")}, pipeline.SystemClock{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, bucket, key string
		expires           time.Duration
	}{
		{"over 7 days", "b", "k", 7*24*time.Hour + time.Second},
		{"under a minute", "b", "k", 59 * time.Second},
		{"no bucket", "", "k", time.Hour},
		{"no key", "b", "", time.Hour},
	} {
		if u, err := p.PresignGetObject(ctx, tc.bucket, tc.key, tc.expires); err == nil {
			t.Errorf("%s: signed %s", tc.name, u)
		}
	}
	if _, err := p.PresignGetObject(ctx, "b", "k", 7*24*time.Hour); err != nil {
		t.Errorf("7 days: %v", err)
	}
}
