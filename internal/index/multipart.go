package index

// An S3 multipart upload as the index keeps it: the upload (an entry of UploadSpace)
// and each of its parts (entries of PartSpace), with their versioned encodings, and
// where a part's file lives on a volume.

import (
	"encoding/binary"
	"fmt"
)

// The index's entry spaces for multipart uploads: an upload under its ID, a part
// under PartName.
const (
	UploadSpace = "upload"
	PartSpace   = "part"
)

// MultipartUpload is an upload in progress: the object it will be, and the headers the
// object will have.
type MultipartUpload struct {
	Bucket, Key string // Key is the object's key within Bucket
	// Created is when the upload began, in Unix nanoseconds: an upload older than the
	// master's -upload-grace is abandoned, and removed.
	Created int64
	// Completing says CompleteMultipartUpload has begun: no part may change any more.
	Completing bool
	Meta       []MetaHeader
	Tags       []Tag // the object's tags (x-amz-tagging)
	// Checksum is the algorithm (x-amz-checksum-algorithm) every part is checked and
	// summed with, and the type of the object's checksum; zero for none.
	Checksum Checksum
}

// UploadPart is one part number of an upload: the part stored last (if Done), its own
// file on each of Volumes (see layout.PartPath), and the uploads of it still in
// flight (Writes), each to files of its own. Several uploads of one part number may
// stream at once; the one that finishes last is the part, as in S3.
type UploadPart struct {
	// Token names this upload of the part's file, so that a part uploaded again never
	// writes over the file a completion may be reading.
	Token string
	// Done says a part is stored; without it Token, Volumes and the rest are empty and
	// only Writes are in flight.
	Done bool
	Size int64
	MD5  string // hex
	// Checksum is the part's checksum, base64, of its upload's algorithm (or the one
	// the client sent, if the upload has none), with its algorithm.
	Checksum Checksum
	Created  int64
	// Volumes hold the part; Leftovers may hold it (a write gave up on them) and are
	// only cleaned.
	Volumes, Leftovers []string
	// Writes are the uploads of this part number in flight, and replaced parts whose
	// files are still to delete: what a crash leaves here is cleaned with the upload.
	Writes []PartWrite
}

// PartWrite is one upload of a part's file: its token and every volume it may touch.
type PartWrite struct {
	Token   string
	Volumes []string
}

// PartName is the entry name of part n of upload id: names sort by part number.
func PartName(id string, n int) string { return fmt.Sprintf("%s/%05d", id, n) }

// uploadVersion and partVersion are the first byte of an encoded MultipartUpload and
// UploadPart; a change to an encoding gets a new version, and the decoders keep
// reading the old. Uploads and parts of version 1 had no Tags and no Checksum; parts
// before version 3 had no Writes, and one not Done was the one write in flight.
const (
	uploadVersion = 2
	partVersion   = 3
)

// MarshalBinary encodes u: the version byte, Bucket and Key as strings, Created as a
// varint, Completing as a byte, Meta as a count of names and values in turn, then Tags
// as Meta is and Checksum as three strings.
func (u MultipartUpload) MarshalBinary() ([]byte, error) {
	b := []byte{uploadVersion}
	b = appendString(b, u.Bucket)
	b = appendString(b, u.Key)
	b = binary.AppendVarint(b, u.Created)
	b = append(b, boolByte(u.Completing))
	b = appendMeta(b, u.Meta)
	b = appendTags(b, u.Tags)
	return appendChecksum(b, u.Checksum), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (u *MultipartUpload) UnmarshalBinary(data []byte) error {
	if len(data) < 1 || data[0] < 1 || data[0] > uploadVersion {
		return fmt.Errorf("%w: upload of unknown version", ErrBadRecord)
	}
	d := Decoder{b: data[1:]}
	v := MultipartUpload{Bucket: d.string1(), Key: d.string1(), Created: d.Varint(), Completing: d.byte1() == 1}
	v.Meta = d.meta()
	if data[0] >= 2 {
		v.Tags = d.tags()
		v.Checksum = d.checksum()
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: upload truncated or with trailing bytes", ErrBadRecord)
	}
	*u = v
	return nil
}

// MarshalBinary encodes p: the version byte, Token as a string, Done as a byte, Size
// and Created as varints, MD5 as a string, then Volumes and Leftovers, Checksum as
// three strings, and Writes as a count of tokens and volumes in turn.
func (p UploadPart) MarshalBinary() ([]byte, error) {
	b := []byte{partVersion}
	b = appendString(b, p.Token)
	b = append(b, boolByte(p.Done))
	b = binary.AppendVarint(b, p.Size)
	b = binary.AppendVarint(b, p.Created)
	b = appendString(b, p.MD5)
	b = appendStrings(b, p.Volumes)
	b = appendStrings(b, p.Leftovers)
	b = appendChecksum(b, p.Checksum)
	b = binary.AppendUvarint(b, uint64(len(p.Writes)))
	for _, w := range p.Writes {
		b = appendString(b, w.Token)
		b = appendStrings(b, w.Volumes)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (p *UploadPart) UnmarshalBinary(data []byte) error {
	if len(data) < 1 || data[0] < 1 || data[0] > partVersion {
		return fmt.Errorf("%w: part of unknown version", ErrBadRecord)
	}
	d := Decoder{b: data[1:]}
	v := UploadPart{Token: d.string1(), Done: d.byte1() == 1, Size: d.Varint(), Created: d.Varint(), MD5: d.string1()}
	v.Volumes, v.Leftovers = d.strings(), d.strings()
	if data[0] >= 2 {
		v.Checksum = d.checksum()
	}
	if data[0] >= 3 {
		for n := d.count(); n > 0 && !d.err; n-- {
			v.Writes = append(v.Writes, PartWrite{Token: d.string1(), Volumes: d.strings()})
		}
	} else if !v.Done && v.Token != "" {
		v.Writes = []PartWrite{{Token: v.Token, Volumes: append(v.Volumes, v.Leftovers...)}}
		v.Token, v.Volumes, v.Leftovers = "", nil, nil
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: part truncated or with trailing bytes", ErrBadRecord)
	}
	*p = v
	return nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
