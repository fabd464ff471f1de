package s3proto

import (
	"errors"
	"net/http"
	"testing"
)

// TestUnsupported checks which headers each kind of request refuses, and with which S3
// error, and that what davkv does anyway (a private ACL, STANDARD) passes.
func TestUnsupported(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		header map[string]string
		want   *ErrorCode // nil: accepted
	}{
		{"plain put", ObjectWrite, nil, nil},
		{"sse-s3", ObjectWrite, map[string]string{"X-Amz-Server-Side-Encryption": "AES256"}, ErrNotImplemented},
		{"kms", ObjectWrite, map[string]string{"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": "k"}, ErrNotImplemented},
		{"sse-c on put", ObjectWrite, map[string]string{"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256"}, ErrNotImplemented},
		{"sse-c on a part", PartWrite, map[string]string{"X-Amz-Server-Side-Encryption-Customer-Key": "a2V5"}, ErrNotImplemented},
		{"sse-c on get", ObjectRead, map[string]string{"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256"}, ErrInvalidRequest},
		{"private acl", ObjectWrite, map[string]string{"X-Amz-Acl": "private"}, nil},
		{"bucket-owner-full-control", ObjectWrite, map[string]string{"X-Amz-Acl": "bucket-owner-full-control"}, nil},
		{"public-read", ObjectWrite, map[string]string{"X-Amz-Acl": "public-read"}, ErrNotImplemented},
		{"grant", ObjectWrite, map[string]string{"X-Amz-Grant-Read": "id=x"}, ErrNotImplemented},
		{"grant on a bucket", BucketCreate, map[string]string{"X-Amz-Grant-Full-Control": "id=x"}, ErrNotImplemented},
		{"public bucket", BucketCreate, map[string]string{"X-Amz-Acl": "public-read-write"}, ErrNotImplemented},
		{"tagging", ObjectWrite, map[string]string{"X-Amz-Tagging": "a=b"}, nil},
		{"object lock", ObjectWrite, map[string]string{"X-Amz-Object-Lock-Mode": "GOVERNANCE"}, ErrNotImplemented},
		{"legal hold", ObjectWrite, map[string]string{"X-Amz-Object-Lock-Legal-Hold": "ON"}, ErrNotImplemented},
		{"standard", ObjectWrite, map[string]string{"X-Amz-Storage-Class": "STANDARD"}, nil},
		{"glacier", ObjectWrite, map[string]string{"X-Amz-Storage-Class": "GLACIER"}, ErrNotImplemented},
		{"no such class", ObjectWrite, map[string]string{"X-Amz-Storage-Class": "COLD"}, ErrInvalidStorageClass},
		{"website redirect", ObjectWrite, map[string]string{"X-Amz-Website-Redirect-Location": "/x"}, ErrNotImplemented},
		{"bucket with object lock", BucketCreate, map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "true"}, ErrNotImplemented},
		{"bucket without object lock", BucketCreate, map[string]string{"X-Amz-Bucket-Object-Lock-Enabled": "false"}, nil},
		{"bucket owner enforced", BucketCreate, map[string]string{"X-Amz-Object-Ownership": "BucketOwnerEnforced"}, nil},
		{"object writer", BucketCreate, map[string]string{"X-Amz-Object-Ownership": "ObjectWriter"}, ErrNotImplemented},
		{"storage class of a get is no matter", ObjectRead, map[string]string{"X-Amz-Storage-Class": "GLACIER"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			err := Unsupported(h, tt.target)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("got %v, want accepted", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %v, want %s", err, tt.want.Code)
			}
		})
	}
}
