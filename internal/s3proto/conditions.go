package s3proto

// Conditional requests (If-Match and its kin) and byte ranges, as S3 applies them.

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CheckConditions applies If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since, in RFC 9110's order, to an object with etag (quoted, or "") and
// modified. It returns PreconditionFailed, or whether to answer 304.
func CheckConditions(r *http.Request, etag string, modified time.Time) (notModified bool, err error) {
	failed := Errorf(ErrPreconditionFailed, "At least one of the preconditions you specified did not hold.")
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagMatches(im, etag) {
			return false, failed
		}
	} else if t, err := http.ParseTime(r.Header.Get("If-Unmodified-Since")); err == nil && modified.After(t) {
		return false, failed
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etagMatches(inm, etag), nil
	}
	if t, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !modified.After(t) {
		return true, nil
	}
	return false, nil
}

// etagMatches reports whether a list of entity tags (or "*") names etag.
func etagMatches(list, etag string) bool {
	if etag == "" {
		return false
	}
	for tag := range strings.SplitSeq(list, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || strings.Trim(tag, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// WriteCondition is the precondition of a conditional write (PutObject, CopyObject's
// destination, CompleteMultipartUpload), as S3 has it: the key must have no value
// (If-None-Match: *), or one whose ETag If-Match names, or none that If-None-Match
// names (as RFC 9110 has it, and Ceph's S3; AWS documents only *).
type WriteCondition struct {
	IfNoneMatch string // the entity tags of If-None-Match, or * (the key has no value), or ""
	IfMatch     string // the entity tags of If-Match, or ""
}

// ParseWriteCondition reads the precondition of a write from h.
func ParseWriteCondition(h http.Header) WriteCondition {
	return WriteCondition{IfNoneMatch: h.Get("If-None-Match"), IfMatch: h.Get("If-Match")}
}

// ErrConditionalConflict is S3's answer to a conditional write whose precondition held
// when it began but not when it was to take effect: another write of the key came
// between.
var ErrConditionalConflict = &ErrorCode{"ConditionalRequestConflict", http.StatusConflict}

// Check returns nil if a key whose value exists (with etag, quoted) or not meets c:
// else PreconditionFailed, or NoSuchKey for If-Match on a key without a value.
func (c WriteCondition) Check(exists bool, etag string) error {
	switch {
	case c.IfNoneMatch == "*" && exists:
		return Errorf(ErrPreconditionFailed, "The object exists, and If-None-Match: * was given.")
	case c.IfNoneMatch != "" && exists && etagMatches(c.IfNoneMatch, etag):
		return Errorf(ErrPreconditionFailed, "The object's ETag is one that If-None-Match names.")
	case c.IfMatch != "" && !exists:
		return Errorf(ErrNoSuchKey, "The specified key does not exist (If-Match was given).")
	case c.IfMatch != "" && !etagMatches(c.IfMatch, etag):
		return Errorf(ErrPreconditionFailed, "The object's ETag is not one that If-Match names.")
	}
	return nil
}

// ParseRange reads a Range header for a value of size bytes: a single range, as S3
// serves. It returns the bytes to send (all of them unless ranged), or InvalidRange
// for a range that starts past the end. A header that is not a single byte range is
// ignored, as RFC 9110 allows.
func ParseRange(header string, size int64) (off, n int64, ranged bool, err error) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	invalid := Errorf(ErrInvalidRange, "The requested range is not satisfiable.")
	if first == "" { // the last N bytes
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k < 0 {
			return 0, size, false, nil
		}
		if k == 0 {
			return 0, 0, false, invalid
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, size, false, nil
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return 0, size, false, nil
		}
		end = min(end, size-1)
	}
	if start >= size {
		return 0, 0, false, invalid
	}
	return start, end - start + 1, true, nil
}
