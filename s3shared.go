package main

// What the S3 operations share: the object a request names (objectKey, its ETag),
// reading a replica with fallback (openFile), XML answers, S3 times, small bodies.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// objectKey returns the native key of r's object, checked as the native API checks
// keys, once r's bucket is known to exist.
func (m *s3API) objectKey(r *s3Request) (string, error) {
	b, _, err := m.bucket(r.bucket)
	if err != nil {
		return "", err
	}
	r.rules = b.Lifecycle
	key := "/" + r.bucket + "/" + r.key
	return key, checkKey(key)
}

// openReplica opens key's value, or n bytes of it from off if ranged, on the first
// replica that answers: those on volumes that are up first, then the others.
func (m *s3API) openReplica(ctx context.Context, key string, rec index.Record, off, n int64, ranged bool) (io.ReadCloser, error) {
	return m.openFile(ctx, rec.Path(key), rec.Volumes, rec.Size, off, n, ranged)
}

// openFile opens the file at path, of size bytes, or n bytes of it from off if ranged,
// on the first of vols that answers: those that are up first, then the others.
func (m *s3API) openFile(ctx context.Context, path string, vols []string, size, off, n int64, ranged bool) (io.ReadCloser, error) {
	near, far, down := m.readOrder(vols, nil, nil, nil)
	var errs []error
	for _, v := range slices.Concat(near, far, down) {
		var body io.ReadCloser
		var err error
		if ranged {
			body, err = m.client.GetRange(ctx, v, path, off, n)
		} else {
			var got int64
			if body, got, err = m.client.Get(ctx, v, path); err == nil && got != size {
				body.Close()
				err = &VolumeError{Op: http.MethodGet, Volume: v, Path: path, Err: fmt.Errorf("%w: %d bytes, want %d", ErrCopyMismatch, got, size)}
			}
		}
		m.health.Failed(err)
		if err == nil {
			return body, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// objectETag is the ETag S3 gives rec's value: its own (a multipart upload's) or its
// hex MD5, quoted; none if the MD5 was never computed.
func objectETag(rec index.Record) string {
	tag := cmp.Or(rec.ETag, rec.MD5)
	if tag == "" {
		return ""
	}
	return `"` + tag + `"`
}

// writePrecondition returns the check (see putOptions.Check) of the conditional write
// r asks for with If-None-Match or If-Match, or nil.
func writePrecondition(r *s3Request) func(index.Record, bool) error {
	cond := s3proto.ParseWriteCondition(r.Header)
	if cond == (s3proto.WriteCondition{}) {
		return nil
	}
	return func(old index.Record, live bool) error { return cond.Check(live, objectETag(old)) }
}

// readSmallBody reads the body of a request that is not a value, checked as a value's
// is (see s3Body) and against its Content-MD5.
func readSmallBody(r *s3Request) ([]byte, error) {
	return readSmallBodyOf(r, r.Header)
}

// readSmallBodyOf is readSmallBody with the checksum headers of h (see s3BodyOf).
func readSmallBodyOf(r *s3Request, h http.Header) ([]byte, error) {
	body, _, err := s3BodyOf(r, h)
	if err != nil {
		return nil, err
	}
	defer body.Stop()
	b, err := io.ReadAll(io.LimitReader(body, maxS3SmallBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxS3SmallBody {
		return nil, s3proto.Errorf(s3proto.ErrInvalidRequest, "The request body is longer than %d bytes.", maxS3SmallBody)
	}
	want, err := s3proto.ContentMD5(r.Header)
	if sum := md5.Sum(b); err == nil && want != nil && !bytes.Equal(sum[:], want) {
		err = s3proto.Errorf(s3proto.ErrBadDigest, "The Content-MD5 you specified did not match the body's.")
	}
	return b, err
}

// writeXML answers v as S3 XML, with status 200.
func writeXML(w http.ResponseWriter, r *s3Request, v any) error {
	b, err := xml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	b = append([]byte(xml.Header), b...)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return nil
}

// s3Time is how S3 XML writes times.
func s3Time(nanos int64) string {
	return time.Unix(0, nanos).UTC().Format("2006-01-02T15:04:05.000Z")
}

// copyResult is the answer of CopyObject (named CopyObjectResult) and of UploadPartCopy
// (CopyPartResult): the same fields under two names.
type copyResult struct {
	XMLName      xml.Name
	Xmlns        string `xml:"xmlns,attr"`
	LastModified string
	ETag         string
	checksumXML
}
