package main

// The S3 bucket operations: CreateBucket, HeadBucket, DeleteBucket, ListBuckets and
// GetBucketLocation. A bucket is an entry of its own in the index, so that an empty
// bucket exists; bucket b holds the keys under /b/.

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// s3Owner is the one owner davkv reports: every access key sees every bucket.
var s3Owner = s3OwnerXML{ID: "davkv", DisplayName: "davkv"}

type s3OwnerXML struct {
	ID          string
	DisplayName string
}

// listAllMyBucketsResult is ListBuckets' answer.
type listAllMyBucketsResult struct {
	XMLName           string `xml:"ListAllMyBucketsResult"`
	Xmlns             string `xml:"xmlns,attr"`
	Owner             s3OwnerXML
	Buckets           []s3BucketXML `xml:"Buckets>Bucket"`
	ContinuationToken string        `xml:",omitempty"` // where the next page starts
	Prefix            string        `xml:",omitempty"`
}

// maxS3ListBuckets is the most buckets one ListBuckets page holds: S3's bound on
// max-buckets.
const maxS3ListBuckets = 10000

type s3BucketXML struct {
	Name         string
	CreationDate string
}

// createBucketConfiguration is CreateBucket's body, when it has one.
type createBucketConfiguration struct {
	LocationConstraint string
}

// locationConstraint is GetBucketLocation's answer: empty, which S3 clients read as
// us-east-1, the region they sign for unless told otherwise.
type locationConstraint struct {
	XMLName string `xml:"LocationConstraint"`
	Xmlns   string `xml:"xmlns,attr"`
	Region  string `xml:",chardata"`
}

// bucket reads the bucket name from the index, or returns NoSuchBucket.
func (m *s3API) bucket(name string) (index.Bucket, int64, error) {
	b, rev, err := index.GetBucket(m.index, name)
	if errors.Is(err, index.ErrNotFound) {
		return b, 0, s3proto.Errorf(s3proto.ErrNoSuchBucket, "The specified bucket does not exist.")
	}
	return b, rev, err
}

// s3CreateBucket creates r's bucket. A body, if any, is a CreateBucketConfiguration:
// its region is not kept, since davkv has one.
func (m *s3API) s3CreateBucket(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.BucketCreate); err != nil {
		return err
	}
	if err := s3proto.CheckBucketName(r.bucket); err != nil {
		return err
	}
	body, err := readSmallBody(r)
	if err != nil {
		return err
	}
	var conf createBucketConfiguration
	if len(bytes.TrimSpace(body)) > 0 {
		if err := xml.Unmarshal(body, &conf); err != nil {
			return s3proto.Errorf(s3proto.ErrMalformedXML, "The CreateBucketConfiguration is not well-formed XML.")
		}
	}
	value, err := index.Bucket{Created: time.Now().UnixNano()}.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = m.index.PutEntry(index.BucketSpace, r.bucket, value, 0)
	switch {
	case errors.Is(err, index.ErrConflict) && (conf.LocationConstraint == "" || conf.LocationConstraint == "us-east-1"):
		// S3's us-east-1, which clients take davkv for, answers a bucket created again
		// by its owner as created, and changes nothing.
	case errors.Is(err, index.ErrConflict):
		return s3proto.Errorf(s3proto.ErrBucketOwned, "The bucket %s exists already, and is yours.", r.bucket)
	case err != nil:
		return err
	}
	h := w.Header()
	h.Set("Location", "/"+r.bucket)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// s3HeadBucket answers 200 if r's bucket exists.
func (m *s3API) s3HeadBucket(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-Amz-Bucket-Region", "us-east-1")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// s3DeleteBucket deletes r's bucket if it holds no key (in any state: an unlinked key,
// or one being written, is still the bucket's).
func (m *s3API) s3DeleteBucket(w http.ResponseWriter, r *s3Request) error {
	_, rev, err := m.bucket(r.bucket)
	if err != nil {
		return err
	}
	empty := true
	err = m.index.Scan("/"+r.bucket+"/", "", func(string, index.Record) (bool, error) {
		empty = false
		return false, nil
	})
	if err != nil {
		return err
	}
	if !empty {
		return s3proto.Errorf(s3proto.ErrBucketNotEmpty, "The bucket %s is not empty.", r.bucket)
	}
	if err := m.index.DeleteEntry(index.BucketSpace, r.bucket, rev); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// s3ListBuckets lists the buckets, in name order: every one, or with max-buckets pages
// of them, each with the token of the next, and with prefix those whose name starts so.
func (m *s3API) s3ListBuckets(w http.ResponseWriter, r *s3Request) error {
	q := r.URL.Query()
	limit := maxS3ListBuckets
	if s := q.Get("max-buckets"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxS3ListBuckets {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "max-buckets must be a number from 1 to %d.", maxS3ListBuckets)
		}
		limit = n
	}
	// A key that may not list every bucket sees those it may list, as MinIO answers it,
	// so that a key limited to one bucket still finds it.
	all := m.allowed(r, "s3:ListAllMyBuckets", "", "")
	if r.who == nil && all != nil {
		return all
	}
	res := listAllMyBucketsResult{Xmlns: s3Namespace, Owner: s3Owner, Buckets: []s3BucketXML{}, Prefix: q.Get("prefix")}
	start := ""
	if token := q.Get("continuation-token"); token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "The continuation token is not one davkv gave.")
		}
		start = string(b)
	}
	err := m.index.Entries(index.BucketSpace, max(start, res.Prefix), func(name string, value []byte, _ int64) (bool, error) {
		if !strings.HasPrefix(name, res.Prefix) {
			return false, nil
		}
		if len(res.Buckets) == limit {
			res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(name))
			return false, nil
		}
		var b index.Bucket
		if err := b.UnmarshalBinary(value); err != nil {
			return false, err
		}
		if all != nil {
			if err := m.allowed(r, "s3:ListBucket", name, ""); errors.Is(err, ErrAccessDenied) {
				return true, nil
			} else if err != nil {
				return false, err
			}
		}
		res.Buckets = append(res.Buckets, s3BucketXML{Name: name, CreationDate: s3Time(b.Created)})
		return true, nil
	})
	if err != nil {
		return err
	}
	return writeXML(w, r, res)
}

// s3GetBucketLocation answers the bucket's region.
func (m *s3API) s3GetBucketLocation(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	return writeXML(w, r, locationConstraint{Xmlns: s3Namespace})
}
