package main

// The versioning calls on davkv's unversioned buckets: GetBucketVersioning answers that
// versioning was never enabled, and ListObjectVersions lists each object as its one
// version, whose ID is "null", as S3 does for a bucket that never had versioning. Many
// tools call them before anything else.

import (
	"encoding/xml"
	"net/http"

	"davkv/internal/s3proto"
)

// versioningConfiguration is GetBucketVersioning's answer: no Status, for a bucket
// whose versioning was never enabled.
type versioningConfiguration struct {
	XMLName xml.Name `xml:"VersioningConfiguration"`
	Xmlns   string   `xml:"xmlns,attr"`
}

// listVersionsResult is ListObjectVersions' answer.
type listVersionsResult struct {
	XMLName             xml.Name `xml:"ListVersionsResult"`
	Xmlns               string   `xml:"xmlns,attr"`
	Name                string
	Prefix              string
	KeyMarker           string
	VersionIdMarker     string
	NextKeyMarker       string `xml:",omitempty"`
	NextVersionIdMarker string `xml:",omitempty"`
	MaxKeys             int
	Delimiter           string `xml:",omitempty"`
	EncodingType        string `xml:",omitempty"`
	IsTruncated         bool
	Versions            []s3VersionXML `xml:"Version"`
	CommonPrefixes      []s3PrefixXML
}

type s3VersionXML struct {
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
	ETag         string `xml:",omitempty"`
	Size         int64
	Owner        s3OwnerXML
	StorageClass string
}

// nullVersion is the version ID of every object: S3's for an object written while
// versioning was not enabled.
const nullVersion = "null"

// s3GetBucketVersioning answers that r's bucket has never had versioning.
func (m *s3API) s3GetBucketVersioning(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	return writeXML(w, r, versioningConfiguration{Xmlns: s3Namespace})
}

// s3ListObjectVersions lists r's bucket's objects as ListObjects does, each as its
// one, latest version "null". A page resumes after key-marker; the version-id-marker
// can only be "null", the one version of that key, which is listed already.
func (m *s3API) s3ListObjectVersions(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	q := r.URL.Query()
	maxKeys, urlEncode, err := listingLimits(q)
	if err != nil {
		return err
	}
	prefix, delimiter := q.Get("prefix"), q.Get("delimiter")
	res := listVersionsResult{Xmlns: s3Namespace, Name: r.bucket, Prefix: prefix, Delimiter: delimiter, MaxKeys: maxKeys,
		KeyMarker: q.Get("key-marker"), VersionIdMarker: q.Get("version-id-marker")}
	switch {
	case res.VersionIdMarker != "" && res.KeyMarker == "":
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "A version-id marker cannot be specified without a key marker.")
	case res.VersionIdMarker != "" && res.VersionIdMarker != nullVersion:
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "Invalid version id specified.")
	}
	start := prefix
	if res.KeyMarker != "" {
		start = max(start, listAfter(res.KeyMarker, delimiter))
	}
	var page s3ListPage
	if maxKeys > 0 {
		if page, err = m.listObjects(r.bucket, prefix, delimiter, start, maxKeys); err != nil {
			return err
		}
	}
	res.IsTruncated = page.next != ""
	if res.IsTruncated {
		res.NextKeyMarker, res.NextVersionIdMarker = page.last, nullVersion
	}
	for _, o := range page.objects {
		res.Versions = append(res.Versions, s3VersionXML{Key: o.Key, VersionId: nullVersion, IsLatest: true, LastModified: o.LastModified,
			ETag: o.ETag, Size: o.Size, Owner: s3Owner, StorageClass: o.StorageClass})
	}
	for _, p := range page.prefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, s3PrefixXML{Prefix: p})
	}
	if urlEncode {
		res.EncodingType = "url"
		encodeURL(&res.Prefix, &res.Delimiter, &res.KeyMarker, &res.NextKeyMarker)
		for i := range res.Versions {
			encodeURL(&res.Versions[i].Key)
		}
		encodePrefixes(res.CommonPrefixes)
	}
	return writeXML(w, r, res)
}
