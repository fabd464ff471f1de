package main

// The S3 API's access control: whether a request's key may do what it asks, and the
// buckets' policies (GetBucketPolicy, PutBucketPolicy, DeleteBucketPolicy).

import (
	"net/http"
	"strconv"

	"davkv/internal/policy"
	"davkv/internal/s3proto"
)

// allowed says whether r's key (or an anonymous r) may do action to bucket's object
// key ("" for the bucket itself; a bucket "" for every one): nil, or AccessDenied.
// A master without keys checks nothing.
func (m *s3API) allowed(r *s3Request, action, bucket, key string) error {
	if m.keys == nil {
		return nil
	}
	a := objectAccess(action, bucket, key)
	if bucket == "" {
		a.Resource = policy.EveryResource
	}
	return m.authorize(r.who, a, apiS3)
}

// s3BucketPolicy gets, puts or deletes the bucket's policy. A policy is kept as its
// canonical JSON, and holds on every master within a second (auth.Store.TTL).
func (m *s3API) s3BucketPolicy(w http.ResponseWriter, r *s3Request) error {
	b, rev, err := m.bucket(r.bucket)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		if b.Policy == "" {
			return s3proto.Errorf(s3proto.ErrNoSuchBucketPolicy, "The bucket policy does not exist.")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b.Policy)))
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(b.Policy)) // a client gone is no error of ours
		return nil
	case http.MethodPut:
		body, err := readSmallBody(r)
		if err != nil {
			return err
		}
		p, err := policy.Parse(body, policy.BucketPolicy, r.bucket)
		if err != nil {
			return err
		}
		b.Policy = string(p.JSON())
	case http.MethodDelete:
		b.Policy = ""
	default:
		return s3proto.Errorf(s3proto.ErrMethodNotAllowed, "%s of a bucket's policy is not allowed.", r.Method)
	}
	if err := m.putBucket(r.bucket, b, rev); err != nil {
		return err
	}
	if m.keys != nil {
		m.keys.Forget("", r.bucket)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
