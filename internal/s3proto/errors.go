package s3proto

// S3's errors: their codes and statuses, and the one XML body every S3 error answer has.

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

// The S3 error codes davkv answers with.
var (
	ErrAccessDenied          = &ErrorCode{"AccessDenied", http.StatusForbidden}
	ErrInvalidAccessKeyID    = &ErrorCode{"InvalidAccessKeyId", http.StatusForbidden}
	ErrSignatureMismatch     = &ErrorCode{"SignatureDoesNotMatch", http.StatusForbidden}
	ErrTimeSkewed            = &ErrorCode{"RequestTimeTooSkewed", http.StatusForbidden}
	ErrAuthMalformed         = &ErrorCode{"AuthorizationHeaderMalformed", http.StatusBadRequest}
	ErrInvalidRequest        = &ErrorCode{"InvalidRequest", http.StatusBadRequest}
	ErrInvalidArgument       = &ErrorCode{"InvalidArgument", http.StatusBadRequest}
	ErrInvalidBucketName     = &ErrorCode{"InvalidBucketName", http.StatusBadRequest}
	ErrContentSHA256Mismatch = &ErrorCode{"XAmzContentSHA256Mismatch", http.StatusBadRequest}
	ErrNoSuchBucket          = &ErrorCode{"NoSuchBucket", http.StatusNotFound}
	ErrNoSuchKey             = &ErrorCode{"NoSuchKey", http.StatusNotFound}
	ErrNoSuchUpload          = &ErrorCode{"NoSuchUpload", http.StatusNotFound}
	ErrInvalidPart           = &ErrorCode{"InvalidPart", http.StatusBadRequest}
	ErrInvalidPartOrder      = &ErrorCode{"InvalidPartOrder", http.StatusBadRequest}
	ErrEntityTooSmall        = &ErrorCode{"EntityTooSmall", http.StatusBadRequest}
	ErrBucketNotEmpty        = &ErrorCode{"BucketNotEmpty", http.StatusConflict}
	ErrBucketOwned           = &ErrorCode{"BucketAlreadyOwnedByYou", http.StatusConflict}
	ErrOperationAborted      = &ErrorCode{"OperationAborted", http.StatusConflict}
	ErrBadDigest             = &ErrorCode{"BadDigest", http.StatusBadRequest}
	ErrMalformedXML          = &ErrorCode{"MalformedXML", http.StatusBadRequest}
	ErrInvalidDigest         = &ErrorCode{"InvalidDigest", http.StatusBadRequest}
	ErrIncompleteBody        = &ErrorCode{"IncompleteBody", http.StatusBadRequest}
	ErrMissingContentLength  = &ErrorCode{"MissingContentLength", http.StatusLengthRequired}
	ErrMetadataTooLarge      = &ErrorCode{"MetadataTooLarge", http.StatusBadRequest}
	ErrMethodNotAllowed      = &ErrorCode{"MethodNotAllowed", http.StatusMethodNotAllowed}
	ErrPreconditionFailed    = &ErrorCode{"PreconditionFailed", http.StatusPreconditionFailed}
	ErrInvalidRange          = &ErrorCode{"InvalidRange", http.StatusRequestedRangeNotSatisfiable}
	ErrInvalidPartNumber     = &ErrorCode{"InvalidPartNumber", http.StatusRequestedRangeNotSatisfiable}
	ErrNotImplemented        = &ErrorCode{"NotImplemented", http.StatusNotImplemented}
	ErrServiceUnavailable    = &ErrorCode{"ServiceUnavailable", http.StatusServiceUnavailable}
	ErrSlowDown              = &ErrorCode{"SlowDown", http.StatusServiceUnavailable}
	ErrMalformedPolicy       = &ErrorCode{"MalformedPolicy", http.StatusBadRequest}
	ErrNoSuchBucketPolicy    = &ErrorCode{"NoSuchBucketPolicy", http.StatusNotFound}
	ErrInternalError         = &ErrorCode{"InternalError", http.StatusInternalServerError}
)

// ErrorCode is an S3 error code with the status S3 answers it with.
type ErrorCode struct {
	Code   string
	Status int
}

func (c *ErrorCode) Error() string { return c.Code }

// Error is an S3 error answer: its code and a message for people.
type Error struct {
	*ErrorCode
	Message string
	// Err is the cause, when the error stands for one of the master's own.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap lets errors.Is find both the code and the cause.
func (e *Error) Unwrap() []error { return []error{e.ErrorCode, e.Err} }

// Errorf returns an Error with code and a formatted message.
func Errorf(code *ErrorCode, format string, args ...any) *Error {
	return &Error{ErrorCode: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorBody is the XML of an S3 error answer.
type ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// WriteError answers err as S3 does: its status and, but for HEAD, the XML body.
// serveS3 has set the X-Amz-Request-Id header already.
func WriteError(w http.ResponseWriter, r *http.Request, se *Error, requestID string) {
	h := w.Header()
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(se.Status)
		return
	}
	b := append([]byte(xml.Header), ErrorXML(se, r.URL.Path, requestID)...)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(se.Status)
	w.Write(b)
}

// ErrorXML is the XML body of an S3 error answer, without the XML declaration.
func ErrorXML(se *Error, resource, requestID string) []byte {
	b, err := xml.Marshal(ErrorBody{Code: se.Code, Message: se.Message, Resource: resource, RequestID: requestID})
	if err != nil {
		panic("impossible: an S3 error body does not encode: " + err.Error())
	}
	return b
}
