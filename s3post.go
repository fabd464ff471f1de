package main

// S3's browser uploads (POST Object): an HTML form posted straight from a web page, its
// fields checked against the SigV4-signed POST policy, its file streamed into a write
// of the object as a PutObject's body is.

import (
	"cmp"
	"encoding/xml"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"davkv/internal/auth"
	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// maxPostFields bounds the bytes of a form's fields before its file, as S3's 20 KB.
const maxPostFields = 20 << 10

// errMalformedPost is S3's answer to a body that is not a form.
var errMalformedPost = &s3proto.ErrorCode{Code: "MalformedPOSTRequest", Status: http.StatusBadRequest}

// isPostUpload reports whether r is a browser upload: a POST of a form to a bucket.
func isPostUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data")
}

// postResponse is the answer to a browser upload with success_action_status 201.
type postResponse struct {
	XMLName  xml.Name `xml:"PostResponse"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

// s3PostObject stores the file of a browser upload as the object its key field
// names (${filename} is the file's name). With -s3keys the form must be signed, and
// its policy holds: its expiration, its conditions, every field named by one, the
// file within its content-length-range. The answer is success_action_redirect's 303,
// or the status success_action_status asks (200, 201 with XML, or 204).
func (m *s3API) s3PostObject(w http.ResponseWriter, r *s3Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return s3proto.Errorf(errMalformedPost, "The body of your POST request is not well-formed multipart/form-data.")
	}
	form := s3proto.PostForm{}
	var file *multipart.Part
	size := 0
	for file == nil {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "POST requires exactly one file upload per request.")
		}
		if err != nil {
			return s3proto.Errorf(errMalformedPost, "The body of your POST request is not well-formed multipart/form-data.")
		}
		name := strings.ToLower(part.FormName())
		if name == "file" {
			file = part
			break
		}
		v, err := io.ReadAll(io.LimitReader(part, maxPostFields+1-int64(size)))
		if size += len(v); err != nil || size > maxPostFields {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "The fields of a POST before its file are at most %d bytes.", maxPostFields)
		}
		form[name] = string(v)
	}
	if form["key"] == "" {
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "Bucket POST must contain a field named 'key'.")
	}
	length := s3proto.LengthRange{Max: -1}
	// A form that names no signer is anonymous, and may post where the bucket's
	// policy lets anyone; without -s3keys no signature is checked, but a policy
	// still holds.
	signed := form["x-amz-algorithm"] != "" || form["awsaccesskeyid"] != "" || form["x-amz-credential"] != ""
	if m.keys != nil && signed || form["policy"] != "" {
		var policy s3proto.Policy
		if m.keys != nil && signed {
			who, err := m.authenticate(r.Request, apiS3, func() (*auth.Key, error) {
				var err error
				if r.auth.Access, policy, err = s3proto.VerifyPost(form, m.keys, time.Now()); err != nil {
					return nil, err
				}
				k, err := m.keys.Key(r.auth.Access)
				return &k, err
			})
			if err != nil {
				return err
			}
			r.who = who
		} else if policy, err = s3proto.ParsePolicy(form["policy"]); err != nil {
			return err
		} else if !time.Now().Before(policy.Expiration) {
			return s3proto.Errorf(s3proto.ErrAccessDenied, "Invalid according to Policy: Policy expired.")
		}
		if err := policy.Check(form, r.bucket, file.FileName()); err != nil {
			return err
		}
		length.Min, length.Max = policy.MinLength, policy.MaxLength
	}
	r.key = strings.ReplaceAll(form["key"], "${filename}", file.FileName())
	if err := m.allowed(r, "s3:PutObject", r.bucket, r.key); err != nil {
		return err
	}
	key, err := m.objectKey(r)
	if err != nil {
		return err
	}
	// The fields that are headers of a PutObject are checked and kept as its headers are.
	h := http.Header{}
	for name, v := range form {
		switch {
		case name == "acl":
			h.Set("X-Amz-Acl", v)
		case strings.HasPrefix(name, "x-amz-meta-"), strings.HasPrefix(name, "x-amz-server-side-encryption"), strings.HasPrefix(name, "x-amz-object-lock-"), strings.HasPrefix(name, "x-amz-checksum-"),
			name == "x-amz-storage-class", name == "x-amz-website-redirect-location", slices.Contains(storedHeaders, http.CanonicalHeaderKey(name)):
			h.Set(name, v)
		}
	}
	if h.Get("Content-Type") == "" && file.Header.Get("Content-Type") != "" {
		h.Set("Content-Type", file.Header.Get("Content-Type"))
	}
	if err := s3proto.Unsupported(h, s3proto.ObjectWrite); err != nil {
		return err
	}
	opt := putOptions{Empty: true}
	if opt.Meta, err = objectMeta(h); err != nil {
		return err
	}
	if tagging := form["tagging"]; tagging != "" {
		tags, err := s3proto.ParseTagging([]byte(tagging))
		if err != nil {
			return err
		}
		opt.Tags = indexTags(tags)
	}
	// x-amz-checksum-* fields are checked as PutObject's headers are, and kept.
	checks, err := s3proto.StreamChecks(h, "")
	if err != nil {
		return err
	}
	body := &s3proto.CheckedBody{Body: &postFile{file: file, length: &length}, Checks: checks}
	opt.Checksum = func() index.Checksum { return bodyChecksum(checks, "") }
	rec, err := m.overwrite(r.Context(), http.NewResponseController(w), key, body, -1, opt)
	if err != nil {
		return err
	}
	return m.postAnswer(w, r, form, rec)
}

// postAnswer answers a browser upload that stored rec as S3 does: a redirect to
// success_action_redirect with the bucket, key and ETag in its query, or the status
// success_action_status asks for.
func (m *s3API) postAnswer(w http.ResponseWriter, r *s3Request, form s3proto.PostForm, rec index.Record) error {
	etag := objectETag(rec)
	location := "/" + r.bucket + "/" + s3proto.URIEncode(r.key, false)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Location", location)
	if to := cmp.Or(form["success_action_redirect"], form["redirect"]); to != "" {
		if u, err := url.Parse(to); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			q := u.Query()
			q.Set("bucket", r.bucket)
			q.Set("key", r.key)
			q.Set("etag", etag)
			u.RawQuery = q.Encode()
			h.Set("Location", u.String())
			w.WriteHeader(http.StatusSeeOther)
			return nil
		}
	}
	switch form["success_action_status"] {
	case "200":
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case "201":
		b, err := xml.Marshal(postResponse{Location: location, Bucket: r.bucket, Key: r.key, ETag: etag})
		if err != nil {
			return err
		}
		h.Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusCreated)
		w.Write(append([]byte(xml.Header), b...))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// postFile reads a browser upload's file, checked against the policy's
// content-length-range: it fails, instead of ending, outside it, so that the write
// never takes it whole.
type postFile struct {
	file   io.Reader
	length *s3proto.LengthRange
}

func (f *postFile) Read(p []byte) (int, error) {
	n, err := f.file.Read(p)
	return n, f.length.Count(n, err)
}
