package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"davkv/internal/s3proto"
)

// testS3Keys are the access keys of the S3 tests' clusters.
var testS3Keys = s3proto.Keys{"davkvtest": "davkvtestsecret"}

// s3Client is the AWS SDK's S3 client for c's master, path-style, signing with access
// and secret, never retrying: a test sees every answer.
func s3Client(c *testCluster, access, secret string) *s3.Client {
	return s3ClientAt(c.URL, access, secret)
}

// s3ClientAt is s3Client for the master at url.
func s3ClientAt(url, access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(access, secret, ""),
		RetryMaxAttempts: 1,
	})
}

// s3Cluster starts a cluster of n volumes whose master checks testS3Keys, creates
// bucket, and returns the cluster with an S3 client that signs with those keys.
func s3Cluster(t *testing.T, n int, bucket string) (*testCluster, *s3.Client) {
	t.Helper()
	c := startCluster(t, n, func(cfg *ServerConfig) { cfg.S3Keys = testS3Keys })
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	if _, err := s.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return c, s
}

// s3Code returns the S3 error code of err, or its HTTP status when the answer had no
// body (HEAD), as "404".
func s3Code(err error) string {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && strings.Contains(err.Error(), "NotFound"):
		return "404"
	case errors.As(err, &ae):
		return ae.ErrorCode()
	}
	return err.Error()
}

// TestS3Buckets drives the bucket operations with the AWS SDK for Go: create (and the
// name rules), head, list, location, delete (refused while a key remains), and
// buckets surviving a restart.
func TestS3Buckets(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys = testS3Keys })
	ctx := context.Background()
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	created := time.Now()

	steps := []struct {
		name string
		do   func() error
		want string // the S3 error code, or "" for success
	}{
		{"create alpha", func() error {
			_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
			return err
		}, ""},
		{"create beta.2", func() error {
			_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("beta.2")})
			return err
		}, ""},
		{"create alpha again, in us-east-1", func() error {
			_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
			return err
		}, ""},
		{"create alpha again, in another region", func() error {
			_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha"),
				CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
			return err
		}, "BucketAlreadyOwnedByYou"},
		{"head alpha", func() error {
			_, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")})
			return err
		}, ""},
		{"head a missing bucket", func() error {
			_, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("gamma")})
			return err
		}, "404"},
		{"location of a missing bucket", func() error {
			_, err := s.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("gamma")})
			return err
		}, "NoSuchBucket"},
		{"delete a missing bucket", func() error {
			_, err := s.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("gamma")})
			return err
		}, "NoSuchBucket"},
	}
	for _, bad := range []string{"ab", strings.Repeat("a", 64), "Upper", "under_score", "-dash", "dash-", "two..dots", "192.168.1.1"} {
		steps = append(steps, struct {
			name string
			do   func() error
			want string
		}{"create " + bad, func() error {
			_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bad)})
			return err
		}, "InvalidBucketName"})
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := s3Code(st.do()); got != st.want {
				t.Fatalf("got %q, want %q", got, st.want)
			}
		})
	}

	list, err := s.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range list.Buckets {
		names = append(names, aws.ToString(b.Name))
		if d := aws.ToTime(b.CreationDate).Sub(created); d < -time.Second || d > time.Minute {
			t.Errorf("bucket %s created at %v, the test began at %v", aws.ToString(b.Name), b.CreationDate, created)
		}
	}
	if !slices.Equal(names, []string{"alpha", "beta.2"}) {
		t.Fatalf("ListBuckets: %q", names)
	}
	t.Run("pages of buckets", func(t *testing.T) {
		var pages [][]string
		p := s3.NewListBucketsPaginator(s, &s3.ListBucketsInput{MaxBuckets: aws.Int32(1)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var page []string
			for _, b := range out.Buckets {
				page = append(page, aws.ToString(b.Name))
			}
			pages = append(pages, page)
		}
		if fmt.Sprint(pages) != "[[alpha] [beta.2]]" {
			t.Fatalf("pages %q", pages)
		}
		out, err := s.ListBuckets(ctx, &s3.ListBucketsInput{Prefix: aws.String("be")})
		if err != nil || len(out.Buckets) != 1 || aws.ToString(out.Buckets[0].Name) != "beta.2" || aws.ToString(out.Prefix) != "be" {
			t.Fatalf("prefix be: %+v, %v", out, err)
		}
		if _, err := s.ListBuckets(ctx, &s3.ListBucketsInput{MaxBuckets: aws.Int32(0)}); s3Code(err) != "InvalidArgument" {
			t.Fatalf("max-buckets 0: %v", err)
		}
	})
	loc, err := s.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Fatalf("GetBucketLocation: %q, %v; want the empty constraint of us-east-1", loc.LocationConstraint, err)
	}

	// A key under /alpha/, written with the native API, is the bucket's.
	c.Put("/alpha/photo.jpg", []byte("jpeg"))
	if _, err := s.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")}); s3Code(err) != "BucketNotEmpty" {
		t.Fatalf("DeleteBucket with a key in it: %v, want BucketNotEmpty", err)
	}
	c.RestartMaster()
	s = s3Client(c, "davkvtest", "davkvtestsecret") // the master listens on a new port
	if _, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatalf("HeadBucket after a restart: %v", err)
	}
	if resp := c.Do(http.MethodDelete, "/alpha/photo.jpg", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("native DELETE: %d", resp.StatusCode)
	}
	if _, err := s.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatalf("DeleteBucket once empty: %v", err)
	}
	if _, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")}); s3Code(err) != "404" {
		t.Fatalf("HeadBucket after DeleteBucket: %v", err)
	}
}
