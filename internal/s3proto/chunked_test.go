package s3proto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"davkv/internal/testenv"
)

// awsExampleAuth is the signature of AWS's published example of a signed aws-chunked
// upload (sigv4-streaming): 66560 bytes of 'a' in chunks of 65536 and 1024.
var awsExampleAuth = Auth{
	SigningKey: SigningKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1"),
	Scope:      "20130524/us-east-1/s3/aws4_request",
	Signature:  "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
	AmzDate:    "20130524T000000Z",
}

// TestChunkedReaderAWSExample decodes AWS's published examples, whose signatures AWS
// computed: the chunks of sigv4-streaming, and the trailer that the AWS CRT's tests
// sign after them.
func TestChunkedReaderAWSExample(t *testing.T) {
	payload := bytes.Repeat([]byte("a"), 66560)
	chunks := "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n" + strings.Repeat("a", 65536) + "\r\n" +
		"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" + strings.Repeat("a", 1024) + "\r\n" +
		"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n"
	trailer := "first:1st\r\nsecond:2nd\r\nthird:3rd\r\nx-amz-trailer-signature:df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c\r\n\r\n"
	tests := []struct {
		name, payload, body string
	}{
		{"signed", StreamingSigned, chunks + "\r\n"},
		{"signed with trailer", StreamingSignedTrailer, chunks + trailer},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{1, 1000, 70000} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, bufSize), func(t *testing.T) {
				r := NewChunkedReader(strings.NewReader(tt.body), awsExampleAuth, tt.payload, int64(len(payload)), nil)
				got, err := io.ReadAll(&oneByOne{r, bufSize})
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("decoded %d bytes, %v; want %d", len(got), err, len(payload))
				}
			})
		}
	}
	// awsChunked, which the other tests use, frames the example as AWS does.
	if got := EncodeChunked(payload, 65536, &awsExampleAuth); string(got) != chunks+"\r\n" {
		t.Fatalf("awsChunked differs from AWS's example")
	}
	if got := EncodeChunked(payload, 65536, &awsExampleAuth, "first:1st", "second:2nd", "third:3rd"); string(got) != chunks+trailer {
		t.Fatalf("awsChunked with a trailer differs from the example")
	}
}

// oneByOne reads at most n bytes at a time.
type oneByOne struct {
	r io.Reader
	n int
}

func (o *oneByOne) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), o.n)]) }

// TestChunkedReaderRefuses: every fault of an aws-chunked body is an error, never the
// end of the body, so that no write takes it.
func TestChunkedReaderRefuses(t *testing.T) {
	payload := testenv.RandomBytes(3000)
	auth := &awsExampleAuth
	good := EncodeChunked(payload, 1000, auth)
	crc := "x-amz-checksum-crc32:" + crc32Base64(payload)
	tamper := func(b []byte, at int, c byte) []byte { b = bytes.Clone(b); b[at] = c; return b }
	tests := []struct {
		name    string
		payload string
		auth    Auth
		body    []byte
		size    int
		trailer string
		code    *ErrorCode
	}{
		{"data changed", StreamingSigned, *auth, tamper(good, 200, good[200]^1), 3000, "", ErrSignatureMismatch},
		{"signature changed", StreamingSigned, *auth, tamper(good, 30, otherHex(good[30])), 3000, "", ErrSignatureMismatch},
		{"chunks reordered", StreamingSigned, *auth, reorder(good), 3000, "", ErrSignatureMismatch},
		{"no signature", StreamingSigned, *auth, EncodeChunked(payload, 1000, nil), 3000, "", ErrInvalidRequest},
		{"cut short", StreamingSigned, *auth, good[:len(good)-1000], 3000, "", ErrIncompleteBody},
		{"last chunk missing", StreamingSigned, *auth, good[:bytes.LastIndex(good, []byte("0;chunk"))], 3000, "", ErrIncompleteBody},
		{"longer than declared", StreamingSigned, *auth, good, 2999, "", ErrIncompleteBody},
		{"shorter than declared", StreamingSigned, *auth, good, 3001, "", ErrIncompleteBody},
		{"bad chunk size", StreamingUnsignedTrailer, Auth{}, []byte("zz\r\n"), 3000, "", ErrInvalidRequest},
		{"no CRLF after data", StreamingUnsignedTrailer, Auth{}, []byte("2\r\nabc\r\n"), 2, "", ErrInvalidRequest},
		{"wrong trailer checksum", StreamingUnsignedTrailer, Auth{}, EncodeChunked(payload, 1000, nil, "x-amz-checksum-crc32:AAAAAA=="), 3000, "x-amz-checksum-crc32", ErrBadDigest},
		{"trailer checksum missing", StreamingUnsignedTrailer, Auth{}, EncodeChunked(payload, 1000, nil), 3000, "x-amz-checksum-crc32", ErrInvalidRequest},
		{"trailer signature wrong", StreamingSignedTrailer, *auth, bytes.Replace(EncodeChunked(payload, 1000, auth, crc), []byte("signature:"), []byte("signature:0"), 1), 3000, "x-amz-checksum-crc32", ErrSignatureMismatch},
		{"trailer changed", StreamingSignedTrailer, *auth, bytes.Replace(EncodeChunked(payload, 1000, auth, crc, "x-amz-meta-a:b"), []byte("meta-a:b"), []byte("meta-a:c"), 1), 3000, "x-amz-checksum-crc32", ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := StreamChecks(nil, tt.trailer)
			if err != nil {
				t.Fatal(err)
			}
			body := &CheckedBody{Body: NewChunkedReader(bytes.NewReader(tt.body), tt.auth, tt.payload, int64(tt.size), checks), Checks: checks}
			_, err = io.ReadAll(body)
			if !errors.Is(err, tt.code) {
				t.Fatalf("read: %v, want %s", err, tt.code.Code)
			}
		})
	}
	// The good ones are taken, signed or not, with or without a checked trailer.
	for _, tt := range []struct {
		payload, trailer string
		body             []byte
	}{
		{StreamingSigned, "", good},
		{StreamingSignedTrailer, "x-amz-checksum-crc32", EncodeChunked(payload, 1000, auth, crc)},
		{StreamingUnsignedTrailer, "x-amz-checksum-crc32", EncodeChunked(payload, 1000, nil, crc)},
		{StreamingUnsignedTrailer, "", EncodeChunked(payload, 700, nil)},
	} {
		checks, _ := StreamChecks(nil, tt.trailer)
		got, err := io.ReadAll(&CheckedBody{Body: NewChunkedReader(bytes.NewReader(tt.body), *auth, tt.payload, 3000, checks), Checks: checks})
		if err != nil || !bytes.Equal(got, payload) {
			t.Errorf("%s with trailer %q: %d bytes, %v", tt.payload, tt.trailer, len(got), err)
		}
	}
}

// otherHex is a hex digit other than c.
func otherHex(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

// crc32Base64 is b's x-amz-checksum-crc32.
func crc32Base64(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

// reorder swaps the first two chunks of a body of 1000-byte chunks with signatures.
func reorder(body []byte) []byte {
	n := len("3e8;chunk-signature=") + 64 + 2 + 1000 + 2
	return append(append(append([]byte{}, body[n:2*n]...), body[:n]...), body[2*n:]...)
}
