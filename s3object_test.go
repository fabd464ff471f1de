package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/testenv"
)

// TestS3GetObject reads values written with the native API through the AWS SDK for
// Go: whole, in ranges, under conditions, from another replica when one is lost, and
// through a presigned URL fetched with curl.
func TestS3GetObject(t *testing.T) {
	c, s := s3Cluster(t, 3, "media")
	ctx := context.Background()
	small := []byte("0123456789")
	big := testenv.RandomBytes(3*chunkSize + 17)
	c.Put("/media/small", small)
	c.Put("/media/big file", big)
	etag := `"` + c.Record("/media/small").MD5 + `"`
	get := func(in s3.GetObjectInput) ([]byte, *s3.GetObjectOutput, error) {
		in.Bucket = aws.String("media")
		out, err := s.GetObject(ctx, &in)
		if err != nil {
			return nil, nil, err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return b, out, err
	}

	tests := []struct {
		name   string
		in     s3.GetObjectInput
		want   []byte
		code   string
		range_ string // Content-Range, for a range
	}{
		{"whole", s3.GetObjectInput{Key: aws.String("small")}, small, "", ""},
		{"larger than a buffer, key with a space", s3.GetObjectInput{Key: aws.String("big file")}, big, "", ""},
		{"first bytes", s3.GetObjectInput{Key: aws.String("small"), Range: aws.String("bytes=0-3")}, small[:4], "", "bytes 0-3/10"},
		{"from an offset", s3.GetObjectInput{Key: aws.String("small"), Range: aws.String("bytes=6-")}, small[6:], "", "bytes 6-9/10"},
		{"last bytes", s3.GetObjectInput{Key: aws.String("small"), Range: aws.String("bytes=-3")}, small[7:], "", "bytes 7-9/10"},
		{"a range of a large value", s3.GetObjectInput{Key: aws.String("big file"), Range: aws.String("bytes=262100-600000")}, big[262100:600001], "", "bytes 262100-600000/786449"},
		{"past the end", s3.GetObjectInput{Key: aws.String("small"), Range: aws.String("bytes=10-")}, nil, "InvalidRange", ""},
		{"if-match", s3.GetObjectInput{Key: aws.String("small"), IfMatch: aws.String(etag)}, small, "", ""},
		{"if-match, another etag", s3.GetObjectInput{Key: aws.String("small"), IfMatch: aws.String(`"abc"`)}, nil, "PreconditionFailed", ""},
		{"if-none-match", s3.GetObjectInput{Key: aws.String("small"), IfNoneMatch: aws.String(etag)}, nil, "NotModified", ""},
		{"if-modified-since, later", s3.GetObjectInput{Key: aws.String("small"), IfModifiedSince: aws.Time(time.Now().Add(time.Hour))}, nil, "NotModified", ""},
		{"if-modified-since, earlier", s3.GetObjectInput{Key: aws.String("small"), IfModifiedSince: aws.Time(time.Now().Add(-time.Hour))}, small, "", ""},
		{"if-unmodified-since, earlier", s3.GetObjectInput{Key: aws.String("small"), IfUnmodifiedSince: aws.Time(time.Now().Add(-time.Hour))}, nil, "PreconditionFailed", ""},
		{"missing key", s3.GetObjectInput{Key: aws.String("nope")}, nil, "NoSuchKey", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, out, err := get(tt.in)
			if code := s3Code(err); code != tt.code {
				t.Fatalf("got %v, want %q", err, tt.code)
			}
			if tt.code != "" {
				return
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tt.want))
			}
			if aws.ToString(out.ContentRange) != tt.range_ || aws.ToInt64(out.ContentLength) != int64(len(tt.want)) {
				t.Fatalf("Content-Range %q, Content-Length %d", aws.ToString(out.ContentRange), aws.ToInt64(out.ContentLength))
			}
		})
	}

	t.Run("a replica lost", func(t *testing.T) {
		rec := c.Record("/media/small")
		if err := os.Remove(filepath.Join(volumeDir(c, rec.Volumes[0]), rec.Path("/media/small"))); err != nil {
			t.Fatal(err)
		}
		for range 5 { // whichever replica is tried first
			if got, _, err := get(s3.GetObjectInput{Key: aws.String("small")}); err != nil || !bytes.Equal(got, small) {
				t.Fatalf("GetObject with a replica lost: %q, %v", got, err)
			}
		}
	})

	t.Run("presigned URL with curl", func(t *testing.T) {
		req, err := s3.NewPresignClient(s).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("big file")},
			s3.WithPresignExpires(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("curl", "-sf", req.URL).Output()
		if err != nil || !bytes.Equal(out, big) {
			t.Fatalf("curl of a presigned URL: %d bytes, %v", len(out), err)
		}
		tampered := strings.Replace(req.URL, "big%20file", "small", 1)
		resp, err := http.Get(tampered)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("presigned URL for another key: %d, want 403", resp.StatusCode)
		}
	})
}

// TestS3DeleteObjects deletes keys in one request with the AWS SDK for Go: those that
// exist and those that do not are deleted, a key davkv refuses is reported, Quiet
// reports only failures.
func TestS3DeleteObjects(t *testing.T) {
	c, s := s3Cluster(t, 3, "trash")
	ctx := context.Background()
	for _, k := range []string{"a", "b c", "d&e", "keep"} {
		c.Put("/trash/"+k, []byte(k))
	}
	objects := func(keys ...string) []types.ObjectIdentifier {
		var ids []types.ObjectIdentifier
		for _, k := range keys {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
		}
		return ids
	}
	out, err := s.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("trash"),
		Delete: &types.Delete{Objects: objects("a", "b c", "missing", "x/../y")}})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	if !slices.Equal(deleted, []string{"a", "b c", "missing"}) || len(out.Errors) != 1 ||
		aws.ToString(out.Errors[0].Key) != "x/../y" || aws.ToString(out.Errors[0].Code) != "InvalidArgument" {
		t.Fatalf("DeleteObjects: deleted %q, errors %+v", deleted, out.Errors)
	}
	out, err = s.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("trash"),
		Delete: &types.Delete{Objects: objects("d&e"), Quiet: aws.Bool(true)}})
	if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Fatalf("quiet DeleteObjects: %+v, %v", out, err)
	}
	if got := listKeys(t, c, "/trash/?list"); !slices.Equal(got.Keys, []string{"/trash/keep"}) {
		t.Fatalf("keys left: %q", got.Keys)
	}
	if files := c.AllFiles(); len(files) != 3 {
		t.Fatalf("files left: %q, want the 3 replicas of /trash/keep", files)
	}
	_, err = s.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("trash"), Delete: &types.Delete{Objects: objects(make([]string, 1001)...)}})
	if s3Code(err) != "MalformedXML" {
		t.Fatalf("DeleteObjects of 1001 keys: %v, want MalformedXML", err)
	}
}

// TestS3HeadAndDeleteObject: HeadObject answers from the index; DeleteObject removes
// the value from every volume and answers 204 for a missing key too.
func TestS3HeadAndDeleteObject(t *testing.T) {
	c, s := s3Cluster(t, 3, "docs")
	ctx := context.Background()
	c.Put("/docs/report.pdf", []byte("%PDF-1.7"))
	head, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("docs"), Key: aws.String("report.pdf")})
	sum := md5.Sum([]byte("%PDF-1.7"))
	if err != nil || aws.ToInt64(head.ContentLength) != 8 || aws.ToString(head.ETag) != `"`+hex.EncodeToString(sum[:])+`"` || head.LastModified == nil {
		t.Fatalf("HeadObject: %+v, %v", head, err)
	}
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"head a missing key", func() error {
			_, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("docs"), Key: aws.String("nope")})
			return err
		}, "404"},
		{"delete", func() error {
			_, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("docs"), Key: aws.String("report.pdf")})
			return err
		}, ""},
		{"head after delete", func() error {
			_, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("docs"), Key: aws.String("report.pdf")})
			return err
		}, "404"},
		{"delete a missing key", func() error {
			_, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("docs"), Key: aws.String("report.pdf")})
			return err
		}, ""},
		{"delete in a missing bucket", func() error {
			_, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
			return err
		}, "NoSuchBucket"},
		{"delete a key the native API refuses", func() error {
			_, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("docs"), Key: aws.String("a/../b")})
			return err
		}, "InvalidArgument"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got := s3Code(st.do()); got != st.want {
				t.Fatalf("got %q, want %q", got, st.want)
			}
		})
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Fatalf("files left after DeleteObject: %q", files)
	}
}
