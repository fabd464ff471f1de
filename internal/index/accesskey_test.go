package index

import (
	"errors"
	"testing"
)

// TestAccessKeyEncoding pins the encoding of an access key's entry: indexes written by
// any version stay readable by every later one.
func TestAccessKeyEncoding(t *testing.T) {
	const v1 = "\x01" + "\x06secret" + "\x02{}" + "\x54" + "\x03ci!"
	want := AccessKey{Secret: "secret", Policy: "{}", Created: 42, Note: "ci!"}
	if b, err := want.MarshalBinary(); err != nil || string(b) != v1 {
		t.Fatalf("encoded %q, %v; want %q", b, err, v1)
	}
	var got AccessKey
	if err := got.UnmarshalBinary([]byte(v1)); err != nil || got != want {
		t.Fatalf("v1 decoded %+v, %v; want %+v", got, err, want)
	}
	for _, k := range []AccessKey{{}, {Secret: "s", Created: -1}, {Policy: string(make([]byte, 20000))}} {
		enc, _ := k.MarshalBinary()
		var got AccessKey
		if err := got.UnmarshalBinary(enc); err != nil || got != k {
			t.Fatalf("round trip of %+v: %+v, %v", k, got, err)
		}
	}
	for _, bad := range []string{"", "\x02", "\x01", v1 + "x", v1[:len(v1)-1]} {
		var got AccessKey
		if err := got.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("UnmarshalBinary(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}
