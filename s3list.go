package main

// The S3 listings of a bucket's objects, ListObjectsV2 and ListObjects (V1): pages in key
// order, with a prefix, and a delimiter that rolls keys up into common prefixes, each of
// which costs one seek in the index however many keys it holds.

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// maxS3ListKeys is the most keys and common prefixes one listing page holds, and the
// default: S3's.
const maxS3ListKeys = 1000

// listBucketResult is the answer to both listings; the fields of the other version
// stay empty and are not written.
type listBucketResult struct {
	XMLName        string `xml:"ListBucketResult"`
	Xmlns          string `xml:"xmlns,attr"`
	Name           string
	Prefix         string
	Delimiter      string `xml:",omitempty"`
	MaxKeys        int
	EncodingType   string `xml:",omitempty"`
	IsTruncated    bool
	Contents       []s3ObjectXML
	CommonPrefixes []s3PrefixXML
	// V2
	KeyCount              *int    `xml:",omitempty"`
	StartAfter            string  `xml:",omitempty"`
	ContinuationToken     *string `xml:",omitempty"` // echoed when asked with, even empty
	NextContinuationToken string  `xml:",omitempty"`
	// V1
	Marker     *string `xml:",omitempty"`
	NextMarker string  `xml:",omitempty"`
}

type s3ObjectXML struct {
	Key          string
	LastModified string
	ETag         string `xml:",omitempty"`
	Size         int64
	StorageClass string
	// Owner is listed by V1 always, by V2 with fetch-owner=true.
	Owner *s3OwnerXML `xml:",omitempty"`
}

type s3PrefixXML struct {
	Prefix string
}

// s3ListPage is one page of a listing: its objects and common prefixes, in key order,
// and where the next page starts ("" at the end).
type s3ListPage struct {
	objects  []s3ObjectXML
	prefixes []string
	next     string // the bucket-relative key the next page starts at
	last     string // the last key or common prefix of this page
}

// listObjects reads one page of bucket's live keys that start with prefix, from start
// on (bucket-relative), at most limit entries.
func (m *s3API) listObjects(bucket, prefix, delimiter, start string, limit int) (s3ListPage, error) {
	var page s3ListPage
	root := "/" + bucket + "/"
	entries, next, err := m.listDelimited(root, prefix, delimiter, start, limit)
	if err != nil {
		return page, err
	}
	for _, e := range entries {
		if e.Prefix {
			page.prefixes = append(page.prefixes, e.Name)
		} else {
			page.objects = append(page.objects, s3ObjectXML{Key: e.Name, LastModified: s3Time(e.Rec.Modified), ETag: objectETag(e.Rec), Size: e.Rec.Size, StorageClass: "STANDARD"})
		}
		page.last = e.Name
	}
	page.next = next
	return page, nil
}

// listingLimits reads the max-keys (S3's default and bound: maxS3ListKeys) and
// encoding-type of a listing.
func listingLimits(q url.Values) (maxKeys int, urlEncode bool, err error) {
	maxKeys = maxS3ListKeys
	if s := q.Get("max-keys"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, false, s3proto.Errorf(s3proto.ErrInvalidArgument, "max-keys must be a number from 0 to %d.", maxS3ListKeys)
		}
		maxKeys = min(n, maxS3ListKeys)
	}
	switch q.Get("encoding-type") {
	case "":
	case "url":
		urlEncode = true
	default:
		return 0, false, s3proto.Errorf(s3proto.ErrInvalidArgument, "encoding-type must be url.")
	}
	return maxKeys, urlEncode, nil
}

// listAfter is where a listing that resumes after marker starts: after every key a
// common prefix rolls up, if marker is one.
func listAfter(marker, delimiter string) string {
	if delimiter != "" && strings.HasSuffix(marker, delimiter) {
		return index.PrefixEnd(marker)
	}
	return marker + "\x00"
}

// s3ListObjects answers ListObjectsV2 (?list-type=2) and ListObjects (V1).
func (m *s3API) s3ListObjects(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	q := r.URL.Query()
	v2 := q.Get("list-type") == "2"
	maxKeys, urlEncode, err := listingLimits(q)
	if err != nil {
		return err
	}
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	res := listBucketResult{Xmlns: s3Namespace, Name: r.bucket, Prefix: prefix, Delimiter: delimiter, MaxKeys: maxKeys}
	// Where the page starts: after a marker or start-after, or at a continuation
	// token, which is the key the last page stopped before.
	start := ""
	if v2 {
		res.StartAfter = q.Get("start-after")
		if res.StartAfter != "" {
			start = listAfter(res.StartAfter, delimiter)
		}
		if q.Has("continuation-token") {
			token := q.Get("continuation-token")
			res.ContinuationToken = &token
			b, err := base64.RawURLEncoding.DecodeString(token)
			if err != nil {
				return s3proto.Errorf(s3proto.ErrInvalidArgument, "The continuation token is not one davkv gave.")
			}
			start = max(start, string(b))
		}
	} else {
		marker := q.Get("marker")
		res.Marker = &marker
		if marker != "" {
			start = listAfter(marker, delimiter)
		}
	}
	if start < prefix {
		start = prefix
	}
	var page s3ListPage
	if maxKeys > 0 {
		if page, err = m.listObjects(r.bucket, prefix, delimiter, start, maxKeys); err != nil {
			return err
		}
	}
	res.IsTruncated = page.next != ""
	res.Contents, res.CommonPrefixes = page.objects, make([]s3PrefixXML, len(page.prefixes))
	if !v2 || q.Get("fetch-owner") == "true" {
		owner := s3Owner
		for i := range res.Contents {
			res.Contents[i].Owner = &owner
		}
	}
	for i, p := range page.prefixes {
		res.CommonPrefixes[i] = s3PrefixXML{Prefix: p}
	}
	if v2 {
		n := len(page.objects) + len(page.prefixes)
		res.KeyCount = &n
		if res.IsTruncated {
			res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(page.next))
		}
	} else if res.IsTruncated && delimiter != "" {
		res.NextMarker = page.last
	}
	if urlEncode {
		res.EncodingType = "url"
		// What S3 encodes, and so what clients decode: V1 leaves its Prefix as it is.
		if v2 {
			encodeURL(&res.Prefix)
		}
		encodeURL(&res.Delimiter, &res.StartAfter, &res.NextMarker)
		if res.Marker != nil {
			marker := *res.Marker
			encodeURL(&marker)
			res.Marker = &marker
		}
		for i := range res.Contents {
			encodeURL(&res.Contents[i].Key)
		}
		encodePrefixes(res.CommonPrefixes)
	}
	return writeXML(w, r, res)
}

// encodeURL encodes each of fields in place, as a listing's encoding-type=url asks.
func encodeURL(fields ...*string) {
	for _, f := range fields {
		*f = s3proto.URIEncode(*f, false)
	}
}

// encodePrefixes encodes common prefixes in place, as encodeURL does.
func encodePrefixes(prefixes []s3PrefixXML) {
	for i := range prefixes {
		encodeURL(&prefixes[i].Prefix)
	}
}
