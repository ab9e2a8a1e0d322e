package enrich

import (
	"context"
	"fmt"

	"github.com/lambda-pipeline/lambda-pipeline/shared/console"
	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
)

// buildOutput returns the BuildOutput artifact: the run's newest, or the failed action's own
// when the record has no location for it.
func buildOutput(run pipeline.Run, f pipeline.Failure) (pipeline.Artifact, bool) {
	if a, ok := run.Artifact(pipeline.ArtifactBuildOutput); ok && a.Bucket != "" && a.Key != "" {
		return a, true
	}
	for _, a := range f.Artifacts {
		if a.Name == pipeline.ArtifactBuildOutput && a.Bucket != "" && a.Key != "" {
			return a, true
		}
	}
	return pipeline.Artifact{}, false
}

// artifact links the BuildOutput artifact: its S3 console page (built) and a presigned GET
// that works without a console sign-in.
//
// The link is signed with the function's credentials. On Lambda those are the execution
// role's temporary credentials, and S3 refuses a URL signed with temporary credentials once
// they expire, whatever its X-Amz-Expires ("Download and upload objects with presigned URLs",
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html; see
// docs/aws-behaviour.md, S3 presigned URLs): the link may die before Expires,
// which is the lifetime asked for. Signing is local (no call), so it is bounded like the other
// look-ups only because retrieving credentials may call out.
func (e *Enricher) artifact(ctx context.Context, run pipeline.Run, f pipeline.Failure, ns *notes) *pipeline.ArtifactLinks {
	art, ok := buildOutput(run, f)
	if !ok {
		return nil
	}
	links := &pipeline.ArtifactLinks{Bucket: art.Bucket, Key: art.Key, ConsoleURL: console.S3ObjectURL(e.Region, art.Bucket, art.Key)}
	if e.Presign == nil {
		return links
	}
	expiry := e.linkExpiry()
	signedAt := e.Clock.Now()
	var link string
	why := e.lookup(ctx, func(ctx context.Context) error {
		var err error
		link, err = e.Presign.PresignGetObject(ctx, art.Bucket, art.Key, expiry)
		if err != nil {
			return fmt.Errorf("presign s3://%s/%s: %w", art.Bucket, art.Key, err)
		}
		return nil
	})
	if why != "" {
		ns.add(slotArtifact, degraded("artifact download link", why, "s3:GetObject presign"))
		return links
	}
	links.PresignedURL, links.Expires = link, signedAt.Add(expiry)
	return links
}
