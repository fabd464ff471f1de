package main

// S3 checksums kept with objects and parts (x-amz-checksum-*): what a body read whole
// had, a multipart upload's algorithm and the composite or full-object checksum it
// makes, and how answers carry them, in headers and in XML.

import (
	"net/http"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// The checksum types of S3: of the whole value, or (multipart) of its parts' checksums.
const (
	fullObject = "FULL_OBJECT"
	composite  = "COMPOSITE"
)

// bodyChecksum is the full-object checksum of a body read whole through checks: of
// algorithm alg, or if alg is empty the one its client sent; zero if there is none.
func bodyChecksum(checks []*s3proto.BodyCheck, alg string) index.Checksum {
	a, v := s3proto.BodyChecksum(checks, alg)
	if v == "" {
		return index.Checksum{}
	}
	return index.Checksum{Algorithm: a, Value: v, Type: fullObject}
}

// writeChecksum sets c's headers on an answer, if c is a checksum.
func writeChecksum(h http.Header, c index.Checksum) {
	if c.Value == "" {
		return
	}
	h.Set(s3proto.ChecksumHeader(c.Algorithm), c.Value)
	if c.Type != "" {
		h.Set("X-Amz-Checksum-Type", c.Type)
	}
}

// uploadChecksum reads the checksum algorithm and type of a CreateMultipartUpload: a
// composite checksum by default, a full-object one for CRC64NVME, which has no other,
// or when x-amz-checksum-type asks (CRC32, CRC32C).
func uploadChecksum(h http.Header) (index.Checksum, error) {
	name := h.Get("X-Amz-Checksum-Algorithm")
	if name == "" {
		if h.Get("X-Amz-Checksum-Type") != "" {
			return index.Checksum{}, s3proto.Errorf(s3proto.ErrInvalidRequest, "x-amz-checksum-type needs x-amz-checksum-algorithm.")
		}
		return index.Checksum{}, nil
	}
	alg, err := s3proto.ChecksumAlgorithm(name)
	if err != nil {
		return index.Checksum{}, err
	}
	c := index.Checksum{Algorithm: alg, Type: h.Get("X-Amz-Checksum-Type")}
	switch {
	case c.Type == "" && alg == "CRC64NVME":
		c.Type = fullObject
	case c.Type == "":
		c.Type = composite
	case c.Type != fullObject && c.Type != composite:
		return c, s3proto.Errorf(s3proto.ErrInvalidRequest, "x-amz-checksum-type must be FULL_OBJECT or COMPOSITE.")
	case c.Type == fullObject && (alg == "SHA1" || alg == "SHA256"):
		return c, s3proto.Errorf(s3proto.ErrInvalidRequest, "The FULL_OBJECT checksum type cannot be used with the %s algorithm.", alg)
	case c.Type == composite && alg == "CRC64NVME":
		return c, s3proto.Errorf(s3proto.ErrInvalidRequest, "The COMPOSITE checksum type cannot be used with the CRC64NVME algorithm.")
	}
	return c, nil
}

// checksumXML is a checksum as S3's XML answers carry it (CompleteMultipartUpload,
// CopyObject, ListParts, GetObjectAttributes): one element named by its algorithm.
type checksumXML struct {
	ChecksumCRC32     string `xml:",omitempty"`
	ChecksumCRC32C    string `xml:",omitempty"`
	ChecksumCRC64NVME string `xml:",omitempty"`
	ChecksumSHA1      string `xml:",omitempty"`
	ChecksumSHA256    string `xml:",omitempty"`
	ChecksumType      string `xml:",omitempty"`
}

// checksumFields is c as XML; withType adds its type.
func checksumFields(c index.Checksum, withType bool) checksumXML {
	var x checksumXML
	switch c.Algorithm {
	case "CRC32":
		x.ChecksumCRC32 = c.Value
	case "CRC32C":
		x.ChecksumCRC32C = c.Value
	case "CRC64NVME":
		x.ChecksumCRC64NVME = c.Value
	case "SHA1":
		x.ChecksumSHA1 = c.Value
	case "SHA256":
		x.ChecksumSHA256 = c.Value
	}
	if withType && c.Value != "" {
		x.ChecksumType = c.Type
	}
	return x
}

// value is the checksum of algorithm alg in x, or "".
func (x checksumXML) value(alg string) string {
	switch alg {
	case "CRC32":
		return x.ChecksumCRC32
	case "CRC32C":
		return x.ChecksumCRC32C
	case "CRC64NVME":
		return x.ChecksumCRC64NVME
	case "SHA1":
		return x.ChecksumSHA1
	case "SHA256":
		return x.ChecksumSHA256
	}
	return ""
}
