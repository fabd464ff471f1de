package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestS3Tagging tags objects with the AWS SDK for Go as S3 clients do: on PutObject,
// CopyObject (COPY and REPLACE) and multipart uploads, then with PutObjectTagging and
// DeleteObjectTagging; S3's limits are InvalidTag and change nothing, and tagging never
// changes the value, its ETag or its time.
func TestS3Tagging(t *testing.T) {
	c, s := s3Cluster(t, 3, "tags")
	ctx := context.Background()
	bucket := aws.String("tags")
	tagsOf := func(t *testing.T, key string) string {
		t.Helper()
		out, err := s.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObjectTagging %s: %v", key, err)
		}
		var kv []string
		for _, tag := range out.TagSet {
			kv = append(kv, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
		}
		return strings.Join(kv, "&")
	}
	count := func(t *testing.T, key string) int32 {
		t.Helper()
		out, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(out.TagCount)
	}

	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("k"), Body: strings.NewReader("v"), Tagging: aws.String("project=x&owner=a%20b")}); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf(t, "k"); got != "owner=a b&project=x" { // in key order, as S3 answers
		t.Fatalf("tags %q", got)
	}
	if n := count(t, "k"); n != 2 {
		t.Fatalf("x-amz-tagging-count %d", n)
	}
	before := c.Record("/tags/k")

	tagSet := func(n int) []types.Tag {
		var set []types.Tag
		for i := range n {
			set = append(set, types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")})
		}
		return set
	}
	tests := []struct {
		name string
		set  []types.Tag
		code string
		want string
	}{
		{"replace", []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}, "", "a=1"},
		{"ten", tagSet(10), "", "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v"},
		{"eleven", tagSet(11), "InvalidTag", "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v"},
		{"key too long", []types.Tag{{Key: aws.String(strings.Repeat("k", 129)), Value: aws.String("v")}}, "InvalidTag", "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v"},
		{"value too long", []types.Tag{{Key: aws.String("k"), Value: aws.String(strings.Repeat("v", 257))}}, "InvalidTag", "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v"},
		{"same key twice", []types.Tag{{Key: aws.String("k"), Value: aws.String("1")}, {Key: aws.String("k"), Value: aws.String("2")}}, "InvalidTag", "k0=v&k1=v&k2=v&k3=v&k4=v&k5=v&k6=v&k7=v&k8=v&k9=v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bucket, Key: aws.String("k"), Tagging: &types.Tagging{TagSet: tt.set}})
			if code := s3Code(err); code != tt.code {
				t.Fatalf("got %q, want %q", code, tt.code)
			}
			if got := tagsOf(t, "k"); got != tt.want {
				t.Fatalf("tags %q, want %q", got, tt.want)
			}
		})
	}
	if after := c.Record("/tags/k"); after.MD5 != before.MD5 || after.Modified != before.Modified || after.Gen != before.Gen {
		t.Fatalf("tagging changed the value: %+v, was %+v", after, before)
	}
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("bad"), Body: strings.NewReader("v"), Tagging: aws.String("a=1&a=2")}); s3Code(err) != "InvalidTag" {
		t.Fatalf("PutObject with a key twice: %v", err)
	}
	if status, _ := c.Get("/tags/bad"); status != 404 {
		t.Fatalf("PutObject with bad tags stored: %d", status)
	}
	if _, err := s.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bucket, Key: aws.String("nokey"), Tagging: &types.Tagging{TagSet: tagSet(1)}}); s3Code(err) != "NoSuchKey" {
		t.Fatalf("PutObjectTagging of a missing key: %v", err)
	}

	t.Run("copy", func(t *testing.T) {
		if _, err := s.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String("copied"), CopySource: aws.String("tags/k")}); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(t, "copied"); got != tagsOf(t, "k") {
			t.Fatalf("COPY: %q", got)
		}
		if _, err := s.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String("replaced"), CopySource: aws.String("tags/k"),
			TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("new=1")}); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(t, "replaced"); got != "new=1" {
			t.Fatalf("REPLACE: %q", got)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String("mp"), Tagging: aws.String("from=upload")})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String("mp"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p.ETag}}}}); err != nil {
			t.Fatal(err)
		}
		if got := tagsOf(t, "mp"); got != "from=upload" {
			t.Fatalf("multipart: %q", got)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if _, err := s.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: bucket, Key: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
		if got, n := tagsOf(t, "k"), count(t, "k"); got != "" || n != 0 {
			t.Fatalf("after DeleteObjectTagging: %q, count %d", got, n)
		}
	})
}
