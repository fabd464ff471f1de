package main

// The S3 API's front: which requests are S3's, their signature, which bucket and key
// they name, and which operation serves them; every S3 error leaves through s3proto.WriteError.

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// s3SubResources are query parameters that only S3 requests carry; a request with one
// is S3's even when unsigned.
var s3SubResources = []string{
	"list-type", "uploads", "uploadId", "partNumber", "delete", "location", "versioning",
	"versions", "acl", "tagging", "policy", "cors", "lifecycle", "encryption", "website",
	"logging", "notification", "replication", "requestPayment", "object-lock", "retention",
	"legal-hold", "accelerate", "ownershipControls", "publicAccessBlock", "x-id",
	"X-Amz-Algorithm", "X-Amz-Signature",
}

// s3API is the S3 front of a Master: its handlers speak S3 to the index and the volumes
// that the native API uses, so that the Master's own methods are the native API's.
type s3API struct{ *Master }

// isS3 reports whether r is an S3 request: signed by AWS's rules, with an S3
// sub-resource, or (with -s3domain) addressed to a bucket's host name. Anything else
// is the native API.
func (m *s3API) isS3(r *http.Request) bool {
	if auth := r.Header["Authorization"]; len(auth) > 0 && (strings.HasPrefix(auth[0], "AWS4-") || strings.HasPrefix(auth[0], "AWS ")) {
		return true
	}
	if m.cfg.S3Domain != "" && m.s3Bucket(r) != "" || isPostUpload(r) {
		return true
	}
	if r.URL.RawQuery == "" {
		return false
	}
	q := r.URL.Query()
	for _, name := range s3SubResources {
		if q.Has(name) {
			return true
		}
	}
	return false
}

// s3Bucket returns the bucket a virtual-host request names (bucket.S3Domain), or "".
func (m *s3API) s3Bucket(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	bucket, ok := strings.CutSuffix(host, "."+m.cfg.S3Domain)
	if !ok {
		return ""
	}
	return bucket
}

// s3Request is a parsed S3 request.
type s3Request struct {
	*http.Request
	auth   s3proto.Auth
	bucket string
	key    string // the object's key in the bucket, without a leading '/'
	id     string // the request ID, sent back and logged
	// rules are the lifecycle rules of the bucket, once objectKey has read it.
	rules []index.LifecycleRule
}

// serveS3 checks an S3 request's signature, finds its bucket and key, and hands it to
// its operation.
func (m *s3API) serveS3(w http.ResponseWriter, r *http.Request) {
	req := &s3Request{Request: r, id: strconv.FormatUint(rand.Uint64(), 16)}
	// An empty body asked for with Expect: 100-continue never gets Go's automatic 100
	// (there is nothing to read), and botocore, answered without one, parses the next
	// answer on that connection with this one's status line, then hangs. Send it.
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusContinue)
	}
	// Every answer, an error or not, names its request.
	w.Header().Set("X-Amz-Request-Id", req.id)
	err := m.s3Serve(w, req)
	if err == nil {
		return
	}
	se := asS3Error(err)
	if se.Status != http.StatusNotFound {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", se.Status, "code", se.Code, "request", req.id, "err", err}
		if req.auth.Access != "" {
			attrs = append(attrs, "access", req.auth.Access)
		}
		m.log.Warn("s3 request failed", attrs...)
	}
	if errors.As(err, new(answeredError)) {
		return // its answer is written already
	}
	s3proto.WriteError(w, r, se, req.id)
}

func (m *s3API) s3Serve(w http.ResponseWriter, r *s3Request) error {
	if len(m.cfg.S3Keys) > 0 && !isPostUpload(r.Request) { // a form is signed in its fields
		auth, err := s3proto.VerifySigV4(r.Request, m.cfg.S3Keys, time.Now())
		if err != nil {
			return err
		}
		r.auth = auth
	} else {
		r.auth.Payload = r.Header.Get("X-Amz-Content-Sha256")
	}
	if m.cfg.S3Domain != "" {
		r.bucket = m.s3Bucket(r.Request)
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if r.bucket == "" {
		r.bucket, path, _ = strings.Cut(path, "/")
	}
	r.key = path
	q := r.URL.Query()
	if v, ok := q["versionId"]; ok && r.key != "" && v[0] != nullVersion {
		// Every object has one version, "null" (see s3versions.go).
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "Invalid version id specified.")
	}
	switch {
	case r.bucket == "" && r.Method == http.MethodGet:
		return m.s3ListBuckets(w, r)
	case r.bucket == "":
		return s3proto.Errorf(s3proto.ErrMethodNotAllowed, "The service answers only GET (ListBuckets).")
	case r.key != "" && r.Method == http.MethodPost && onlyParams(q, []string{"uploads"}) && q.Has("uploads"):
		return m.s3CreateMultipartUpload(w, r)
	case r.key != "" && r.Method == http.MethodPut && onlyParams(q, []string{"partNumber", "uploadId"}) && q.Has("partNumber") && q.Has("uploadId"):
		return m.s3UploadPart(w, r)
	case r.key != "" && onlyParams(q, []string{"uploadId", "max-parts", "part-number-marker"}) && q.Has("uploadId"):
		switch r.Method {
		case http.MethodPost:
			return m.s3CompleteMultipartUpload(w, r)
		case http.MethodDelete:
			return m.s3AbortMultipartUpload(w, r)
		case http.MethodGet:
			return m.s3ListParts(w, r)
		}
		return s3proto.Errorf(s3proto.ErrMethodNotAllowed, "%s of a multipart upload is not allowed.", r.Method)
	case r.key != "" && r.Method == http.MethodGet && q.Has("attributes") && onlyParams(q, []string{"attributes", "versionId"}):
		return m.s3GetObjectAttributes(w, r)
	case r.key != "" && q.Has("tagging") && onlyParams(q, []string{"tagging", "versionId"}):
		return m.s3ObjectTagging(w, r)
	case r.key != "" && r.Method == http.MethodHead && onlyParams(q, objectReadParams):
		return m.s3HeadObject(w, r)
	case r.key != "" && r.Method == http.MethodGet && onlyParams(q, objectReadParams):
		return m.s3GetObject(w, r)
	case r.key != "" && r.Method == http.MethodDelete && onlyParams(q, []string{"versionId"}):
		return m.s3DeleteObject(w, r)
	case r.key != "" && r.Method == http.MethodPut && !hasSubResource(q) && r.Header.Get("X-Amz-Copy-Source") != "":
		return m.s3CopyObject(w, r)
	case r.key != "" && r.Method == http.MethodPut && !hasSubResource(q):
		return m.s3PutObject(w, r)
	case r.key != "":
		return s3proto.Errorf(s3proto.ErrNotImplemented, "%s of an object is not implemented yet.", r.Method)
	case r.Method == http.MethodGet && isListing(q):
		return m.s3ListObjects(w, r)
	case r.Method == http.MethodPut && !hasSubResource(q):
		return m.s3CreateBucket(w, r)
	case r.Method == http.MethodHead && !hasSubResource(q):
		return m.s3HeadBucket(w, r)
	case r.Method == http.MethodDelete && !hasSubResource(q):
		return m.s3DeleteBucket(w, r)
	case r.Method == http.MethodPost && !hasSubResource(q) && isPostUpload(r.Request):
		return m.s3PostObject(w, r)
	case r.Method == http.MethodPost && q.Has("delete"):
		return m.s3DeleteObjects(w, r)
	case r.Method == http.MethodGet && q.Has("uploads") && onlyParams(q, []string{"uploads", "prefix", "delimiter", "key-marker", "upload-id-marker", "max-uploads", "encoding-type"}):
		return m.s3ListMultipartUploads(w, r)
	case r.Method == http.MethodGet && q.Has("versioning") && onlyParams(q, []string{"versioning"}):
		return m.s3GetBucketVersioning(w, r)
	case r.Method == http.MethodGet && q.Has("versions") && onlyParams(q, []string{"versions", "prefix", "delimiter", "key-marker", "version-id-marker", "max-keys", "encoding-type"}):
		return m.s3ListObjectVersions(w, r)
	case q.Has("lifecycle") && onlyParams(q, []string{"lifecycle"}):
		return m.s3BucketLifecycle(w, r)
	case r.Method == http.MethodGet && q.Has("location"):
		return m.s3GetBucketLocation(w, r)
	}
	return s3proto.Errorf(s3proto.ErrNotImplemented, "%s of a bucket with ?%s is not implemented.", r.Method, r.URL.RawQuery)
}

// hasSubResource reports whether q names an S3 sub-resource: an operation other than
// the plain one of its method.
func hasSubResource(q url.Values) bool { return !onlyParams(q, nil) }

// responseOverrides are the query parameters of a GetObject or HeadObject that set a
// header of the answer, which presigned download links use (a file name to save as, a
// type), and the header each sets.
var responseOverrides = []struct{ Param, Header string }{
	{"response-content-type", "Content-Type"}, {"response-content-disposition", "Content-Disposition"},
	{"response-cache-control", "Cache-Control"}, {"response-content-encoding", "Content-Encoding"},
	{"response-content-language", "Content-Language"}, {"response-expires", "Expires"},
}

// objectReadParams are the query parameters of GetObject and HeadObject.
var objectReadParams = func() []string {
	params := []string{"partNumber", "versionId"}
	for _, o := range responseOverrides {
		params = append(params, o.Param)
	}
	return params
}()

// listingParams are the query parameters of a bucket listing.
var listingParams = []string{"list-type", "prefix", "delimiter", "max-keys", "marker", "start-after", "continuation-token", "encoding-type", "fetch-owner"}

// isListing reports whether a bucket GET with query q is a listing: it has no
// sub-resource but a listing's parameters.
func isListing(q url.Values) bool { return onlyParams(q, listingParams) }

// onlyParams reports whether q has no parameters but allowed ones, and those every
// request may carry: x-id (which SDKs add) and a presigned URL's X-Amz-*.
func onlyParams(q url.Values, allowed []string) bool {
	for name := range q {
		if !slices.Contains(allowed, name) && name != "x-id" && !strings.HasPrefix(name, "X-Amz-") {
			return false
		}
	}
	return true
}

// maxS3SmallBody bounds the bodies of S3 requests that are not values (bucket
// configurations, delete lists): they are read whole.
const maxS3SmallBody = 1 << 20

// s3Namespace is the XML namespace of every S3 answer.
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"
