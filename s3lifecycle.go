package main

// S3's bucket lifecycle configuration: PutBucketLifecycleConfiguration,
// GetBucketLifecycleConfiguration and DeleteBucketLifecycle, kept in the bucket's
// entry (see internal/lifecycle for the rules, lifecycle.go for their application),
// and the x-amz-expiration a GET or HEAD answers.

import (
	"errors"
	"net/http"

	"davkv/internal/index"
	"davkv/internal/lifecycle"
	"davkv/internal/s3proto"
)

// s3BucketLifecycle serves ?lifecycle of a bucket: GET reads its rules, PUT replaces
// them with the body's, DELETE removes them.
func (m *s3API) s3BucketLifecycle(w http.ResponseWriter, r *s3Request) error {
	b, rev, err := m.bucket(r.bucket)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		if len(b.Lifecycle) == 0 {
			return s3proto.Errorf(lifecycle.ErrNoSuchConfiguration, "The lifecycle configuration does not exist.")
		}
		return writeXML(w, r, lifecycle.Marshal(b.Lifecycle, s3Namespace))
	case http.MethodPut:
		body, err := readSmallBody(r)
		if err != nil {
			return err
		}
		if b.Lifecycle, err = lifecycle.Parse(body); err != nil {
			return err
		}
		if err := m.putBucket(r.bucket, b, rev); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodDelete:
		b.Lifecycle = nil
		if err := m.putBucket(r.bucket, b, rev); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return s3proto.Errorf(s3proto.ErrMethodNotAllowed, "%s of a bucket's lifecycle is not allowed.", r.Method)
}

// putBucket writes bucket b's entry if it is still at rev.
func (m *s3API) putBucket(name string, b index.Bucket, rev int64) error {
	value, err := b.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = m.index.PutEntry(index.BucketSpace, name, value, rev)
	if errors.Is(err, index.ErrConflict) {
		return &s3proto.Error{ErrorCode: s3proto.ErrOperationAborted, Message: "The bucket changed meanwhile; try again.", Err: err}
	}
	return err
}

// writeExpiration sets the x-amz-expiration of rec's answer, if the rules of its bucket
// expire it.
func (m *s3API) writeExpiration(h http.Header, r *s3Request, rec index.Record) {
	if len(r.rules) == 0 {
		return
	}
	if due, id, ok := lifecycle.Expiry(r.rules, r.key, rec, m.lifecycleDay()); ok {
		h.Set("X-Amz-Expiration", lifecycle.Header(due, id))
	}
}
