package s3proto

// Decoding an aws-chunked body (Content-Encoding: aws-chunked), as S3 clients stream
// values: each chunk's signature checked when the request was signed that way, the
// trailer's checksum handed to the body's checks, the decoded length compared with
// the one declared.

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
)

// The payload hashes (x-amz-content-sha256) of aws-chunked bodies.
const (
	StreamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// emptySHA256 is the hex SHA-256 of nothing, which every chunk's string to sign has.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxChunkLine bounds a chunk header or trailer line; real ones are under 100 bytes.
const maxChunkLine = 4 << 10

// chunkedReader returns the data of an aws-chunked body. It fails, never ends, if
// the body is malformed, a chunk's or the trailer's signature is wrong (when auth has
// a SigningKey), the trailer lacks an announced checksum, or the data is not size
// bytes long: so a write never takes a body that fails a check as whole. The checks
// of the decoded data are the caller's (see CheckedBody); the trailer's values are
// put into them before the end.
type chunkedReader struct {
	Body    *bufio.Reader
	auth    Auth
	signed  bool // chunks carry signatures, to check if auth.SigningKey is set
	trailer bool // a trailer follows the last chunk
	Checks  []*BodyCheck

	prevSig  string    // the signature of the chunk before, or the request's
	chunkSig string    // the signature the current chunk claims
	chunkSum hash.Hash // the current chunk's SHA-256, when signatures are checked
	left     int64     // bytes of the current chunk not read yet
	started  bool      // a chunk has begun, whose end (CRLF, signature) is still to check
	size, n  int64     // the declared decoded length, and what was read
	done     bool
	err      error
}

func NewChunkedReader(body io.Reader, auth Auth, payload string, size int64, checks []*BodyCheck) *chunkedReader {
	c := &chunkedReader{
		Body: bufio.NewReaderSize(body, maxChunkLine), auth: auth, Checks: checks, size: size,
		signed:  payload == StreamingSigned || payload == StreamingSignedTrailer,
		trailer: payload == StreamingSignedTrailer || payload == StreamingUnsignedTrailer,
		prevSig: auth.Signature,
	}
	if c.signed && auth.SigningKey != nil {
		c.chunkSum = sha256.New()
	}
	return c
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.err == nil && c.left == 0 && !c.done {
		c.err = c.next()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.done {
		return 0, io.EOF
	}
	n, err := c.Body.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	c.n += int64(n)
	if c.chunkSum != nil {
		c.chunkSum.Write(p[:n])
	}
	if c.n > c.size {
		c.err = Errorf(ErrIncompleteBody, "The aws-chunked body is longer than its x-amz-decoded-content-length %d.", c.size)
		return n, c.err
	}
	if err != nil {
		c.err = c.malformed("a chunk's data", err)
	}
	return n, c.err
}

// next ends the chunk read and begins the next; after the last, it reads the
// trailer and makes the final checks.
func (c *chunkedReader) next() error {
	if c.started {
		if line, err := c.line(); err != nil || line != "" {
			return c.malformed("no CRLF after a chunk's data", err)
		}
		if err := c.checkChunk(); err != nil {
			return err
		}
	}
	line, err := c.line()
	if err != nil {
		return c.malformed("no chunk header", err)
	}
	sizeHex, ext, _ := strings.Cut(line, ";")
	size, err := strconv.ParseInt(sizeHex, 16, 64)
	if err != nil || size < 0 {
		return c.malformed(fmt.Sprintf("chunk size %q", sizeHex), nil)
	}
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !ok || len(sig) != 64 {
			return c.malformed("a chunk lacks its chunk-signature", nil)
		}
		c.chunkSig = sig
	}
	c.left, c.started = size, true
	if size > 0 {
		return nil
	}
	// The last chunk: empty, then the trailer if any, then the final empty line.
	if err := c.checkChunk(); err != nil {
		return err
	}
	if c.trailer {
		if err := c.readTrailer(); err != nil {
			return err
		}
	} else if line, err := c.line(); err != nil || line != "" {
		return c.malformed("no CRLF after the last chunk", err)
	}
	if c.n != c.size {
		return Errorf(ErrIncompleteBody, "The aws-chunked body has %d bytes, not its x-amz-decoded-content-length %d.", c.n, c.size)
	}
	c.done = true
	return nil
}

// checkChunk checks the signature of the chunk just read, if signatures are checked.
func (c *chunkedReader) checkChunk() error {
	if c.chunkSum == nil {
		return nil
	}
	sum := hex.EncodeToString(c.chunkSum.Sum(nil))
	c.chunkSum.Reset()
	want := c.sign("AWS4-HMAC-SHA256-PAYLOAD", c.prevSig, emptySHA256, sum)
	if !hmac.Equal([]byte(want), []byte(c.chunkSig)) {
		return Errorf(ErrSignatureMismatch, "A chunk's signature does not match its data.")
	}
	c.prevSig = want
	return nil
}

// readTrailer reads the trailer's lines up to the empty one: the checksums, which go
// to their checks, and with signed chunks the trailer's signature, checked.
func (c *chunkedReader) readTrailer() error {
	var canonical strings.Builder
	var sig string
	for {
		line, err := c.line()
		if err != nil {
			return c.malformed("the trailer ends early", err)
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return c.malformed(fmt.Sprintf("trailer line %q", line), nil)
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			sig = value
			continue
		}
		canonical.WriteString(name + ":" + value + "\n")
		for _, ck := range c.Checks {
			if strings.EqualFold(ck.Header, name) && ck.Want == "" {
				ck.Want = value
			}
		}
	}
	if !c.signed || c.chunkSum == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(canonical.String()))
	want := c.sign("AWS4-HMAC-SHA256-TRAILER", c.prevSig, hex.EncodeToString(sum[:]))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return Errorf(ErrSignatureMismatch, "The trailer's signature does not match it.")
	}
	return nil
}

// sign is the signature of a chunk or trailer: its algorithm line, the request's date
// and scope, then parts.
func (c *chunkedReader) sign(algorithm string, parts ...string) string {
	s := algorithm + "\n" + c.auth.AmzDate + "\n" + c.auth.Scope + "\n" + strings.Join(parts, "\n")
	return hex.EncodeToString(hmacSHA256(c.auth.SigningKey, s))
}

// errChunkLine says a chunk header or trailer line is too long or not ended by CRLF.
var errChunkLine = errors.New("line too long or not ended by CRLF")

// line reads one CRLF-terminated line, without its CRLF.
func (c *chunkedReader) line() (string, error) {
	b, err := c.Body.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errChunkLine
	}
	if err != nil {
		return "", err
	}
	s, ok := strings.CutSuffix(string(b), "\r\n")
	if !ok {
		return "", errChunkLine
	}
	return s, nil
}

// malformed is the error of a body that is not aws-chunked as it should be: one cut
// short (the client hung up) is an incomplete body, the rest a bad request. A read that
// failed is passed on as it is: whoever reads the body knows whose fault that is.
func (c *chunkedReader) malformed(what string, err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(ErrIncompleteBody, "The aws-chunked body ends early: %s.", what)
	case errors.Is(err, errChunkLine):
		return Errorf(ErrInvalidRequest, "The aws-chunked body is malformed: %s: %v.", what, err)
	case err != nil:
		return fmt.Errorf("aws-chunked body: %s: %w", what, err)
	}
	return Errorf(ErrInvalidRequest, "The aws-chunked body is malformed: %s.", what)
}
