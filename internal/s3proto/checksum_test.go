package s3proto

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash/crc32"
	"io"
	"strings"
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

// TestCheckedBodyAsync: an Async body sums large reads on a goroutine of its own, and
// still answers a sum that does not match at its end; one stopped before its end ends
// its goroutine.
func TestCheckedBodyAsync(t *testing.T) {
	value := bytes.Repeat([]byte("davkv "), 200_000)
	sum := sha256.Sum256(value)
	for _, want := range []string{hex.EncodeToString(sum[:]), strings.Repeat("0", 64)} {
		b := &CheckedBody{Body: bytes.NewReader(value), Async: true,
			Checks: []*BodyCheck{{Header: "X-Amz-Content-Sha256", Hash: sha256.New(), Want: want, Hex: true, Code: ErrContentSHA256Mismatch}}}
		got, err := io.ReadAll(b)
		if !bytes.Equal(got, value) || (want == hex.EncodeToString(sum[:])) != (err == nil) {
			t.Fatalf("want %s: %d bytes, %v", want[:8], len(got), err)
		}
	}
	b := &CheckedBody{Body: bytes.NewReader(value), Async: true, Checks: []*BodyCheck{SumCheck("CRC32")}}
	if _, err := io.ReadFull(b, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	b.Stop()
	if alg, v := BodyChecksum(b.Checks, "CRC32"); alg != "CRC32" || v == "" {
		t.Fatalf("checksum of what was read: %s %q", alg, v)
	}
}
