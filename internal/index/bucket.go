package index

// S3 buckets: which names are buckets, and a bucket's record in the index (an entry
// of BucketSpace), with its versioned encoding.

import (
	"encoding/binary"
	"fmt"
)

// BucketSpace is the index's entry space for buckets.
const BucketSpace = "bucket"

// Bucket is what the index keeps of an S3 bucket. A bucket b holds the keys under
// /b/: the native API and S3 see the same values.
type Bucket struct {
	// Created is when the bucket was created, in Unix nanoseconds.
	Created int64
}

// bucketVersion is the first byte of an encoded Bucket; a change to the encoding gets
// a new version, and UnmarshalBinary keeps reading the old ones.
const bucketVersion = 1

// MarshalBinary encodes b: the version byte, then Created as a varint.
func (b Bucket) MarshalBinary() ([]byte, error) {
	return binary.AppendVarint([]byte{bucketVersion}, b.Created), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (b *Bucket) UnmarshalBinary(data []byte) error {
	if len(data) < 1 || data[0] != bucketVersion {
		return fmt.Errorf("%w: bucket of unknown version", ErrBadRecord)
	}
	created, n := binary.Varint(data[1:])
	if n <= 0 || 1+n != len(data) {
		return fmt.Errorf("%w: bucket truncated or with trailing bytes", ErrBadRecord)
	}
	b.Created = created
	return nil
}
