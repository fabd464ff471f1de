package index

import (
	"errors"
	"fmt"
	"testing"
)

func TestMultipartRoundTrip(t *testing.T) {
	uploads := []MultipartUpload{
		{},
		{Bucket: "b", Key: "dir/ünï key", Created: 1796000000000000000, Completing: true, Meta: []MetaHeader{{"Content-Type", "text/plain"}, {"x-amz-meta-a", "1"}},
			Tags: []Tag{{"project", "x"}, {"empty", ""}}, Checksum: Checksum{Algorithm: "CRC32", Type: "COMPOSITE"}},
	}
	for i, u := range uploads {
		t.Run(fmt.Sprint("upload ", i), func(t *testing.T) {
			b, err := u.MarshalBinary()
			if err != nil || b[0] != uploadVersion {
				t.Fatalf("encoded %q, %v", b, err)
			}
			var got MultipartUpload
			if err := got.UnmarshalBinary(b); err != nil || fmt.Sprint(got) != fmt.Sprint(u) {
				t.Fatalf("round trip: %+v, %v; want %+v", got, err, u)
			}
		})
	}
	parts := []UploadPart{{}, {Token: "t0k", Done: true, Size: 5 << 20, Created: -1, MD5: "5d41402abc4b2a76b9719d911017c592", Volumes: []string{"a:1", "b:2"}, Leftovers: []string{"c:3"},
		Checksum: Checksum{"SHA256", "c2hh", ""}, Writes: []PartWrite{{"w1", []string{"a:1"}}, {"w2", nil}}},
		{Writes: []PartWrite{{"w3", []string{"b:2", "c:3"}}}}}
	for i, p := range parts {
		t.Run(fmt.Sprint("part ", i), func(t *testing.T) {
			b, err := p.MarshalBinary()
			if err != nil || b[0] != partVersion {
				t.Fatalf("encoded %q, %v", b, err)
			}
			var got UploadPart
			if err := got.UnmarshalBinary(b); err != nil || fmt.Sprint(got) != fmt.Sprint(p) {
				t.Fatalf("round trip: %+v, %v; want %+v", got, err, p)
			}
		})
	}
}

// TestMultipartGolden pins every version of the upload and part encodings: uploads in
// flight when davkv is upgraded must stay readable.
func TestMultipartGolden(t *testing.T) {
	v1 := "\x01" + "\x01b" + "\x01k" + "\x54" + "\x01" + "\x01\x0cContent-Type\x02t/"
	want := MultipartUpload{Bucket: "b", Key: "k", Created: 42, Completing: true, Meta: []MetaHeader{{"Content-Type", "t/"}}}
	var u MultipartUpload
	if err := u.UnmarshalBinary([]byte(v1)); err != nil || fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("v1 decoded %+v, %v; want %+v", u, err, want)
	}
	v2 := "\x02" + v1[1:] + "\x01\x01k\x02vv" + "\x05CRC32\x00\x09COMPOSITE"
	want.Tags, want.Checksum = []Tag{{"k", "vv"}}, Checksum{Algorithm: "CRC32", Type: "COMPOSITE"}
	if err := u.UnmarshalBinary([]byte(v2)); err != nil || fmt.Sprint(u) != fmt.Sprint(want) {
		t.Fatalf("v2 decoded %+v, %v; want %+v", u, err, want)
	}
	if b, _ := want.MarshalBinary(); string(b) != v2 {
		t.Fatalf("encoded %q, want %q", b, v2)
	}
	part := "\x01" + "\x03tok" + "\x01" + "\x0a" + "\x54" + "\x02ab" + "\x01\x03a:1" + "\x00"
	wantPart := UploadPart{Token: "tok", Done: true, Size: 5, Created: 42, MD5: "ab", Volumes: []string{"a:1"}}
	var p UploadPart
	if err := p.UnmarshalBinary([]byte(part)); err != nil || fmt.Sprint(p) != fmt.Sprint(wantPart) {
		t.Fatalf("part v1 decoded %+v, %v; want %+v", p, err, wantPart)
	}
	part2 := "\x02" + part[1:] + "\x05CRC32\x04AA==\x00"
	wantPart.Checksum = Checksum{Algorithm: "CRC32", Value: "AA=="}
	if err := p.UnmarshalBinary([]byte(part2)); err != nil || fmt.Sprint(p) != fmt.Sprint(wantPart) {
		t.Fatalf("part v2 decoded %+v, %v; want %+v", p, err, wantPart)
	}
	part3 := "\x03" + part2[1:] + "\x01\x02w1\x01\x03b:2"
	wantPart.Writes = []PartWrite{{Token: "w1", Volumes: []string{"b:2"}}}
	if err := p.UnmarshalBinary([]byte(part3)); err != nil || fmt.Sprint(p) != fmt.Sprint(wantPart) {
		t.Fatalf("part v3 decoded %+v, %v; want %+v", p, err, wantPart)
	}
	if b, _ := wantPart.MarshalBinary(); string(b) != part3 {
		t.Fatalf("part encoded %q, want %q", b, part3)
	}
	// Before v3 a part not Done was its one write in flight, on Volumes and Leftovers.
	inFlight := "\x02" + "\x03tok" + "\x00" + "\x00" + "\x54" + "\x00" + "\x01\x03a:1" + "\x01\x03b:2" + "\x00\x00\x00"
	wantFlight := UploadPart{Created: 42, Writes: []PartWrite{{Token: "tok", Volumes: []string{"a:1", "b:2"}}}}
	if err := p.UnmarshalBinary([]byte(inFlight)); err != nil || fmt.Sprint(p) != fmt.Sprint(wantFlight) {
		t.Fatalf("part v2 in flight decoded %+v, %v; want %+v", p, err, wantFlight)
	}
	for _, bad := range []string{"", "\x03", "\x00", v1 + "x", v1[:len(v1)-1], v2 + "x", v2[:len(v2)-1]} {
		if err := u.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("upload %q: %v, want ErrBadRecord", bad, err)
		}
	}
	for _, bad := range []string{"", "\x03" + part[1:], part + "x", part[:len(part)-1], part2 + "x", part2[:len(part2)-1], part3 + "x", part3[:len(part3)-1]} {
		if err := p.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("part %q: %v, want ErrBadRecord", bad, err)
		}
	}
}
