package main

// How the master's own errors map to S3's (see s3proto for the codes and the XML
// body), and errors an operation has answered itself.

import (
	"errors"

	"davkv/internal/index"
	"davkv/internal/policy"
	"davkv/internal/s3proto"
)

// asS3Error maps any error of the master to the S3 error a client gets.
func asS3Error(err error) *s3proto.Error {
	var se *s3proto.Error
	if errors.As(err, &se) {
		return se
	}
	var code *s3proto.ErrorCode
	switch {
	case errors.As(err, &code):
		return &s3proto.Error{ErrorCode: code, Message: code.Code}
	case errors.Is(err, ErrAccessDenied), errors.Is(err, ErrNoCredentials):
		return &s3proto.Error{ErrorCode: s3proto.ErrAccessDenied, Message: "Access Denied", Err: err}
	case errors.Is(err, ErrTooManyFailures):
		return &s3proto.Error{ErrorCode: s3proto.ErrSlowDown, Message: "Too many failed authentications from your address; slow down.", Err: err}
	case errors.Is(err, policy.ErrMalformed):
		return &s3proto.Error{ErrorCode: s3proto.ErrMalformedPolicy, Message: err.Error(), Err: err}
	case errors.Is(err, index.ErrNotFound):
		return &s3proto.Error{ErrorCode: s3proto.ErrNoSuchKey, Message: "The specified key does not exist.", Err: err}
	case errors.Is(err, ErrBadDigest):
		return &s3proto.Error{ErrorCode: s3proto.ErrBadDigest, Message: "The Content-MD5 you specified did not match what we received.", Err: err}
	case errors.Is(err, ErrClientBody):
		return &s3proto.Error{ErrorCode: s3proto.ErrIncompleteBody, Message: "The body ended before its length, or could not be read.", Err: err}
	case errors.Is(err, ErrExists):
		return &s3proto.Error{ErrorCode: s3proto.ErrPreconditionFailed, Message: "The object exists.", Err: err}
	case errors.Is(err, ErrLocked), errors.Is(err, index.ErrConflict):
		return &s3proto.Error{ErrorCode: s3proto.ErrOperationAborted, Message: "A conflicting operation is in progress; try again.", Err: err}
	case errors.Is(err, ErrBadKey), errors.Is(err, ErrReservedKey), errors.Is(err, ErrBadRequest):
		return &s3proto.Error{ErrorCode: s3proto.ErrInvalidArgument, Message: "The request is not valid.", Err: err}
	case errors.Is(err, ErrNoVolumes):
		return &s3proto.Error{ErrorCode: s3proto.ErrServiceUnavailable, Message: "Not enough volumes are up.", Err: err}
	case errors.Is(err, ErrNoRoom):
		return &s3proto.Error{ErrorCode: s3proto.ErrServiceUnavailable, Message: "Not enough volumes have room.", Err: err}
	case errors.Is(err, index.ErrIndexDown):
		return &s3proto.Error{ErrorCode: s3proto.ErrServiceUnavailable, Message: "The index is unavailable; try again.", Err: err}
	case errors.As(err, new(*VolumeError)):
		return &s3proto.Error{ErrorCode: s3proto.ErrServiceUnavailable, Message: "A volume failed; try again.", Err: err}
	}
	return &s3proto.Error{ErrorCode: s3proto.ErrInternalError, Message: "We encountered an internal error. Please try again.", Err: err}
}

// answeredError is an error whose answer an operation has written itself (the error
// inside CompleteMultipartUpload's 200): serveS3 logs it and writes nothing more.
type answeredError struct{ error }

func (e answeredError) Unwrap() error { return e.error }
