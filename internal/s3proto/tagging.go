package s3proto

// Object tags as S3 takes them: in the x-amz-tagging header (URL query form) or as a
// Tagging XML document, within S3's limits.

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// S3's limits on an object's tags.
const (
	MaxTags        = 10
	MaxTagKeyLen   = 128 // Unicode characters
	MaxTagValueLen = 256
)

// ErrInvalidTag is S3's answer to tags that break its rules.
var ErrInvalidTag = &ErrorCode{"InvalidTag", http.StatusBadRequest}

// Tag is one object tag.
type Tag struct {
	Key   string
	Value string
}

// Tagging is the XML of PutObjectTagging's body and GetObjectTagging's answer.
type Tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	TagSet  []Tag    `xml:"TagSet>Tag"`
}

// ParseTagHeader reads the tags of an x-amz-tagging header: key=value pairs joined by
// & and URL-encoded, as a query is; "" has none. They are checked (see CheckTags).
func ParseTagHeader(s string) ([]Tag, error) {
	if s == "" {
		return nil, nil
	}
	var tags []Tag
	for pair := range strings.SplitSeq(s, "&") {
		k, v, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(k)
		value, verr := url.QueryUnescape(v)
		if kerr != nil || verr != nil {
			return nil, Errorf(ErrInvalidArgument, "The x-amz-tagging header is not URL-encoded key=value pairs.")
		}
		tags = append(tags, Tag{Key: key, Value: value})
	}
	return tags, CheckTags(tags)
}

// ParseTagging reads a Tagging XML document and checks its tags.
func ParseTagging(body []byte) ([]Tag, error) {
	var t Tagging
	if err := xml.Unmarshal(body, &t); err != nil {
		return nil, Errorf(ErrMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	return t.TagSet, CheckTags(t.TagSet)
}

// CheckTags checks tags against S3's rules: at most MaxTags, keys not empty, unique and
// at most MaxTagKeyLen characters, values at most MaxTagValueLen.
func CheckTags(tags []Tag) error {
	if len(tags) > MaxTags {
		return Errorf(ErrInvalidTag, "Object tags cannot be greater than %d.", MaxTags)
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > MaxTagKeyLen:
			return Errorf(ErrInvalidTag, "The TagKey you have provided is invalid: from 1 to %d characters.", MaxTagKeyLen)
		case utf8.RuneCountInString(t.Value) > MaxTagValueLen:
			return Errorf(ErrInvalidTag, "The TagValue you have provided is too long: at most %d characters.", MaxTagValueLen)
		case seen[t.Key]:
			return Errorf(ErrInvalidTag, "Cannot provide multiple Tags with the same key.")
		}
		seen[t.Key] = true
	}
	return nil
}
