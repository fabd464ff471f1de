package main

// GetObjectAttributes: what S3 clients ask of an object without reading it (its ETag,
// checksum, parts, storage class, size), from the index alone.

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// objectAttributes is GetObjectAttributes' answer: the attributes asked for.
type objectAttributes struct {
	XMLName      xml.Name     `xml:"GetObjectAttributesResponse"`
	Xmlns        string       `xml:"xmlns,attr"`
	ETag         string       `xml:",omitempty"`
	Checksum     *checksumXML `xml:",omitempty"`
	ObjectParts  *objectPartsXML
	StorageClass string `xml:",omitempty"`
	ObjectSize   *int64 `xml:",omitempty"`
}

type objectPartsXML struct {
	TotalPartsCount      int `xml:"PartsCount"`
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	Parts                []objectPartXML `xml:"Part"`
}

type objectPartXML struct {
	PartNumber int
	Size       int64
	checksumXML
}

// objectAttributeNames are the attributes x-amz-object-attributes may ask for.
var objectAttributeNames = []string{"ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"}

// s3GetObjectAttributes answers the attributes of r's object that its
// x-amz-object-attributes names; ObjectParts is paged by x-amz-max-parts (1000 at
// most) after x-amz-part-number-marker, and only a multipart upload's object has parts.
func (m *s3API) s3GetObjectAttributes(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.ObjectRead); err != nil {
		return err
	}
	var asked []string
	for _, v := range r.Header.Values("X-Amz-Object-Attributes") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				asked = append(asked, name)
			}
		}
	}
	if len(asked) == 0 {
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "x-amz-object-attributes must name at least one of %s.", strings.Join(objectAttributeNames, ", "))
	}
	for _, name := range asked {
		if !slices.Contains(objectAttributeNames, name) {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "Invalid attribute name specified: %s.", name)
		}
	}
	limit, marker, err := partsPage(r.Header.Get("X-Amz-Max-Parts"), r.Header.Get("X-Amz-Part-Number-Marker"), "x-amz-max-parts", "x-amz-part-number-marker")
	if err != nil {
		return err
	}
	_, rec, err := m.liveObject(r)
	if err != nil {
		return err
	}
	res := objectAttributes{Xmlns: s3Namespace}
	for _, name := range asked {
		switch name {
		case "ETag":
			res.ETag = strings.Trim(objectETag(rec), `"`)
		case "Checksum":
			if rec.Checksum.Value != "" {
				c := checksumFields(rec.Checksum, true)
				res.Checksum = &c
			}
		case "ObjectParts":
			if len(rec.Parts) == 0 {
				continue
			}
			parts := &objectPartsXML{TotalPartsCount: len(rec.Parts), PartNumberMarker: marker, MaxParts: limit}
			for i, p := range rec.Parts {
				n := i + 1
				if n <= marker {
					continue
				}
				if len(parts.Parts) == limit {
					parts.IsTruncated = true
					break
				}
				parts.Parts = append(parts.Parts, objectPartXML{PartNumber: n, Size: p.Size,
					checksumXML: checksumFields(index.Checksum{Algorithm: rec.Checksum.Algorithm, Value: p.Checksum}, false)})
				parts.NextPartNumberMarker = n
			}
			res.ObjectParts = parts
		case "StorageClass":
			res.StorageClass = "STANDARD"
		case "ObjectSize":
			res.ObjectSize = &rec.Size
		}
	}
	w.Header().Set("Last-Modified", time.Unix(0, rec.Modified).UTC().Format(http.TimeFormat))
	return writeXML(w, r, res)
}
