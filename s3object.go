package main

// The S3 object operations that read or delete: GetObject and HeadObject (with ranges
// and conditions), DeleteObject and DeleteObjects, on the same records and files as
// the native API.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/s3proto"
)

// liveObject returns the native key and live record of r's object.
func (m *s3API) liveObject(r *s3Request) (string, index.Record, error) {
	key, err := m.objectKey(r)
	if err != nil {
		return key, index.Record{}, err
	}
	rec, err := m.index.Get(key)
	if err == nil && rec.State != index.StateLive {
		err = index.ErrNotFound
	}
	return key, rec, err
}

// s3HeadObject answers an object's size, ETag and time from the index, without asking
// a volume.
func (m *s3API) s3HeadObject(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.ObjectRead); err != nil {
		return err
	}
	_, rec, err := m.liveObject(r)
	if err != nil {
		return err
	}
	return m.s3ServeObject(w, r, "", rec)
}

// s3GetObject streams an object from a replica: S3 clients do not follow redirects.
func (m *s3API) s3GetObject(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.ObjectRead); err != nil {
		return err
	}
	key, rec, err := m.liveObject(r)
	if err != nil {
		return err
	}
	return m.s3ServeObject(w, r, key, rec)
}

// s3ServeObject answers a GET (key set) or HEAD of rec: its conditions, its range, its
// headers, and for a GET the bytes, from the first replica that opens, volumes that
// are up first. A replica that fails once bytes have gone out ends the answer short,
// which the client sees against its Content-Length.
func (m *s3API) s3ServeObject(w http.ResponseWriter, r *s3Request, key string, rec index.Record) error {
	modified := time.Unix(0, rec.Modified).UTC().Truncate(time.Second)
	etag := objectETag(rec)
	h := w.Header()
	h.Set("Last-Modified", modified.Format(http.TimeFormat))
	if etag != "" {
		h.Set("ETag", etag)
	}
	notModified, err := s3proto.CheckConditions(r.Request, etag, modified)
	if err != nil {
		return err
	}
	if notModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	q := r.URL.Query()
	off, n, ranged, err := s3proto.ParseRange(r.Header.Get("Range"), rec.Size)
	if q.Has("partNumber") {
		off, n, err = partRange(r, rec)
		ranged = rec.Size > 0 // a part is a range, but of an empty value there is none
	}
	if err != nil {
		return err
	}
	h.Set("Content-Type", "application/octet-stream")
	for _, mh := range rec.Meta {
		h[mh.Name] = []string{mh.Value} // as stored: user metadata in lower case
	}
	if len(rec.Parts) > 0 {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(rec.Parts)))
	}
	if len(rec.Tags) > 0 {
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(rec.Tags)))
	}
	m.writeExpiration(h, r, rec)
	if strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		writeChecksum(h, servedChecksum(r, rec, ranged))
	}
	for _, o := range responseOverrides {
		if v := q.Get(o.Param); v != "" {
			h.Set(o.Header, v)
		}
	}
	h.Set("Accept-Ranges", "bytes")
	status := http.StatusOK
	if ranged {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, rec.Size))
	}
	if key == "" { // HEAD
		h.Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(status)
		return nil
	}
	body, err := m.openReplica(r.Context(), key, rec, off, n, ranged)
	if err != nil {
		return err
	}
	defer body.Close()
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(status)
	// The body's WriteTo splices it from the volume's socket into the client's.
	if _, err := io.Copy(w, body); err != nil {
		m.log.Warn("s3 GetObject ended short", "key", key, "request", r.id, "err", err)
	}
	return nil
}

// servedChecksum is the checksum of what a GET of rec serves: the whole value's, or a
// part's (of the object's algorithm and type, as S3 answers a partNumber); a range has
// none of its own.
func servedChecksum(r *s3Request, rec index.Record, ranged bool) index.Checksum {
	part, _ := strconv.Atoi(r.URL.Query().Get("partNumber")) // checked by partRange
	switch {
	case part > 0 && part <= len(rec.Parts):
		c := rec.Checksum
		c.Value = rec.Parts[part-1].Checksum
		return c
	case part == 1 || !ranged:
		return rec.Checksum
	}
	return index.Checksum{}
}

// partRange returns where part ?partNumber of rec's value is, and its length: a part
// of a multipart upload, or for a value written whole, part 1, all of it.
func partRange(r *s3Request, rec index.Record) (off, n int64, err error) {
	if r.Header.Get("Range") != "" {
		return 0, 0, s3proto.Errorf(s3proto.ErrInvalidRequest, "Cannot specify both Range header and partNumber query parameter.")
	}
	part, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil || part < 1 || part > layout.MaxParts {
		return 0, 0, s3proto.Errorf(s3proto.ErrInvalidArgument, "Part number must be an integer between 1 and %d, inclusive.", layout.MaxParts)
	}
	switch {
	case len(rec.Parts) == 0 && strings.Contains(rec.ETag, "-"):
		return 0, 0, s3proto.Errorf(s3proto.ErrNotImplemented, "The object was completed by a davkv that did not keep its part sizes: read it by range.")
	case len(rec.Parts) == 0 && part == 1:
		return 0, rec.Size, nil
	case part > len(rec.Parts):
		return 0, 0, s3proto.Errorf(s3proto.ErrInvalidPartNumber, "The requested partnumber is not satisfiable.")
	}
	for _, p := range rec.Parts[:part-1] {
		off += p.Size
	}
	return off, rec.Parts[part-1].Size, nil
}

// s3DeleteObject deletes an object as the native DELETE does, and answers 204 whether
// or not it existed, as S3 does.
func (m *s3API) s3DeleteObject(w http.ResponseWriter, r *s3Request) error {
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	if err := m.s3Delete(r.Context(), key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// s3Delete deletes key with S3's semantics: a missing key is deleted already.
func (m *s3API) s3Delete(ctx context.Context, key string) error {
	err := m.deleteKey(ctx, key, true)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return nil
	case errors.Is(err, ErrProtected):
		return &s3proto.Error{ErrorCode: s3proto.ErrAccessDenied, Message: "The key is protected (-protect): UNLINK it first.", Err: err}
	}
	return err
}

// maxDeleteObjects is the most keys one DeleteObjects names, as S3 allows.
const maxDeleteObjects = 1000

// deleteRequest is DeleteObjects' body.
type deleteRequest struct {
	Quiet   bool
	Objects []struct {
		Key string
	} `xml:"Object"`
}

// deleteResult is DeleteObjects' answer: a line per key deleted (unless Quiet) or not.
type deleteResult struct {
	XMLName string           `xml:"DeleteResult"`
	Xmlns   string           `xml:"xmlns,attr"`
	Deleted []deletedXML     `xml:"Deleted"`
	Errors  []deleteErrorXML `xml:"Error"`
}

type deletedXML struct{ Key string }

type deleteErrorXML struct {
	Key     string
	Code    string
	Message string
}

// s3DeleteObjects deletes up to maxDeleteObjects keys of a bucket (POST ?delete) and
// answers each key's result; a key that fails does not stop the others.
func (m *s3API) s3DeleteObjects(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r)
	if err != nil {
		return err
	}
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > maxDeleteObjects {
		return s3proto.Errorf(s3proto.ErrMalformedXML, "The body must be a Delete of 1 to %d Objects.", maxDeleteObjects)
	}
	res := deleteResult{Xmlns: s3Namespace}
	for _, o := range req.Objects {
		key := "/" + r.bucket + "/" + o.Key
		err := checkKey(key)
		if err == nil {
			err = m.allowed(r, "s3:DeleteObject", r.bucket, o.Key)
		}
		if err == nil {
			err = m.s3Delete(r.Context(), key)
		}
		if err != nil {
			se := asS3Error(err)
			m.log.Warn("s3 DeleteObjects: a key failed", "key", key, "code", se.Code, "request", r.id, "err", err)
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, Code: se.Code, Message: se.Message})
		} else if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedXML{Key: o.Key})
		}
	}
	return writeXML(w, r, res)
}
