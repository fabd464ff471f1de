package s3proto

// The checksums an S3 client may send with a body (Content-MD5, x-amz-checksum-*, the
// signed SHA-256): what each is, and checking a body against them, held in memory or
// as it streams.

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// s3Checksums are the checksum headers S3 defines, each with its hash, all sent base64.
var s3Checksums = []struct {
	Header string
	Hash   func() hash.Hash
}{
	{"Content-Md5", md5.New},
	{"X-Amz-Checksum-Crc32", func() hash.Hash { return crc32.NewIEEE() }},
	{"X-Amz-Checksum-Crc32c", func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) }},
	{"X-Amz-Checksum-Sha1", sha1.New},
	{"X-Amz-Checksum-Sha256", sha256.New},
	{"X-Amz-Checksum-Crc64nvme", func() hash.Hash { return crc64.New(crc64NVME) }},
}

// crc64NVME is the table of CRC-64/NVME, which S3 offers beside the CRC-32s.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// ContentMD5 decodes the Content-MD5 header of h, base64 as S3 has it: nil if there
// is none, InvalidDigest if it is not 16 bytes (an empty header too, as S3 has it).
func ContentMD5(h http.Header) ([]byte, error) {
	values, ok := h["Content-Md5"]
	if !ok {
		return nil, nil
	}
	s := values[0]
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != md5.Size {
		return nil, Errorf(ErrInvalidDigest, "The Content-MD5 you specified is not the base64 of 16 bytes.")
	}
	return b, nil
}

// BodyCheck is one sum a streamed body must have: a checksum header's (base64), or the
// signed SHA-256 (hex).
type BodyCheck struct {
	Header string
	Hash   hash.Hash
	// want is the sum expected; the aws-chunked decoder fills it from the trailer of a
	// checksum announced in x-amz-trailer before the body ends.
	Want string
	Hex  bool
	Code *ErrorCode
	// SumOnly sums the body without checking it: a checksum davkv computes itself
	// (see SumCheck).
	SumOnly bool
}

// StreamChecks returns the checks that the checksum headers of h ask of a body that
// is streamed; Content-MD5 is left to the write, which hashes MD5 anyway. trailer
// names a checksum the body's trailer will give (x-amz-trailer), or is empty.
func StreamChecks(h http.Header, trailer string) ([]*BodyCheck, error) {
	var checks []*BodyCheck
	found := trailer == ""
	for _, c := range s3Checksums[1:] {
		inTrailer := strings.EqualFold(c.Header, trailer)
		found = found || inTrailer
		if want := h.Get(c.Header); want != "" || inTrailer {
			checks = append(checks, &BodyCheck{Header: c.Header, Hash: c.Hash(), Want: want, Code: ErrBadDigest})
		}
	}
	if !found {
		return nil, Errorf(ErrInvalidRequest, "The trailer %q is not a checksum davkv knows.", trailer)
	}
	return checks, nil
}

// CheckedBody reads a body through to its checks: at its end it returns, instead of
// io.EOF, the error of the first sum that does not match, so that a write never
// takes a body that fails one as whole.
type CheckedBody struct {
	Body   io.Reader
	Checks []*BodyCheck
	// Async sums large reads on a goroutine of its own, beside the one that reads
	// and writes them on (which sums their MD5): a SHA-256 on the reading goroutine
	// held the body's reading up by as long as it took. Whoever reads an Async body
	// must Stop it if it stops before the end.
	Async bool

	work    chan *[]byte  // copies of what was read, for the summing goroutine
	summed  chan struct{} // closed once the summing goroutine has summed all of them
	stopped bool
}

// asyncMin is the least read that Async sums on its goroutine: below it, the copy and
// the hand-over cost more than the sum.
const asyncMin = 32 << 10

// sumBuffers are the copies Async hands its goroutine, of a chunk's size.
var sumBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

func (b *CheckedBody) Read(p []byte) (int, error) {
	n, err := b.Body.Read(p)
	if n > 0 && len(b.Checks) > 0 {
		b.sum(p[:n])
	}
	if err == io.EOF {
		b.Stop()
		if cerr := b.verify(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

// sum adds p to the checks' sums, on the summing goroutine once a read is large.
func (b *CheckedBody) sum(p []byte) {
	if b.work == nil && (!b.Async || len(p) < asyncMin) {
		for _, c := range b.Checks {
			c.Hash.Write(p)
		}
		return
	}
	if b.work == nil {
		b.work, b.summed = make(chan *[]byte, 4), make(chan struct{})
		go func() {
			defer close(b.summed)
			for buf := range b.work {
				for _, c := range b.Checks {
					c.Hash.Write(*buf)
				}
				*buf = (*buf)[:0]
				sumBuffers.Put(buf)
			}
		}()
	}
	buf := sumBuffers.Get().(*[]byte)
	*buf = append((*buf)[:0], p...)
	b.work <- buf
}

// Stop waits until everything read is summed, and ends the summing goroutine, if
// there is one; the sums may be read after. Reading to the end stops the body.
func (b *CheckedBody) Stop() {
	if b.work != nil && !b.stopped {
		b.stopped = true
		close(b.work)
		<-b.summed
	}
}

func (b *CheckedBody) verify() error {
	for _, c := range b.Checks {
		if c.SumOnly {
			continue
		}
		sum := c.Hash.Sum(nil)
		got := base64.StdEncoding.EncodeToString(sum)
		if c.Hex {
			got = hex.EncodeToString(sum)
		}
		if c.Want == "" {
			return Errorf(ErrInvalidRequest, "The trailer announced %s but did not give it.", c.Header)
		}
		if got != c.Want && !(c.Hex && strings.EqualFold(got, c.Want)) {
			return Errorf(c.Code, "The %s you specified did not match the body's: %s.", c.Header, got)
		}
	}
	return nil
}

// ChecksumAlgorithm returns the S3 name of a checksum algorithm (CRC32, CRC32C,
// CRC64NVME, SHA1, SHA256), as x-amz-checksum-algorithm gives it in any case, or
// InvalidRequest for one S3 does not have.
func ChecksumAlgorithm(name string) (string, error) {
	alg := strings.ToUpper(name)
	for _, c := range s3Checksums[1:] {
		if algorithmOf(c.Header) == alg {
			return alg, nil
		}
	}
	return "", Errorf(ErrInvalidRequest, "Checksum algorithm %q is not one S3 has: CRC32, CRC32C, CRC64NVME, SHA1 or SHA256.", name)
}

// ChecksumHeader is the header that carries a checksum of algorithm alg.
func ChecksumHeader(alg string) string {
	for _, c := range s3Checksums[1:] {
		if algorithmOf(c.Header) == alg {
			return c.Header
		}
	}
	return ""
}

func algorithmOf(header string) string {
	return strings.ToUpper(strings.TrimPrefix(header, "X-Amz-Checksum-"))
}

// HeaderChecksum returns the first x-amz-checksum-* header of h, its algorithm and its
// value, or empty strings: of CompleteMultipartUpload, the object's checksum.
func HeaderChecksum(h http.Header) (alg, value string) {
	for _, c := range s3Checksums[1:] {
		if v := h.Get(c.Header); v != "" {
			return algorithmOf(c.Header), v
		}
	}
	return "", ""
}

// SumCheck returns a check that computes a body's checksum of algorithm alg without
// checking it, for an upload whose parts all carry one.
func SumCheck(alg string) *BodyCheck {
	for _, c := range s3Checksums[1:] {
		if algorithmOf(c.Header) == alg {
			return &BodyCheck{Header: c.Header, Hash: c.Hash(), SumOnly: true}
		}
	}
	return nil
}

// BodyChecksum returns the checksum of a body read whole through checks: of algorithm
// alg, or if alg is empty the first one the client sent; base64, or empty if there is
// none.
func BodyChecksum(checks []*BodyCheck, alg string) (algorithm, value string) {
	for _, c := range checks {
		if c.Hex || alg != "" && algorithmOf(c.Header) != alg {
			continue
		}
		if c.SumOnly {
			return algorithmOf(c.Header), base64.StdEncoding.EncodeToString(c.Hash.Sum(nil))
		}
		return algorithmOf(c.Header), c.Want
	}
	return "", ""
}

// CompositeChecksum is S3's checksum of an object made of parts whose checksums of
// algorithm alg are parts (base64): the checksum of their bytes one after another,
// base64, and -N for N parts.
func CompositeChecksum(alg string, parts []string) (string, error) {
	c := SumCheck(alg)
	if c == nil {
		return "", Errorf(ErrInvalidRequest, "Checksum algorithm %q is not one S3 has.", alg)
	}
	for i, p := range parts {
		b, err := base64.StdEncoding.DecodeString(p)
		if err != nil || len(b) != c.Hash.Size() {
			return "", Errorf(ErrInvalidPart, "Part %d has no %s checksum.", i+1, alg)
		}
		c.Hash.Write(b)
	}
	return base64.StdEncoding.EncodeToString(c.Hash.Sum(nil)) + "-" + strconv.Itoa(len(parts)), nil
}
