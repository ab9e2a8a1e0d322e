package deploy

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/s3url"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ArtifactGetter reads one S3 object with the given credentials: a CodePipeline job's input
// artifact, with the job's artifactCredentials (the deployer's own role has no access to the
// artifacts bucket).
type ArtifactGetter interface {
	GetObject(ctx context.Context, creds aws.Credentials, bucket, key string) ([]byte, error)
}

// Errors of reading an artifact, for the job's failure type.
var (
	ErrArtifactDenied   = errors.New("access denied")      // PermissionError
	ErrArtifactMissing  = errors.New("no such artifact")   // JobFailed: CodePipeline lost it
	ErrTemplateNotFound = errors.New("template not found") // ConfigurationError
)

// DefaultMaxArtifactBytes bounds the artifact read into memory (the deployer has 256 MB).
const DefaultMaxArtifactBytes = 64 << 20

// S3Getter is an ArtifactGetter that sends a SigV4-signed GET (aws/signer/v4) instead of
// using the S3 client: linking service/s3 for this one call takes the deployer from
// 8,061,090 to 9,044,130 bytes (+0.94 MiB; linux/arm64, -tags lambda.norpc -trimpath
// -ldflags "-s -w"), past its 8 MiB budget. shared/enrich/presign.go signs the same way. What it does not do: S3 access points, S3 Express, FIPS or dual-stack
// endpoints, redirects to another region (the artifacts bucket is a plain bucket in the
// pipeline's region).
type S3Getter struct {
	Region string
	// Endpoint, when set, is the base URL of an S3-compatible endpoint (a local stand-in),
	// addressed path-style: <Endpoint>/<bucket>/<key>.
	Endpoint string
	// Client sends the request; default http.DefaultClient.
	Client *http.Client
	// Clock tells the signing time; nil: the wall clock.
	Clock pipeline.Clock
	// MaxBytes bounds the object; default DefaultMaxArtifactBytes.
	MaxBytes int64
}

// emptySHA256 is the SHA-256 of an empty body, the payload hash of a GET.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// GetObject GETs s3://bucket/key. The credentials sign the request only; they appear in no
// error.
func (g *S3Getter) GetObject(ctx context.Context, creds aws.Credentials, bucket, key string) ([]byte, error) {
	if bucket == "" || key == "" {
		return nil, errors.New("get artifact: bucket and key are required")
	}
	if g.Region == "" {
		return nil, errors.New("get artifact: region is required")
	}
	u, err := g.objectURL(bucket, key)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("get artifact s3://%s/%s: %w", bucket, key, err)
	}
	req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	clock := wallClockOr(g.Clock)
	// S3 signs the path as sent, escaped once.
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(ctx, creds, req, emptySHA256, "s3", g.Region, clock.Now().UTC()); err != nil {
		return nil, fmt.Errorf("get artifact s3://%s/%s: sign: %w", bucket, key, err)
	}
	client := g.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get artifact s3://%s/%s: %w", bucket, key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		code, msg := s3Error(resp.Body)
		err := fmt.Errorf("S3 answered %d %s: %s", resp.StatusCode, code, msg)
		switch {
		case resp.StatusCode == http.StatusForbidden:
			err = fmt.Errorf("%w (%v)", ErrArtifactDenied, err)
		case resp.StatusCode == http.StatusNotFound:
			err = fmt.Errorf("%w (%v)", ErrArtifactMissing, err)
		}
		return nil, fmt.Errorf("get artifact s3://%s/%s: %w", bucket, key, err)
	}
	limit := g.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxArtifactBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("get artifact s3://%s/%s: read: %w", bucket, key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("get artifact s3://%s/%s: larger than %d bytes", bucket, key, limit)
	}
	return data, nil
}

// s3Error reads the code and message of an S3 XML error body.
func s3Error(body io.Reader) (code, message string) {
	var e struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	data, _ := io.ReadAll(io.LimitReader(body, 4096))
	if xml.Unmarshal(data, &e) != nil || e.Code == "" {
		return "", strings.TrimSpace(truncate(string(data), 200))
	}
	return e.Code, e.Message
}

// objectURL addresses the object (see s3url.Object).
func (g *S3Getter) objectURL(bucket, key string) (*url.URL, error) {
	u, err := s3url.Object(g.Region, g.Endpoint, bucket, key)
	if err != nil {
		return nil, fmt.Errorf("get artifact: %w", err)
	}
	return u, nil
}

// TemplateFromZip returns the file at path inside a ZIP artifact (CodePipeline's artifacts
// are ZIPs; a CodeCommit source artifact holds the repository's tree). A missing file or a
// file over MaxTemplateBody is ErrTemplateNotFound or a misconfiguration the caller reports
// as such.
func TemplateFromZip(data []byte, path string) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("the artifact is not a ZIP: %w", err)
	}
	for _, f := range zr.File {
		if f.Name != path && f.Name != "./"+path {
			continue
		}
		if f.UncompressedSize64 > MaxTemplateBody {
			return "", fmt.Errorf("%w: %s is %d bytes; CloudFormation takes at most %d bytes inline", ErrTemplateTooLarge, path, f.UncompressedSize64, MaxTemplateBody)
		}
		rc, err := f.Open()
		if err != nil {
			return "", fmt.Errorf("open %s in the artifact: %w", path, err)
		}
		defer rc.Close()
		body, err := io.ReadAll(io.LimitReader(rc, MaxTemplateBody+1))
		if err != nil {
			return "", fmt.Errorf("read %s in the artifact: %w", path, err)
		}
		if len(body) > MaxTemplateBody {
			return "", fmt.Errorf("%w: %s is over %d bytes; CloudFormation takes at most %d bytes inline", ErrTemplateTooLarge, path, MaxTemplateBody, MaxTemplateBody)
		}
		return string(body), nil
	}
	return "", fmt.Errorf("%w: the artifact has no file %s", ErrTemplateNotFound, path)
}

// ErrTemplateTooLarge is a template over MaxTemplateBody (ConfigurationError).
var ErrTemplateTooLarge = errors.New("template too large")
