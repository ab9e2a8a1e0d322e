// Package s3url addresses an S3 object the way the SDK does, for the two places that sign an
// S3 request by hand instead of linking the S3 client (about 1 MB): the notifier's presigned
// BuildOutput link and the deployer's read of its input artifact.
package s3url

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/smithy-go/encoding/httpbinding"
)

// virtualHostable is a bucket name that can be a host label: no dots (a dotted name breaks the
// TLS wildcard certificate) and no upper case. Others are addressed path-style, as the SDK does.
var virtualHostable = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

// Object addresses the object virtual-host style on the regional endpoint when the bucket name
// allows it, path-style otherwise and on a custom endpoint (a local stand-in).
func Object(region, endpoint, bucket, key string) (*url.URL, error) {
	escapedKey := httpbinding.EscapePath(key, false)
	if endpoint != "" {
		base, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
		}
		prefix, rawPrefix := strings.TrimRight(base.Path, "/"), strings.TrimRight(base.EscapedPath(), "/")
		base.Path = prefix + "/" + bucket + "/" + key
		base.RawPath = rawPrefix + "/" + httpbinding.EscapePath(bucket, true) + "/" + escapedKey
		base.RawQuery, base.Fragment = "", ""
		return base, nil
	}
	suffix := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	host := "s3." + region + "." + suffix
	if virtualHostable.MatchString(bucket) {
		return &url.URL{Scheme: "https", Host: bucket + "." + host, Path: "/" + key, RawPath: "/" + escapedKey}, nil
	}
	return &url.URL{Scheme: "https", Host: host, Path: "/" + bucket + "/" + key,
		RawPath: "/" + httpbinding.EscapePath(bucket, true) + "/" + escapedKey}, nil
}
