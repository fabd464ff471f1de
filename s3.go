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

	"davkv/internal/auth"
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
// sub-resource or header, sent by an AWS SDK, or (with -s3domain) addressed to a
// bucket's host name. Anything else is the native API.
func (m *s3API) isS3(r *http.Request) bool {
	if auth := r.Header["Authorization"]; len(auth) > 0 && (strings.HasPrefix(auth[0], "AWS4-") || strings.HasPrefix(auth[0], "AWS ")) {
		return true
	}
	if m.cfg.S3Domain != "" && m.s3Bucket(r) != "" || isPostUpload(r) {
		return true
	}
	// An unsigned request of an S3 SDK (an anonymous read of a public bucket, say)
	// still names itself: SDKs send amz-sdk-* headers, and S3's own are x-amz-*.
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-") || strings.HasPrefix(name, "Amz-Sdk-") {
			return true
		}
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
	auth s3proto.Auth
	// who sent the request: nil if anonymous, or if the master has no keys.
	who    *auth.Key
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
	// A form is signed in its fields (see s3PostObject); a request without any
	// signature is anonymous, and may do what the bucket's policy lets anyone do.
	if m.keys != nil && !isPostUpload(r.Request) && hasCredentials(r.Request) {
		who, err := m.authenticate(r.Request, apiS3, func() (*auth.Key, error) {
			a, err := s3proto.VerifySigV4(r.Request, m.keys, time.Now())
			if err != nil {
				return nil, err
			}
			r.auth = a
			k, err := m.keys.Key(a.Access)
			return &k, err
		})
		if err != nil {
			return err
		}
		r.who = who
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
	op, err := m.route(r, q)
	if err != nil {
		return err
	}
	if op.action != "" {
		key := ""
		if op.object {
			key = r.key
		}
		if err := m.allowed(r, op.action, r.bucket, key); err != nil {
			return err
		}
	}
	return op.serve(m, w, r)
}

// s3Op is an S3 operation: the action it asks for (see package policy), of the object
// or of the bucket, and its handler. An empty action is checked by the handler itself
// (a copy's source, each key of a DeleteObjects).
type s3Op struct {
	action string
	object bool
	serve  func(*s3API, http.ResponseWriter, *s3Request) error
}

// route finds r's operation.
func (m *s3API) route(r *s3Request, q url.Values) (s3Op, error) {
	byMethod := func(get, put, del string) string {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return get
		case http.MethodDelete:
			return del
		}
		return put
	}
	switch {
	case r.bucket == "" && r.Method == http.MethodGet:
		return s3Op{serve: (*s3API).s3ListBuckets}, nil
	case r.bucket == "":
		return s3Op{}, s3proto.Errorf(s3proto.ErrMethodNotAllowed, "The service answers only GET (ListBuckets).")
	case r.key != "" && r.Method == http.MethodPost && onlyParams(q, []string{"uploads"}) && q.Has("uploads"):
		return s3Op{action: "s3:PutObject", object: true, serve: (*s3API).s3CreateMultipartUpload}, nil
	case r.key != "" && r.Method == http.MethodPut && onlyParams(q, []string{"partNumber", "uploadId"}) && q.Has("partNumber") && q.Has("uploadId"):
		return s3Op{action: "s3:PutObject", object: true, serve: (*s3API).s3UploadPart}, nil
	case r.key != "" && onlyParams(q, []string{"uploadId", "max-parts", "part-number-marker"}) && q.Has("uploadId"):
		switch r.Method {
		case http.MethodPost:
			return s3Op{action: "s3:PutObject", object: true, serve: (*s3API).s3CompleteMultipartUpload}, nil
		case http.MethodDelete:
			return s3Op{action: "s3:AbortMultipartUpload", object: true, serve: (*s3API).s3AbortMultipartUpload}, nil
		case http.MethodGet:
			return s3Op{action: "s3:ListMultipartUploadParts", object: true, serve: (*s3API).s3ListParts}, nil
		}
		return s3Op{}, s3proto.Errorf(s3proto.ErrMethodNotAllowed, "%s of a multipart upload is not allowed.", r.Method)
	case r.key != "" && r.Method == http.MethodGet && q.Has("attributes") && onlyParams(q, []string{"attributes", "versionId"}):
		return s3Op{action: "s3:GetObjectAttributes", object: true, serve: (*s3API).s3GetObjectAttributes}, nil
	case r.key != "" && q.Has("tagging") && onlyParams(q, []string{"tagging", "versionId"}):
		return s3Op{action: byMethod("s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObjectTagging"), object: true, serve: (*s3API).s3ObjectTagging}, nil
	case r.key != "" && r.Method == http.MethodHead && onlyParams(q, objectReadParams):
		return s3Op{action: "s3:GetObject", object: true, serve: (*s3API).s3HeadObject}, nil
	case r.key != "" && r.Method == http.MethodGet && onlyParams(q, objectReadParams):
		return s3Op{action: "s3:GetObject", object: true, serve: (*s3API).s3GetObject}, nil
	case r.key != "" && r.Method == http.MethodDelete && onlyParams(q, []string{"versionId"}):
		return s3Op{action: "s3:DeleteObject", object: true, serve: (*s3API).s3DeleteObject}, nil
	case r.key != "" && r.Method == http.MethodPut && !hasSubResource(q) && r.Header.Get("X-Amz-Copy-Source") != "":
		return s3Op{action: "s3:PutObject", object: true, serve: (*s3API).s3CopyObject}, nil
	case r.key != "" && r.Method == http.MethodPut && !hasSubResource(q):
		return s3Op{action: "s3:PutObject", object: true, serve: (*s3API).s3PutObject}, nil
	case r.key != "":
		return s3Op{}, s3proto.Errorf(s3proto.ErrNotImplemented, "%s of an object is not implemented yet.", r.Method)
	case r.Method == http.MethodGet && isListing(q):
		return s3Op{action: "s3:ListBucket", serve: (*s3API).s3ListObjects}, nil
	case r.Method == http.MethodPut && !hasSubResource(q):
		return s3Op{action: "s3:CreateBucket", serve: (*s3API).s3CreateBucket}, nil
	case r.Method == http.MethodHead && !hasSubResource(q):
		return s3Op{action: "s3:ListBucket", serve: (*s3API).s3HeadBucket}, nil
	case r.Method == http.MethodDelete && !hasSubResource(q):
		return s3Op{action: "s3:DeleteBucket", serve: (*s3API).s3DeleteBucket}, nil
	case r.Method == http.MethodPost && !hasSubResource(q) && isPostUpload(r.Request):
		return s3Op{serve: (*s3API).s3PostObject}, nil
	case r.Method == http.MethodPost && q.Has("delete"):
		return s3Op{serve: (*s3API).s3DeleteObjects}, nil
	case r.Method == http.MethodGet && q.Has("uploads") && onlyParams(q, []string{"uploads", "prefix", "delimiter", "key-marker", "upload-id-marker", "max-uploads", "encoding-type"}):
		return s3Op{action: "s3:ListBucketMultipartUploads", serve: (*s3API).s3ListMultipartUploads}, nil
	case r.Method == http.MethodGet && q.Has("versioning") && onlyParams(q, []string{"versioning"}):
		return s3Op{action: "s3:GetBucketVersioning", serve: (*s3API).s3GetBucketVersioning}, nil
	case r.Method == http.MethodGet && q.Has("versions") && onlyParams(q, []string{"versions", "prefix", "delimiter", "key-marker", "version-id-marker", "max-keys", "encoding-type"}):
		return s3Op{action: "s3:ListBucketVersions", serve: (*s3API).s3ListObjectVersions}, nil
	case q.Has("lifecycle") && onlyParams(q, []string{"lifecycle"}):
		return s3Op{action: byMethod("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:PutLifecycleConfiguration"), serve: (*s3API).s3BucketLifecycle}, nil
	case q.Has("policy") && onlyParams(q, []string{"policy"}):
		return s3Op{action: byMethod("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"), serve: (*s3API).s3BucketPolicy}, nil
	case r.Method == http.MethodGet && q.Has("location"):
		return s3Op{action: "s3:GetBucketLocation", serve: (*s3API).s3GetBucketLocation}, nil
	}
	return s3Op{}, s3proto.Errorf(s3proto.ErrNotImplemented, "%s of a bucket with ?%s is not implemented.", r.Method, r.URL.RawQuery)
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
