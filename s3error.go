package main

// The S3 API's errors: their codes and statuses, how the master's own errors map to
// them, and the one XML body every S3 error answer has.

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"davkv/internal/index"
)

// S3Code is an S3 error code with the status S3 answers it with.
type S3Code struct {
	Code   string
	Status int
}

// The S3 error codes davkv answers with.
var (
	ErrS3AccessDenied          = &S3Code{"AccessDenied", http.StatusForbidden}
	ErrS3InvalidAccessKeyID    = &S3Code{"InvalidAccessKeyId", http.StatusForbidden}
	ErrS3SignatureMismatch     = &S3Code{"SignatureDoesNotMatch", http.StatusForbidden}
	ErrS3TimeSkewed            = &S3Code{"RequestTimeTooSkewed", http.StatusForbidden}
	ErrS3AuthMalformed         = &S3Code{"AuthorizationHeaderMalformed", http.StatusBadRequest}
	ErrS3InvalidRequest        = &S3Code{"InvalidRequest", http.StatusBadRequest}
	ErrS3InvalidArgument       = &S3Code{"InvalidArgument", http.StatusBadRequest}
	ErrS3InvalidBucketName     = &S3Code{"InvalidBucketName", http.StatusBadRequest}
	ErrS3ContentSHA256Mismatch = &S3Code{"XAmzContentSHA256Mismatch", http.StatusBadRequest}
	ErrS3NoSuchBucket          = &S3Code{"NoSuchBucket", http.StatusNotFound}
	ErrS3NoSuchKey             = &S3Code{"NoSuchKey", http.StatusNotFound}
	ErrS3NoSuchUpload          = &S3Code{"NoSuchUpload", http.StatusNotFound}
	ErrS3InvalidPart           = &S3Code{"InvalidPart", http.StatusBadRequest}
	ErrS3InvalidPartOrder      = &S3Code{"InvalidPartOrder", http.StatusBadRequest}
	ErrS3EntityTooSmall        = &S3Code{"EntityTooSmall", http.StatusBadRequest}
	ErrS3BucketNotEmpty        = &S3Code{"BucketNotEmpty", http.StatusConflict}
	ErrS3BucketOwned           = &S3Code{"BucketAlreadyOwnedByYou", http.StatusConflict}
	ErrS3OperationAborted      = &S3Code{"OperationAborted", http.StatusConflict}
	ErrS3BadDigest             = &S3Code{"BadDigest", http.StatusBadRequest}
	ErrS3MalformedXML          = &S3Code{"MalformedXML", http.StatusBadRequest}
	ErrS3InvalidDigest         = &S3Code{"InvalidDigest", http.StatusBadRequest}
	ErrS3IncompleteBody        = &S3Code{"IncompleteBody", http.StatusBadRequest}
	ErrS3MissingContentLength  = &S3Code{"MissingContentLength", http.StatusLengthRequired}
	ErrS3MetadataTooLarge      = &S3Code{"MetadataTooLarge", http.StatusBadRequest}
	ErrS3MethodNotAllowed      = &S3Code{"MethodNotAllowed", http.StatusMethodNotAllowed}
	ErrS3PreconditionFailed    = &S3Code{"PreconditionFailed", http.StatusPreconditionFailed}
	ErrS3InvalidRange          = &S3Code{"InvalidRange", http.StatusRequestedRangeNotSatisfiable}
	ErrS3NotImplemented        = &S3Code{"NotImplemented", http.StatusNotImplemented}
	ErrS3ServiceUnavailable    = &S3Code{"ServiceUnavailable", http.StatusServiceUnavailable}
	ErrS3InternalError         = &S3Code{"InternalError", http.StatusInternalServerError}
)

func (c *S3Code) Error() string { return c.Code }

// S3Error is an S3 error answer: its code and a message for people.
type S3Error struct {
	*S3Code
	Message string
	// Err is the cause, when the error stands for one of the master's own.
	Err error
}

func (e *S3Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap lets errors.Is find both the code and the cause.
func (e *S3Error) Unwrap() []error { return []error{e.S3Code, e.Err} }

// s3Errorf returns an S3Error with code and a formatted message.
func s3Errorf(code *S3Code, format string, args ...any) *S3Error {
	return &S3Error{S3Code: code, Message: fmt.Sprintf(format, args...)}
}

// asS3Error maps any error of the master to the S3 error a client gets.
func asS3Error(err error) *S3Error {
	var se *S3Error
	if errors.As(err, &se) {
		return se
	}
	var code *S3Code
	switch {
	case errors.As(err, &code):
		return &S3Error{S3Code: code, Message: code.Code}
	case errors.Is(err, index.ErrNotFound):
		return &S3Error{S3Code: ErrS3NoSuchKey, Message: "The specified key does not exist.", Err: err}
	case errors.Is(err, ErrBadDigest):
		return &S3Error{S3Code: ErrS3BadDigest, Message: "The Content-MD5 you specified did not match what we received.", Err: err}
	case errors.Is(err, ErrClientBody):
		return &S3Error{S3Code: ErrS3IncompleteBody, Message: "The body ended before its length, or could not be read.", Err: err}
	case errors.Is(err, ErrExists):
		return &S3Error{S3Code: ErrS3PreconditionFailed, Message: "The object exists, and If-None-Match: * was given.", Err: err}
	case errors.Is(err, ErrLocked), errors.Is(err, index.ErrConflict):
		return &S3Error{S3Code: ErrS3OperationAborted, Message: "A conflicting operation is in progress; try again.", Err: err}
	case errors.Is(err, ErrBadKey), errors.Is(err, ErrReservedKey), errors.Is(err, ErrBadRequest):
		return &S3Error{S3Code: ErrS3InvalidArgument, Message: "The request is not valid.", Err: err}
	case errors.Is(err, ErrNoVolumes):
		return &S3Error{S3Code: ErrS3ServiceUnavailable, Message: "Not enough volumes are up.", Err: err}
	case errors.Is(err, ErrNoRoom):
		return &S3Error{S3Code: ErrS3ServiceUnavailable, Message: "Not enough volumes have room.", Err: err}
	case errors.Is(err, index.ErrIndexDown):
		return &S3Error{S3Code: ErrS3ServiceUnavailable, Message: "The index is unavailable; try again.", Err: err}
	case errors.As(err, new(*VolumeError)):
		return &S3Error{S3Code: ErrS3ServiceUnavailable, Message: "A volume failed; try again.", Err: err}
	}
	return &S3Error{S3Code: ErrS3InternalError, Message: "We encountered an internal error. Please try again.", Err: err}
}

// s3ErrorBody is the XML of an S3 error answer.
type s3ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// writeS3Error answers err as S3 does: its status and, but for HEAD, the XML body.
// serveS3 has set the X-Amz-Request-Id header already.
func writeS3Error(w http.ResponseWriter, r *http.Request, se *S3Error, requestID string) {
	h := w.Header()
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(se.Status)
		return
	}
	b := append([]byte(xml.Header), s3ErrorXML(se, r.URL.Path, requestID)...)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(se.Status)
	w.Write(b)
}

// s3ErrorXML is the XML body of an S3 error answer, without the XML declaration.
func s3ErrorXML(se *S3Error, resource, requestID string) []byte {
	b, err := xml.Marshal(s3ErrorBody{Code: se.Code, Message: se.Message, Resource: resource, RequestID: requestID})
	if err != nil {
		panic("impossible: an S3 error body does not encode: " + err.Error())
	}
	return b
}

// answeredError is an error whose answer an operation has written itself (the error
// inside CompleteMultipartUpload's 200): serveS3 logs it and writes nothing more.
type answeredError struct{ error }

func (e answeredError) Unwrap() error { return e.error }
