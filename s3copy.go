package main

// S3 CopyObject: a PutObject whose value is read from another object's replica,
// streamed through the master into a write of its own, size and MD5 checked.

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// s3CopyObject copies the object x-amz-copy-source names to r's object, as PutObject
// would write it: replacing what the key held, at once for every reader. The value is
// checked against the source's size and MD5 before it is released to the volumes. Its
// headers are the source's, or with x-amz-metadata-directive: REPLACE the request's.
func (m *s3API) s3CopyObject(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.ObjectWrite); err != nil {
		return err
	}
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	srcKey, src, err := m.copySource(r)
	if err != nil {
		return err
	}
	opt := putOptions{Empty: true, Meta: src.Meta, Check: writePrecondition(r)}
	switch d := r.Header.Get("X-Amz-Metadata-Directive"); d {
	case "", "COPY":
		if srcKey == key {
			return s3proto.Errorf(s3proto.ErrInvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.")
		}
	case "REPLACE":
		if opt.Meta, err = objectMeta(r.Header); err != nil {
			return err
		}
	default:
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "Unknown x-amz-metadata-directive %q: COPY or REPLACE.", d)
	}
	if opt.Tags, err = copyTags(r, src); err != nil {
		return err
	}
	if src.MD5 != "" {
		if opt.MD5, err = parseContentMD5(src.MD5); err != nil {
			return err
		}
	}
	// The copy's checksum: the source's, when it is of the whole value and of the
	// algorithm asked for (x-amz-checksum-algorithm), else summed as the copy streams.
	alg := src.Checksum.Algorithm
	if name := r.Header.Get("X-Amz-Checksum-Algorithm"); name != "" {
		if alg, err = s3proto.ChecksumAlgorithm(name); err != nil {
			return err
		}
	}
	body, err := m.openReplica(r.Context(), srcKey, src, 0, src.Size, false)
	if err != nil {
		return err
	}
	defer body.Close()
	copied := &s3proto.CheckedBody{Body: copyBody{body}}
	switch {
	case alg == "":
	case alg == src.Checksum.Algorithm && src.Checksum.Type == fullObject:
		opt.Checksum = func() index.Checksum { return src.Checksum }
	default:
		copied.Checks = []*s3proto.BodyCheck{s3proto.SumCheck(alg)}
		opt.Checksum = func() index.Checksum { return bodyChecksum(copied.Checks, alg) }
	}
	rec, err := m.overwrite(r.Context(), http.NewResponseController(w), key, copied, src.Size, opt)
	if errors.Is(err, ErrBadDigest) {
		return &s3proto.Error{ErrorCode: s3proto.ErrInternalError, Message: "The source's replica does not match its MD5; verify -fix repairs it.", Err: err}
	}
	if err != nil {
		return err
	}
	m.writeExpiration(w.Header(), r, rec)
	return writeXML(w, r, copyResult{XMLName: xml.Name{Local: "CopyObjectResult"}, Xmlns: s3Namespace, LastModified: s3Time(rec.Modified), ETag: objectETag(rec),
		checksumXML: checksumFields(rec.Checksum, true)})
}

// copySource returns the native key and live record of the object r's
// x-amz-copy-source names, once x-amz-copy-source-if-* hold for it.
func (m *s3API) copySource(r *s3Request) (string, index.Record, error) {
	key, err := m.copySourceKey(r, r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return key, index.Record{}, err
	}
	src, err := m.index.Get(key)
	if err == nil && src.State != index.StateLive {
		err = index.ErrNotFound
	}
	if err == nil {
		err = checkCopyConditions(r.Header, src)
	}
	return key, src, err
}

// copySourceKey returns the native key of an x-amz-copy-source, "[/]BUCKET/KEY"
// URL-encoded, once its bucket is known to exist and r's key may read it. Objects have
// one version, "null".
func (m *s3API) copySourceKey(r *s3Request, header string) (string, error) {
	path, query, _ := strings.Cut(header, "?")
	if v, err := url.ParseQuery(query); err != nil || len(v) > 1 || len(v) == 1 && v.Get("versionId") != "null" {
		return "", s3proto.Errorf(s3proto.ErrInvalidArgument, "x-amz-copy-source %q names a version; objects here have only the version null.", header)
	}
	path, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
	bucket, key, ok := strings.Cut(path, "/")
	if err != nil || !ok || bucket == "" || key == "" {
		return "", s3proto.Errorf(s3proto.ErrInvalidArgument, "x-amz-copy-source %q is not BUCKET/KEY, URL-encoded.", header)
	}
	if _, _, err := m.bucket(bucket); err != nil {
		return "", err
	}
	native := "/" + bucket + "/" + key
	if err := checkKey(native); err != nil {
		return native, err
	}
	return native, m.allowed(r, "s3:GetObject", bucket, key)
}

// checkCopyConditions applies x-amz-copy-source-if-* to the source: any that fails is
// PreconditionFailed, as S3 answers a copy.
func checkCopyConditions(h http.Header, src index.Record) error {
	conds := &http.Request{Header: http.Header{}}
	for _, name := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := h.Get("X-Amz-Copy-Source-" + name); v != "" {
			conds.Header.Set(name, v)
		}
	}
	notModified, err := s3proto.CheckConditions(conds, objectETag(src), time.Unix(0, src.Modified).UTC().Truncate(time.Second))
	if err == nil && notModified {
		err = s3proto.Errorf(s3proto.ErrPreconditionFailed, "At least one of the preconditions you specified did not hold.")
	}
	return err
}

// copyBody reads a copy's source: its failures are a volume's, not the client's.
type copyBody struct{ io.Reader }

func (b copyBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err != nil && err != io.EOF {
		err = &s3proto.Error{ErrorCode: s3proto.ErrServiceUnavailable, Message: "The copy's source could not be read; try again.", Err: err}
	}
	return n, err
}
