package index

// S3 buckets: which names are buckets, and a bucket's record in the index (an entry
// of BucketSpace), with its versioned encoding.

import (
	"encoding/binary"
	"fmt"
)

// BucketSpace is the index's entry space for buckets.
const BucketSpace = "bucket"

// GetBucket reads bucket name's entry from idx, and its revision, or returns an error
// wrapping ErrNotFound.
func GetBucket(idx Index, name string) (Bucket, int64, error) {
	var b Bucket
	value, rev, err := idx.GetEntry(BucketSpace, name)
	if err != nil {
		return b, 0, err
	}
	if err := b.UnmarshalBinary(value); err != nil {
		return b, 0, fmt.Errorf("bucket %s: %w", name, err)
	}
	return b, rev, nil
}

// Bucket is what the index keeps of an S3 bucket. A bucket b holds the keys under
// /b/: the native API and S3 see the same values.
type Bucket struct {
	// Created is when the bucket was created, in Unix nanoseconds.
	Created int64
	// Lifecycle are the rules of its lifecycle configuration, in the order given.
	Lifecycle []LifecycleRule
	// Policy is its bucket policy, in canonical JSON (package policy); "" is none.
	Policy string
}

// LifecycleRule is one rule of a bucket's lifecycle: which of its keys it applies to
// (all of the filter's conditions hold), and when they expire, or their multipart
// uploads are aborted. A zero field is no condition, or no action.
type LifecycleRule struct {
	ID      string
	Enabled bool
	// Prefix, Tags (every one), SizeGreater and SizeLess (bytes, exclusive) filter
	// the keys, bucket-relative.
	Prefix                string
	Tags                  []Tag
	SizeGreater, SizeLess int64
	// ExpireDays expires a key that many days after it was written; ExpireDate, in
	// Unix nanoseconds, expires every key at that time.
	ExpireDays int64
	ExpireDate int64
	// AbortDays aborts a multipart upload that many days after it began.
	AbortDays int64
	// RulePrefix says the rule gave Prefix in the rule itself, as configurations
	// before Filter did, so that it is answered as it was given.
	RulePrefix bool
}

// bucketVersion is the first byte of an encoded Bucket; a change to the encoding gets
// a new version, and UnmarshalBinary keeps reading the old ones. Version 1 had no
// Lifecycle, version 2 no RulePrefix, version 3 no Policy.
const bucketVersion = 4

// MarshalBinary encodes b: the version byte, Created as a varint, then Lifecycle as a
// count and each rule's ID as a string, Enabled as a byte, Prefix as a string, Tags as
// a count and keys and values, SizeGreater, SizeLess, ExpireDays, ExpireDate and
// AbortDays as varints, and RulePrefix as a byte; then Policy as a string.
func (b Bucket) MarshalBinary() ([]byte, error) {
	out := binary.AppendVarint([]byte{bucketVersion}, b.Created)
	out = binary.AppendUvarint(out, uint64(len(b.Lifecycle)))
	for _, r := range b.Lifecycle {
		out = appendString(out, r.ID)
		out = append(out, boolByte(r.Enabled))
		out = appendString(out, r.Prefix)
		out = appendTags(out, r.Tags)
		for _, v := range []int64{r.SizeGreater, r.SizeLess, r.ExpireDays, r.ExpireDate, r.AbortDays} {
			out = binary.AppendVarint(out, v)
		}
		out = append(out, boolByte(r.RulePrefix))
	}
	return appendString(out, b.Policy), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (b *Bucket) UnmarshalBinary(data []byte) error {
	if len(data) < 1 || data[0] < 1 || data[0] > bucketVersion {
		return fmt.Errorf("%w: bucket of unknown version", ErrBadRecord)
	}
	d := Decoder{b: data[1:]}
	v := Bucket{Created: d.Varint()}
	if data[0] >= 2 {
		for n := d.count(); n > 0 && !d.err; n-- {
			r := LifecycleRule{ID: d.string1(), Enabled: d.byte1() == 1, Prefix: d.string1(), Tags: d.tags()}
			r.SizeGreater, r.SizeLess, r.ExpireDays, r.ExpireDate, r.AbortDays = d.Varint(), d.Varint(), d.Varint(), d.Varint(), d.Varint()
			if data[0] >= 3 {
				r.RulePrefix = d.byte1() == 1
			}
			v.Lifecycle = append(v.Lifecycle, r)
		}
	}
	if data[0] >= 4 {
		v.Policy = d.string1()
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: bucket truncated or with trailing bytes", ErrBadRecord)
	}
	*b = v
	return nil
}
