package main

// S3 object tagging: PutObjectTagging, GetObjectTagging and DeleteObjectTagging, and the
// tags a write sets (x-amz-tagging on PutObject, CreateMultipartUpload and CopyObject
// with its directive). Tags live in the key's record, beside its headers; changing them
// leaves the value, its ETag and its Last-Modified as they are.

import (
	"net/http"
	"slices"
	"strings"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// requestTags returns the tags r's x-amz-tagging header sets.
func requestTags(r *s3Request) ([]index.Tag, error) {
	tags, err := s3proto.ParseTagHeader(r.Header.Get("X-Amz-Tagging"))
	return indexTags(tags), err
}

// indexTags converts S3's tags to the index's.
func indexTags(tags []s3proto.Tag) []index.Tag {
	var out []index.Tag
	for _, t := range tags {
		out = append(out, index.Tag(t))
	}
	return out
}

// copyTags returns the tags of a copy of src: src's (x-amz-tagging-directive COPY, the
// default) or the request's (REPLACE).
func copyTags(r *s3Request, src index.Record) ([]index.Tag, error) {
	switch d := r.Header.Get("X-Amz-Tagging-Directive"); d {
	case "", "COPY":
		return src.Tags, nil
	case "REPLACE":
		return requestTags(r)
	default:
		return nil, s3proto.Errorf(s3proto.ErrInvalidArgument, "Unknown x-amz-tagging-directive %q: COPY or REPLACE.", d)
	}
}

// s3ObjectTagging serves ?tagging of an object: GET reads its tags, PUT replaces them
// with the body's, DELETE removes them.
func (m *s3API) s3ObjectTagging(w http.ResponseWriter, r *s3Request) error {
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		rec, err := m.index.Get(key)
		if err == nil && rec.State != index.StateLive {
			err = index.ErrNotFound
		}
		if err != nil {
			return err
		}
		res := s3proto.Tagging{Xmlns: s3Namespace, TagSet: []s3proto.Tag{}}
		for _, t := range rec.Tags {
			res.TagSet = append(res.TagSet, s3proto.Tag(t))
		}
		// In key order, as S3 answers (s3-tests' test_put_obj_with_tags).
		slices.SortStableFunc(res.TagSet, func(a, b s3proto.Tag) int { return strings.Compare(a.Key, b.Key) })
		return writeXML(w, r, res)
	case http.MethodPut:
		body, err := readSmallBody(r)
		if err != nil {
			return err
		}
		tags, err := s3proto.ParseTagging(body)
		if err != nil {
			return err
		}
		if err := m.setTags(r, key, indexTags(tags)); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	case http.MethodDelete:
		if err := m.setTags(r, key, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return s3proto.Errorf(s3proto.ErrMethodNotAllowed, "%s of an object's tagging is not allowed.", r.Method)
}

// setTags replaces the tags of key's live value, under the key's lock, waiting for a
// write in flight as S3 writes do.
func (m *s3API) setTags(r *s3Request, key string, tags []index.Tag) error {
	rec, unlock, err := m.lockRecordWait(r.Context(), key, true)
	if err != nil {
		return err
	}
	defer unlock()
	if rec.State != index.StateLive {
		return index.ErrNotFound
	}
	rec.Tags = tags
	return m.index.Put(key, &rec)
}
