package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

// awsExampleAuth is the signature of AWS's published example of a signed aws-chunked
// upload (sigv4-streaming): 66560 bytes of 'a' in chunks of 65536 and 1024.
var awsExampleAuth = s3Auth{
	SigningKey: signingKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1"),
	Scope:      "20130524/us-east-1/s3/aws4_request",
	Signature:  "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
	AmzDate:    "20130524T000000Z",
}

// awsChunked frames payload as an aws-chunked body in chunks of chunk bytes, signed
// from auth's seed signature unless auth is nil, with the trailer lines (name:value)
// after the last chunk if any, signed too.
func awsChunked(payload []byte, chunk int, auth *s3Auth, trailer ...string) []byte {
	var b bytes.Buffer
	prev := ""
	if auth != nil {
		prev = auth.Signature
	}
	sign := func(parts ...string) string {
		return hex.EncodeToString(hmacSHA256(auth.SigningKey, strings.Join(append([]string{parts[0], auth.AmzDate, auth.Scope}, parts[1:]...), "\n")))
	}
	for {
		n := min(chunk, len(payload))
		fmt.Fprintf(&b, "%x", n)
		if auth != nil {
			sum := sha256.Sum256(payload[:n])
			prev = sign("AWS4-HMAC-SHA256-PAYLOAD", prev, emptySHA256, hex.EncodeToString(sum[:]))
			b.WriteString(";chunk-signature=" + prev)
		}
		b.WriteString("\r\n")
		if n == 0 {
			break
		}
		b.Write(payload[:n])
		b.WriteString("\r\n")
		payload = payload[n:]
	}
	if len(trailer) > 0 {
		var canonical strings.Builder
		for _, line := range trailer {
			b.WriteString(line + "\r\n")
			canonical.WriteString(line + "\n")
		}
		if auth != nil {
			sum := sha256.Sum256([]byte(canonical.String()))
			b.WriteString("x-amz-trailer-signature:" + sign("AWS4-HMAC-SHA256-TRAILER", prev, hex.EncodeToString(sum[:])) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
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
		{"signed", streamingSigned, chunks + "\r\n"},
		{"signed with trailer", streamingSignedTrailer, chunks + trailer},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{1, 1000, 70000} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, bufSize), func(t *testing.T) {
				r := newChunkedReader(strings.NewReader(tt.body), awsExampleAuth, tt.payload, int64(len(payload)), nil)
				got, err := io.ReadAll(&oneByOne{r, bufSize})
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("decoded %d bytes, %v; want %d", len(got), err, len(payload))
				}
			})
		}
	}
	// awsChunked, which the other tests use, frames the example as AWS does.
	if got := awsChunked(payload, 65536, &awsExampleAuth); string(got) != chunks+"\r\n" {
		t.Fatalf("awsChunked differs from AWS's example")
	}
	if got := awsChunked(payload, 65536, &awsExampleAuth, "first:1st", "second:2nd", "third:3rd"); string(got) != chunks+trailer {
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
	payload := randomBytes(3000)
	auth := &awsExampleAuth
	good := awsChunked(payload, 1000, auth)
	crc := "x-amz-checksum-crc32:" + crc32Base64(payload)
	tamper := func(b []byte, at int, c byte) []byte { b = bytes.Clone(b); b[at] = c; return b }
	tests := []struct {
		name    string
		payload string
		auth    s3Auth
		body    []byte
		size    int
		trailer string
		code    *S3Code
	}{
		{"data changed", streamingSigned, *auth, tamper(good, 200, good[200]^1), 3000, "", ErrS3SignatureMismatch},
		{"signature changed", streamingSigned, *auth, tamper(good, 30, otherHex(good[30])), 3000, "", ErrS3SignatureMismatch},
		{"chunks reordered", streamingSigned, *auth, reorder(good), 3000, "", ErrS3SignatureMismatch},
		{"no signature", streamingSigned, *auth, awsChunked(payload, 1000, nil), 3000, "", ErrS3InvalidRequest},
		{"cut short", streamingSigned, *auth, good[:len(good)-1000], 3000, "", ErrS3IncompleteBody},
		{"last chunk missing", streamingSigned, *auth, good[:bytes.LastIndex(good, []byte("0;chunk"))], 3000, "", ErrS3IncompleteBody},
		{"longer than declared", streamingSigned, *auth, good, 2999, "", ErrS3IncompleteBody},
		{"shorter than declared", streamingSigned, *auth, good, 3001, "", ErrS3IncompleteBody},
		{"bad chunk size", streamingUnsignedTrailer, s3Auth{}, []byte("zz\r\n"), 3000, "", ErrS3InvalidRequest},
		{"no CRLF after data", streamingUnsignedTrailer, s3Auth{}, []byte("2\r\nabc\r\n"), 2, "", ErrS3InvalidRequest},
		{"wrong trailer checksum", streamingUnsignedTrailer, s3Auth{}, awsChunked(payload, 1000, nil, "x-amz-checksum-crc32:AAAAAA=="), 3000, "x-amz-checksum-crc32", ErrS3BadDigest},
		{"trailer checksum missing", streamingUnsignedTrailer, s3Auth{}, awsChunked(payload, 1000, nil), 3000, "x-amz-checksum-crc32", ErrS3InvalidRequest},
		{"trailer signature wrong", streamingSignedTrailer, *auth, bytes.Replace(awsChunked(payload, 1000, auth, crc), []byte("signature:"), []byte("signature:0"), 1), 3000, "x-amz-checksum-crc32", ErrS3SignatureMismatch},
		{"trailer changed", streamingSignedTrailer, *auth, bytes.Replace(awsChunked(payload, 1000, auth, crc, "x-amz-meta-a:b"), []byte("meta-a:b"), []byte("meta-a:c"), 1), 3000, "x-amz-checksum-crc32", ErrS3SignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks, err := streamChecks(nil, tt.trailer)
			if err != nil {
				t.Fatal(err)
			}
			body := &checkedBody{r: newChunkedReader(bytes.NewReader(tt.body), tt.auth, tt.payload, int64(tt.size), checks), checks: checks}
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
		{streamingSigned, "", good},
		{streamingSignedTrailer, "x-amz-checksum-crc32", awsChunked(payload, 1000, auth, crc)},
		{streamingUnsignedTrailer, "x-amz-checksum-crc32", awsChunked(payload, 1000, nil, crc)},
		{streamingUnsignedTrailer, "", awsChunked(payload, 700, nil)},
	} {
		checks, _ := streamChecks(nil, tt.trailer)
		got, err := io.ReadAll(&checkedBody{r: newChunkedReader(bytes.NewReader(tt.body), *auth, tt.payload, 3000, checks), checks: checks})
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
