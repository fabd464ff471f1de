package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/testenv"
)

// TestS3CopyObject copies objects with the AWS SDK for Go: within a bucket and across
// buckets, small and streamed, with the source's headers or new ones, onto itself, and
// under conditions; a corrupt source replica or a missing source stores nothing.
func TestS3CopyObject(t *testing.T) {
	c, s := s3Cluster(t, 3, "src")
	ctx := context.Background()
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("dst")}); err != nil {
		t.Fatal(err)
	}
	small, big := []byte("small value"), testenv.RandomBytes(3*chunkSize+11)
	for key, v := range map[string][]byte{"small": small, "big": big} {
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String(key), Body: bytes.NewReader(v),
			ContentType: aws.String("image/png"), Metadata: map[string]string{"camera": "rear"}}); err != nil {
			t.Fatal(err)
		}
	}
	c.Put("/src/native key&", small)
	get := func(t *testing.T, bucket, key string) ([]byte, *s3.GetObjectOutput) {
		t.Helper()
		out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s/%s: %v", bucket, key, err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b, out
	}
	copyObject := func(in *s3.CopyObjectInput) (*s3.CopyObjectOutput, error) {
		if in.Bucket == nil {
			in.Bucket = aws.String("dst")
		}
		return s.CopyObject(ctx, in)
	}

	tests := []struct {
		name, source, bucket, key string
		value                     []byte
		replace                   bool
	}{
		{"within a bucket", "src/small", "src", "small copy", small, false},
		{"across buckets, streamed", "src/big", "dst", "big", big, false},
		{"a native key, escaped", "src/native%20key%26", "dst", "from native", small, false},
		{"new headers", "/src/small", "dst", "replaced", small, true},
		{"onto itself, new headers", "src/big", "src", "big", big, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &s3.CopyObjectInput{Bucket: aws.String(tt.bucket), Key: aws.String(tt.key), CopySource: aws.String(tt.source)}
			if tt.replace {
				in.MetadataDirective = types.MetadataDirectiveReplace
				in.ContentType = aws.String("text/plain")
			}
			out, err := copyObject(in)
			if err != nil {
				t.Fatal(err)
			}
			got, obj := get(t, tt.bucket, tt.key)
			if !bytes.Equal(got, tt.value) || aws.ToString(obj.ETag) != aws.ToString(out.CopyObjectResult.ETag) {
				t.Fatalf("copy: %d bytes, ETag %s (copy answered %s)", len(got), aws.ToString(obj.ETag), aws.ToString(out.CopyObjectResult.ETag))
			}
			wantType, wantMeta := "image/png", "rear"
			switch {
			case tt.replace:
				wantType, wantMeta = "text/plain", ""
			case tt.source == "src/native%20key%26":
				wantType, wantMeta = "application/octet-stream", ""
			}
			if aws.ToString(obj.ContentType) != wantType || obj.Metadata["camera"] != wantMeta {
				t.Fatalf("headers: %q %v, want %q and camera %q", aws.ToString(obj.ContentType), obj.Metadata, wantType, wantMeta)
			}
		})
	}

	before := c.AllFiles()
	bad := []struct {
		name string
		in   *s3.CopyObjectInput
		code string
	}{
		{"onto itself, same headers", &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("small"), CopySource: aws.String("src/small")}, "InvalidRequest"},
		{"missing source", &s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("src/nothing")}, "NoSuchKey"},
		{"missing source bucket", &s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("nobucket/small")}, "NoSuchBucket"},
		{"source not BUCKET/KEY", &s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("src")}, "InvalidArgument"},
		{"a version", &s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("src/small?versionId=3")}, "InvalidArgument"},
		{"If-Match fails", &s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("src/small"), CopySourceIfMatch: aws.String(`"0000"`)}, "PreconditionFailed"},
		{"If-Modified-Since fails", &s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("src/small"), CopySourceIfModifiedSince: aws.Time(time.Now().Add(time.Hour))}, "PreconditionFailed"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := copyObject(tt.in); s3Code(err) != tt.code {
				t.Fatalf("CopyObject: %v, want %s", err, tt.code)
			}
		})
	}
	if now := c.AllFiles(); !slices.Equal(now, before) {
		t.Fatalf("refused copies changed the volumes:\n%q\nwant\n%q", now, before)
	}
	if _, err := copyObject(&s3.CopyObjectInput{Key: aws.String("x"), CopySource: aws.String("src/small"), CopySourceIfNoneMatch: aws.String(`"0000"`)}); err != nil {
		t.Fatalf("CopyObject with an If-None-Match that holds: %v", err)
	}

	// A source replica corrupted on disk (same size): the copy's MD5 check refuses it.
	rec := c.Record("/src/big")
	for _, v := range rec.Volumes {
		if err := os.WriteFile(filepath.Join(volumeDir(c, v), rec.Path("/src/big")), bytes.Repeat([]byte("!"), int(rec.Size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before = c.AllFiles()
	if _, err := copyObject(&s3.CopyObjectInput{Key: aws.String("big"), CopySource: aws.String("src/big")}); s3Code(err) != "InternalError" {
		t.Fatalf("copy of a corrupt source: %v", err)
	}
	if got, _ := get(t, "dst", "big"); !bytes.Equal(got, big) {
		t.Fatalf("the destination changed after a failed copy")
	}
	testenv.Eventually(t, 10*time.Second, "files of the failed copy left", func() bool { return len(c.AllFiles()) == len(before) })
	if status, _ := c.Get("/dst/x"); status != http.StatusOK {
		t.Fatalf("native GET of a copy: %d", status)
	}
}
