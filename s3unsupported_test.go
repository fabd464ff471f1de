package main

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestS3UnsupportedHeaders sends, with the AWS SDK for Go, writes that ask for what
// davkv does not do (encryption, ACL grants, object lock, another storage class) and
// checks that each is refused with S3's error and stores nothing; what davkv does
// anyway (a private ACL, STANDARD) is accepted.
func TestS3UnsupportedHeaders(t *testing.T) {
	c, s := s3Cluster(t, 3, "hdr")
	ctx := context.Background()
	sseKey := strings.Repeat("k", 32)
	sum := md5.Sum([]byte(sseKey))
	put := func(f func(*s3.PutObjectInput)) error {
		in := &s3.PutObjectInput{Bucket: aws.String("hdr"), Key: aws.String("k"), Body: strings.NewReader("value")}
		f(in)
		_, err := s.PutObject(ctx, in)
		return err
	}
	tests := []struct {
		name string
		do   func() error
		code string
	}{
		{"sse-s3", func() error {
			return put(func(in *s3.PutObjectInput) { in.ServerSideEncryption = types.ServerSideEncryptionAes256 })
		}, "NotImplemented"},
		{"sse-kms", func() error {
			return put(func(in *s3.PutObjectInput) {
				in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String("key")
			})
		}, "NotImplemented"},
		{"sse-c", func() error {
			return put(func(in *s3.PutObjectInput) {
				in.SSECustomerAlgorithm = aws.String("AES256")
				in.SSECustomerKey = aws.String(base64.StdEncoding.EncodeToString([]byte(sseKey)))
				in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
			})
		}, "NotImplemented"},
		{"public-read", func() error { return put(func(in *s3.PutObjectInput) { in.ACL = types.ObjectCannedACLPublicRead }) }, "NotImplemented"},
		{"grant", func() error { return put(func(in *s3.PutObjectInput) { in.GrantRead = aws.String(`id="someone"`) }) }, "NotImplemented"},
		{"object lock", func() error {
			return put(func(in *s3.PutObjectInput) { in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn })
		}, "NotImplemented"},
		{"glacier", func() error { return put(func(in *s3.PutObjectInput) { in.StorageClass = types.StorageClassGlacier }) }, "NotImplemented"},
		{"multipart with sse", func() error {
			_, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("hdr"), Key: aws.String("k"), ServerSideEncryption: types.ServerSideEncryptionAes256})
			return err
		}, "NotImplemented"},
		{"copy with sse", func() error {
			c.Put("/hdr/src", []byte("source"))
			_, err := s.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("hdr"), Key: aws.String("k"), CopySource: aws.String("hdr/src"), ServerSideEncryption: types.ServerSideEncryptionAes256})
			return err
		}, "NotImplemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := s3Code(tt.do()); code != tt.code {
				t.Fatalf("got %q, want %q", code, tt.code)
			}
			if _, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("hdr"), Key: aws.String("k")}); s3Code(err) != "404" {
				t.Fatalf("the object exists after a refused write: %v", err)
			}
		})
	}
	t.Run("uploads stay empty", func(t *testing.T) {
		out, err := s.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("hdr")})
		if err != nil || len(out.Uploads) != 0 {
			t.Fatalf("got %v, %v", out, err)
		}
	})
	t.Run("bucket with object lock", func(t *testing.T) {
		_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked"), ObjectLockEnabledForBucket: aws.Bool(true)})
		if code := s3Code(err); code != "NotImplemented" {
			t.Fatalf("got %q, want NotImplemented", code)
		}
		if _, err := s.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("locked")}); s3Code(err) != "404" {
			t.Fatalf("the bucket exists: %v", err)
		}
	})
	t.Run("sse-c on a read", func(t *testing.T) {
		_, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("hdr"), Key: aws.String("src"), SSECustomerAlgorithm: aws.String("AES256"),
			SSECustomerKey: aws.String(base64.StdEncoding.EncodeToString([]byte(sseKey))), SSECustomerKeyMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
		if code := s3Code(err); code != "InvalidRequest" {
			t.Fatalf("got %q, want InvalidRequest", code)
		}
	})
	t.Run("what davkv does anyway", func(t *testing.T) {
		err := put(func(in *s3.PutObjectInput) {
			in.ACL, in.StorageClass = types.ObjectCannedACLPrivate, types.StorageClassStandard
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
