package main

// The checksums an S3 client may send with a body (Content-MD5, x-amz-checksum-*): what
// each is, and checking a body held in memory against them.

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net/http"
)

// s3Checksums are the checksum headers S3 defines, each with its hash, all sent base64.
var s3Checksums = []struct {
	header string
	hash   func() hash.Hash
}{
	{"Content-Md5", md5.New},
	{"X-Amz-Checksum-Crc32", func() hash.Hash { return crc32.NewIEEE() }},
	{"X-Amz-Checksum-Crc32c", func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	{"X-Amz-Checksum-Sha1", sha1.New},
	{"X-Amz-Checksum-Sha256", sha256.New},
}

// checkBodyChecksums checks body against every checksum header h carries, and returns
// BadDigest for the first that does not match.
func checkBodyChecksums(h http.Header, body []byte) error {
	for _, c := range s3Checksums {
		want := h.Get(c.header)
		if want == "" {
			continue
		}
		sum := c.hash()
		sum.Write(body)
		if got := base64.StdEncoding.EncodeToString(sum.Sum(nil)); got != want {
			return s3Errorf(ErrS3BadDigest, "The %s you specified did not match the body's: %s.", c.header, got)
		}
	}
	return nil
}
