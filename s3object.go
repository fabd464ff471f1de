package main

// The S3 object operations served so far: HeadObject and DeleteObject, on the same
// records and files as the native API.

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// objectKey returns the native key of r's object, checked as the native API checks
// keys, once r's bucket is known to exist.
func (m *Master) objectKey(r *s3Request) (string, error) {
	if _, _, err := m.bucket(r); err != nil {
		return "", err
	}
	key := "/" + r.bucket + "/" + r.key
	return key, checkKey(key)
}

// s3HeadObject answers an object's size, ETag and time from the index, without asking
// a volume.
func (m *Master) s3HeadObject(w http.ResponseWriter, r *s3Request) error {
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	rec, err := m.index.Get(key)
	if err == nil && rec.State != StateLive {
		err = ErrNotFound
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Length", strconv.FormatInt(rec.Size, 10))
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Last-Modified", time.Unix(0, rec.Time).UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Amz-Request-Id", r.id)
	if etag := quoteETag(rec.MD5); etag != "" {
		h.Set("ETag", etag)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// s3DeleteObject deletes an object as the native DELETE does, and answers 204 whether
// or not it existed, as S3 does.
func (m *Master) s3DeleteObject(w http.ResponseWriter, r *s3Request) error {
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	w.Header().Set("X-Amz-Request-Id", r.id)
	err = m.delete(w, r.Request, key)
	switch {
	case errors.Is(err, ErrNotFound):
		w.WriteHeader(http.StatusNoContent)
		return nil
	case errors.Is(err, ErrProtected):
		return &S3Error{S3Code: ErrS3AccessDenied, Message: "The key is protected (-protect): UNLINK it first.", Err: err}
	}
	return err
}
