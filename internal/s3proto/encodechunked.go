package s3proto

// Framing a body as aws-chunked, the way an S3 client streams one.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// EncodeChunked frames payload as an aws-chunked body in chunks of chunk bytes, signed
// from auth's seed signature unless auth is nil, with the trailer lines (name:value)
// after the last chunk if any, signed too: what a client that streams a body sends,
// for tools and tests that speak S3 without an SDK.
func EncodeChunked(payload []byte, chunk int, auth *Auth, trailer ...string) []byte {
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
