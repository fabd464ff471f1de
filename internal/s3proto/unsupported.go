package s3proto

// Request headers that ask for something davkv does not do: encryption, ACLs beyond the
// owner's, object lock, storage classes. Each one is refused before anything is stored,
// never accepted and ignored: an SSE-C object stored in clear, say, would read back
// without its key.

import (
	"net/http"
	"slices"
	"strings"
)

// Target says what a request writes or reads, for Unsupported: which headers apply.
type Target int

const (
	// ObjectWrite is PutObject, CopyObject's destination and CreateMultipartUpload.
	ObjectWrite Target = iota
	// PartWrite is UploadPart and UploadPartCopy: only SSE-C applies to a part.
	PartWrite
	// ObjectRead is GetObject and HeadObject.
	ObjectRead
	// BucketCreate is CreateBucket.
	BucketCreate
)

// StorageClasses are S3's storage classes. STANDARD is davkv's one; a request for
// another is NotImplemented, one S3 does not know InvalidStorageClass.
var StorageClasses = []string{
	"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER",
	"DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE",
}

// ErrInvalidStorageClass is the answer to a storage class S3 does not have.
var ErrInvalidStorageClass = &ErrorCode{"InvalidStorageClass", http.StatusBadRequest}

// ownerACLs are the canned ACLs that say what davkv does anyway: every object and
// bucket is its owner's alone (every access key is that owner).
var ownerACLs = []string{"private", "bucket-owner-full-control"}

// sseCustomer are the headers of SSE-C, encryption with the client's own key.
var sseCustomer = []string{
	"X-Amz-Server-Side-Encryption-Customer-Algorithm", "X-Amz-Server-Side-Encryption-Customer-Key",
	"X-Amz-Server-Side-Encryption-Customer-Key-Md5",
}

// Unsupported returns the error for the first header of h that asks target for
// something davkv does not do, or nil. It is checked before a request reads its body
// or changes anything.
func Unsupported(h http.Header, target Target) error {
	for _, name := range sseCustomer {
		if h.Get(name) == "" {
			continue
		}
		if target == ObjectRead {
			// No object is stored encrypted: S3's answer to a key for one that is not.
			return Errorf(ErrInvalidRequest, "The encryption parameters are not applicable to this object.")
		}
		return Errorf(ErrNotImplemented, "Server-side encryption with customer keys (%s) is not implemented.", name)
	}
	if target == ObjectRead || target == PartWrite {
		return nil
	}
	for name := range h {
		switch {
		case strings.HasPrefix(name, "X-Amz-Grant-"):
			return Errorf(ErrNotImplemented, "ACL grants (%s) are not implemented: every object is its owner's.", name)
		case target == ObjectWrite && strings.HasPrefix(name, "X-Amz-Server-Side-Encryption"):
			return Errorf(ErrNotImplemented, "Server-side encryption (%s) is not implemented.", name)
		case target == ObjectWrite && strings.HasPrefix(name, "X-Amz-Object-Lock-"):
			return Errorf(ErrNotImplemented, "Object lock (%s) is not implemented.", name)
		}
	}
	if acl := h.Get("X-Amz-Acl"); acl != "" && !slices.Contains(ownerACLs, acl) {
		return Errorf(ErrNotImplemented, "The canned ACL %q is not implemented: every object is its owner's (private).", acl)
	}
	switch target {
	case ObjectWrite:
		if class := h.Get("X-Amz-Storage-Class"); class != "" && class != "STANDARD" {
			if !slices.Contains(StorageClasses, class) {
				return Errorf(ErrInvalidStorageClass, "The storage class you specified is not valid.")
			}
			return Errorf(ErrNotImplemented, "The storage class %s is not implemented: davkv has STANDARD only.", class)
		}
		if h.Get("X-Amz-Website-Redirect-Location") != "" {
			return Errorf(ErrNotImplemented, "Website redirects (x-amz-website-redirect-location) are not implemented.")
		}
	case BucketCreate:
		if lock := h.Get("X-Amz-Bucket-Object-Lock-Enabled"); lock != "" && !strings.EqualFold(lock, "false") {
			return Errorf(ErrNotImplemented, "Object lock is not implemented.")
		}
		if own := h.Get("X-Amz-Object-Ownership"); own != "" && own != "BucketOwnerEnforced" {
			return Errorf(ErrNotImplemented, "Object ownership %s is not implemented: the bucket owner owns every object (BucketOwnerEnforced).", own)
		}
	}
	return nil
}
