package index

import (
	"errors"
	"fmt"
	"testing"
)

// TestBucketEncoding pins the encoding of a bucket's record: indexes written by any
// version stay readable by every later one.
func TestBucketEncoding(t *testing.T) {
	const v1 = "\x01\x54"
	var got Bucket
	if err := got.UnmarshalBinary([]byte(v1)); err != nil || fmt.Sprint(got) != fmt.Sprint(Bucket{Created: 42}) {
		t.Fatalf("v1 decoded %+v, %v", got, err)
	}
	const v2 = "\x02\x54" + "\x01" + "\x04logs" + "\x01" + "\x04tmp/" + "\x01\x01k\x01v" + "\x02\x00\x0e\x00\x06"
	want := Bucket{Created: 42, Lifecycle: []LifecycleRule{{ID: "logs", Enabled: true, Prefix: "tmp/", Tags: []Tag{{"k", "v"}}, SizeGreater: 1, ExpireDays: 7, AbortDays: 3}}}
	if err := got.UnmarshalBinary([]byte(v2)); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("v2 decoded %+v, %v; want %+v", got, err, want)
	}
	const v3 = "\x03\x54" + "\x01" + "\x04logs" + "\x01" + "\x04tmp/" + "\x01\x01k\x01v" + "\x02\x00\x0e\x00\x06" + "\x01"
	want.Lifecycle[0].RulePrefix = true
	if err := got.UnmarshalBinary([]byte(v3)); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("v3 decoded %+v, %v; want %+v", got, err, want)
	}
	v4 := "\x04" + v3[1:] + "\x02{}"
	want.Policy = "{}"
	if b, err := want.MarshalBinary(); err != nil || string(b) != v4 {
		t.Fatalf("encoded %q, %v; want %q", b, err, v4)
	}
	if err := got.UnmarshalBinary([]byte(v4)); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("v4 decoded %+v, %v; want %+v", got, err, want)
	}
	for _, b := range []Bucket{{}, {Created: -1}, {Created: 1763779200000000000, Lifecycle: []LifecycleRule{{ID: "a", ExpireDate: 1 << 60, SizeLess: 5 << 30}, {Enabled: true, RulePrefix: true}}, Policy: `{"Version":"2012-10-17"}`}} {
		enc, _ := b.MarshalBinary()
		var got Bucket
		if err := got.UnmarshalBinary(enc); err != nil || fmt.Sprint(got) != fmt.Sprint(b) {
			t.Fatalf("round trip of %+v: %+v, %v", b, got, err)
		}
	}
	for _, bad := range []string{"", "\x05\x54", "\x01", "\x01\x54x", "\x01\xff", "\x02\x54", v2 + "x", v2[:len(v2)-1], v3 + "x", v3[:len(v3)-1], v4 + "x", v4[:len(v4)-1]} {
		var got Bucket
		if err := got.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("UnmarshalBinary(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}
