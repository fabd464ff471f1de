package index

import (
	"errors"
	"testing"
)

// TestBucketEncoding pins the encoding of a bucket's record: indexes written by any
// version stay readable by every later one.
func TestBucketEncoding(t *testing.T) {
	const v1 = "\x01\x54"
	b, err := Bucket{Created: 42}.MarshalBinary()
	if err != nil || string(b) != v1 {
		t.Fatalf("encoded %q, %v; want %q", b, err, v1)
	}
	for _, created := range []int64{0, 1, -1, 1763779200000000000} {
		b, _ := Bucket{Created: created}.MarshalBinary()
		var got Bucket
		if err := got.UnmarshalBinary(b); err != nil || got.Created != created {
			t.Fatalf("round trip of %d: %d, %v", created, got.Created, err)
		}
	}
	for _, bad := range []string{"", "\x02\x54", "\x01", "\x01\x54x", "\x01\xff"} {
		var got Bucket
		if err := got.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("UnmarshalBinary(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}
