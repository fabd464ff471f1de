package s3proto

import (
	"encoding/base64"
	"hash/crc32"
	"testing"
)

// TestCompositeChecksum pins S3's composite checksum of parts: the CRC32 of the parts'
// CRC32s, -N.
func TestCompositeChecksum(t *testing.T) {
	sum := func(b []byte) string {
		v := crc32.ChecksumIEEE(b)
		return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	a, b := sum([]byte("part one")), sum([]byte("part two"))
	ra, _ := base64.StdEncoding.DecodeString(a)
	rb, _ := base64.StdEncoding.DecodeString(b)
	want := sum(append(ra, rb...)) + "-2"
	got, err := CompositeChecksum("CRC32", []string{a, b})
	if err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if _, err := CompositeChecksum("CRC32", []string{a, ""}); err == nil {
		t.Fatal("a part without a checksum made a composite one")
	}
	for _, name := range []string{"crc32", "CRC32C", "sha256", "Crc64Nvme", "SHA1"} {
		if _, err := ChecksumAlgorithm(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ChecksumAlgorithm("MD5"); err == nil {
		t.Error("MD5 taken for a checksum algorithm")
	}
	if h := ChecksumHeader("CRC64NVME"); h != "X-Amz-Checksum-Crc64nvme" {
		t.Errorf("header %q", h)
	}
}
