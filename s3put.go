package main

// S3 PutObject: an object's value streamed from the request into a write of its own,
// checked as it comes (signed SHA-256, aws-chunked signatures, checksums), with the
// headers S3 keeps beside a value.

import (
	"crypto/sha256"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// s3PutObject stores the body as the object's value, replacing the value the key had
// at once for every reader (see store), and answers its ETag.
func (m *s3API) s3PutObject(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.ObjectWrite); err != nil {
		return err
	}
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	opt := putOptions{Empty: true, Check: writePrecondition(r)}
	if opt.MD5, err = s3proto.ContentMD5(r.Header); err != nil {
		return err
	}
	if opt.Meta, err = objectMeta(r.Header); err != nil {
		return err
	}
	if opt.Tags, err = requestTags(r); err != nil {
		return err
	}
	body, size, err := s3Body(r)
	if err != nil {
		return err
	}
	defer body.Stop()
	opt.Checksum = func() index.Checksum { return bodyChecksum(body.Checks, "") }
	rec, err := m.overwrite(r.Context(), http.NewResponseController(w), key, body, size, opt)
	if err != nil {
		return err
	}
	writeChecksum(w.Header(), rec.Checksum)
	m.writeExpiration(w.Header(), r, rec)
	w.Header().Set("ETag", objectETag(rec))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// s3Body returns the value r carries and its length, as a reader that fails instead of
// ending if the value fails a check: the SHA-256 the request was signed with, the
// checksum headers (but Content-MD5, which the write checks), and for an aws-chunked
// body its chunks' signatures, its trailer's checksum and its declared length.
func s3Body(r *s3Request) (*s3proto.CheckedBody, int64, error) {
	return s3BodyOf(r, r.Header)
}

// s3BodyOf is s3Body with the checksum headers of h: none (nil) for a body whose
// x-amz-checksum-* are not its own (CompleteMultipartUpload's are the object's).
func s3BodyOf(r *s3Request, h http.Header) (*s3proto.CheckedBody, int64, error) {
	payload := r.auth.Payload
	streaming := strings.HasPrefix(payload, "STREAMING-")
	trailer := ""
	if streaming {
		trailer = r.Header.Get("X-Amz-Trailer")
	}
	checks, err := s3proto.StreamChecks(h, trailer)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case payload == s3proto.StreamingSigned || payload == s3proto.StreamingSignedTrailer || payload == s3proto.StreamingUnsignedTrailer:
		size, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || size < 0 {
			return nil, 0, s3proto.Errorf(s3proto.ErrMissingContentLength, "An aws-chunked body needs its length in x-amz-decoded-content-length.")
		}
		return &s3proto.CheckedBody{Body: s3proto.NewChunkedReader(r.Body, r.auth, payload, size, checks), Checks: checks, Async: true}, size, nil
	case streaming:
		return nil, 0, s3proto.Errorf(s3proto.ErrNotImplemented, "The payload %s is not implemented.", payload)
	case r.ContentLength < 0:
		return nil, 0, s3proto.Errorf(s3proto.ErrMissingContentLength, "You must provide the Content-Length HTTP header.")
	case payload != "" && payload != s3proto.UnsignedPayload:
		checks = append(checks, &s3proto.BodyCheck{Header: "X-Amz-Content-Sha256", Hash: sha256.New(), Want: payload, Hex: true, Code: s3proto.ErrContentSHA256Mismatch})
	}
	return &s3proto.CheckedBody{Body: r.Body, Checks: checks, Async: true}, r.ContentLength, nil
}

// storedHeaders are the headers S3 keeps with an object and answers on GET and HEAD,
// beside x-amz-meta-*.
var storedHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type", "Expires"}

// maxUserMeta bounds the x-amz-meta-* headers of an object, names and values, in
// bytes, as S3 does.
const maxUserMeta = 2 << 10

// objectMeta returns the headers of h that are stored with an object, sorted by name:
// x-amz-meta-* in lower case, the others in canonical form.
// aws-chunked, which only says how the body was sent, is not kept of Content-Encoding.
func objectMeta(h http.Header) ([]index.MetaHeader, error) {
	var meta []index.MetaHeader
	user := 0
	for name, values := range h {
		userMeta := strings.HasPrefix(name, "X-Amz-Meta-")
		if !userMeta && !slices.Contains(storedHeaders, name) {
			continue
		}
		value := strings.Join(values, ",")
		if name == "Content-Encoding" && strings.Contains(value, "aws-chunked") {
			// Only aws-chunked is taken out: the rest stays as the client wrote it.
			var kept []string
			for enc := range strings.SplitSeq(value, ",") {
				if enc = strings.TrimSpace(enc); enc != "" && enc != "aws-chunked" {
					kept = append(kept, enc)
				}
			}
			if value = strings.Join(kept, ", "); value == "" {
				continue
			}
		}
		if userMeta {
			// S3 keeps user metadata names in lower case, and clients look for them so.
			name = strings.ToLower(name)
			user += len(name) - len("x-amz-meta-") + len(value)
		}
		meta = append(meta, index.MetaHeader{Name: name, Value: value})
	}
	if user > maxUserMeta {
		return nil, s3proto.Errorf(s3proto.ErrMetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size of %d bytes.", maxUserMeta)
	}
	slices.SortFunc(meta, func(a, b index.MetaHeader) int { return strings.Compare(a.Name, b.Name) })
	return meta, nil
}
