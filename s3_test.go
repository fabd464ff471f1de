package main

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"davkv/internal/s3proto"
)

// TestS3Front: what every S3 request goes through before its operation. Bad
// signatures are refused with S3's codes, unimplemented operations answer
// NotImplemented, and errors come as S3's XML; unsigned native requests are untouched.
func TestS3Front(t *testing.T) {
	c, good := s3Cluster(t, 3, "front")
	ctx := context.Background()
	tests := []struct {
		name   string
		do     func() error
		code   string
		status int
	}{
		{"wrong secret", func() error {
			_, err := s3Client(c, "davkvtest", "wrong").ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}, "SignatureDoesNotMatch", http.StatusForbidden},
		{"unknown access key", func() error {
			_, err := s3Client(c, "nobody", "davkvtestsecret").ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		}, "InvalidAccessKeyId", http.StatusForbidden},
		{"wrong secret creating a bucket", func() error {
			_, err := s3Client(c, "davkvtest", "wrong").CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("sneaky")})
			return err
		}, "SignatureDoesNotMatch", http.StatusForbidden},
		{"an operation not implemented yet", func() error {
			_, err := good.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: aws.String("front"), Key: aws.String("k")})
			return err
		}, "NotImplemented", http.StatusNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			var re *awshttp.ResponseError
			if s3Code(err) != tt.code || !errors.As(err, &re) || re.HTTPStatusCode() != tt.status {
				t.Fatalf("got %v, want %s (%d)", err, tt.code, tt.status)
			}
		})
	}
	if _, err := good.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("sneaky")}); s3Code(err) != "404" {
		t.Fatalf("a bucket created with a wrong secret: %v", err)
	}

	// An unsigned S3 request: the error is S3's XML, naming the resource and request.
	resp := c.Do(http.MethodGet, "/front?location", nil)
	var body s3proto.ErrorBody
	if err := xml.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden || body.Code != "AccessDenied" || body.Resource != "/front" ||
		body.RequestID == "" || body.RequestID != resp.Header.Get("X-Amz-Request-Id") || body.Message == "" {
		t.Fatalf("unsigned S3 request: %d %+v", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml" {
		t.Fatalf("S3 error Content-Type %q", ct)
	}

	// Unsigned native requests keep the native API, under a bucket's prefix too.
	c.Put("/front/native", []byte("v"))
	if got := listKeys(t, c, "/front/?list"); len(got.Keys) != 1 || got.Keys[0] != "/front/native" {
		t.Fatalf("native ?list: %q", got.Keys)
	}
	if resp := c.Do(http.MethodGet, "/front/native", nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("native GET: %d, want a redirect", resp.StatusCode)
	}
}

// TestS3WithoutKeys: with no -s3keys, any signature is accepted.
func TestS3WithoutKeys(t *testing.T) {
	c := startCluster(t, 3, nil)
	ctx := context.Background()
	s := s3Client(c, "anyone", "anything")
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("open")}); err != nil {
		t.Fatal(err)
	}
	list, err := s3Client(c, "someone-else", "x").ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil || len(list.Buckets) != 1 || aws.ToString(list.Buckets[0].Name) != "open" {
		t.Fatalf("ListBuckets without keys: %v, %v", list, err)
	}

	// Unchecked signatures still leave the body's checksums checked.
	c.Put("/open/k", []byte("v"))
	body := `<Delete><Object><Key>k</Key></Object></Delete>`
	for _, tt := range []struct {
		header, value string
		status        int
	}{
		{"Content-Md5", "AAAAAAAAAAAAAAAAAAAAAA==", http.StatusBadRequest},
		{"X-Amz-Checksum-Crc32", "AAAAAA==", http.StatusBadRequest},
		{"X-Amz-Content-Sha256", strings.Repeat("0", 64), http.StatusBadRequest},
		{"Content-Md5", "", http.StatusBadRequest}, // an empty one is InvalidDigest, as in S3
		{"Content-Type", "application/xml", http.StatusOK},
	} {
		resp := c.Do(http.MethodPost, "/open?delete", strings.NewReader(body), tt.header, tt.value)
		if resp.StatusCode != tt.status {
			t.Fatalf("DeleteObjects with %s %q: %d, want %d", tt.header, tt.value, resp.StatusCode, tt.status)
		}
		if tt.status != http.StatusOK {
			if got := listKeys(t, c, "/open/?list"); len(got.Keys) != 1 {
				t.Fatalf("a DeleteObjects with a bad checksum deleted: %q left", got.Keys)
			}
		}
	}
	if got := listKeys(t, c, "/open/?list"); len(got.Keys) != 0 {
		t.Fatalf("DeleteObjects left %q", got.Keys)
	}
}

// TestS3VirtualHost: with -s3domain, a request to BUCKET.DOMAIN names BUCKET, as S3
// clients address buckets by default; path-style requests keep working beside it.
func TestS3VirtualHost(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys, cfg.S3Domain = testS3Keys, "s3.davkv.test" })
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(c.URL, "http://"))
	// Every host name goes to the master on loopback: no name is looked up.
	dialer := &net.Dialer{Timeout: time.Second}
	httpClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, "127.0.0.1:"+port)
	}}}
	vhost := s3.New(s3.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String("http://s3.davkv.test:" + port),
		Credentials:      credentials.NewStaticCredentialsProvider("davkvtest", "davkvtestsecret", ""),
		HTTPClient:       httpClient,
		RetryMaxAttempts: 1,
	})
	ctx := context.Background()
	if _, err := vhost.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost")}); err != nil {
		t.Fatal(err)
	}
	c.Put("/vhost/dir/k", []byte("value"))
	out, err := vhost.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("dir/k")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || string(got) != "value" {
		t.Fatalf("virtual-host GetObject: %q, %v", got, err)
	}
	list, err := vhost.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vhost")})
	if err != nil || len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "dir/k" {
		t.Fatalf("virtual-host ListObjectsV2: %+v, %v", list, err)
	}
	if _, err := s3Client(c, "davkvtest", "davkvtestsecret").HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("vhost")}); err != nil {
		t.Fatalf("path-style HeadBucket beside virtual hosts: %v", err)
	}
}
