package main

// S3 multipart uploads: create, upload parts (streamed and replicated as a PUT is, or
// copied from an object), list and abort; completing one (s3complete.go) streams the
// parts in order into one write of the object: a plain file on each replica, as a PUT
// makes, so that native GETs, rebuild, rebalance and verify know nothing of multipart.

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/s3proto"
)

// minPartSize is the least a part but the last may hold, as in S3.
const minPartSize = 5 << 20

type initiateUploadResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

// s3CreateMultipartUpload begins an upload of r's object, with the headers it will have.
func (m *s3API) s3CreateMultipartUpload(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.ObjectWrite); err != nil {
		return err
	}
	if _, err := m.objectKey(r); err != nil {
		return err
	}
	meta, err := objectMeta(r.Header)
	if err != nil {
		return err
	}
	tags, err := requestTags(r)
	if err != nil {
		return err
	}
	sum, err := uploadChecksum(r.Header)
	if err != nil {
		return err
	}
	u := index.MultipartUpload{Bucket: r.bucket, Key: r.key, Created: time.Now().UnixNano(), Meta: meta, Tags: tags, Checksum: sum}
	b, err := u.MarshalBinary()
	if err != nil {
		return err
	}
	id := newUploadID()
	if _, err := m.index.PutEntry(index.UploadSpace, id, b, 0); err != nil {
		return err
	}
	if sum.Algorithm != "" {
		w.Header().Set("X-Amz-Checksum-Algorithm", sum.Algorithm)
		w.Header().Set("X-Amz-Checksum-Type", sum.Type)
	}
	return writeXML(w, r, initiateUploadResult{Xmlns: s3Namespace, Bucket: r.bucket, Key: r.key, UploadID: id})
}

// newUploadID returns a new random upload ID, 32 hex digits.
func newUploadID() string {
	u := uuid.New()
	return hex.EncodeToString(u[:])
}

// noSuchUpload is S3's answer for an upload that does not exist, or no longer.
func noSuchUpload() error {
	return s3proto.Errorf(s3proto.ErrNoSuchUpload, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
}

// upload returns r's upload (?uploadId) and its revision, or NoSuchUpload.
func (m *s3API) upload(r *s3Request) (string, index.MultipartUpload, int64, error) {
	var u index.MultipartUpload
	id := r.URL.Query().Get("uploadId")
	noSuch := noSuchUpload()
	if !layout.ValidUploadID(id) {
		return id, u, 0, noSuch
	}
	b, rev, err := m.index.GetEntry(index.UploadSpace, id)
	if errors.Is(err, index.ErrNotFound) {
		return id, u, 0, noSuch
	}
	if err != nil {
		return id, u, 0, err
	}
	if err := u.UnmarshalBinary(b); err != nil {
		return id, u, 0, err
	}
	if u.Bucket != r.bucket || u.Key != r.key {
		return id, u, 0, noSuch
	}
	return id, u, rev, nil
}

// s3UploadPart stores part ?partNumber of r's upload from the body, checked as
// PutObject's is, or with x-amz-copy-source (UploadPartCopy) from an object, whole or
// the bytes x-amz-copy-source-range names. A part uploaded again replaces the last.
func (m *s3API) s3UploadPart(w http.ResponseWriter, r *s3Request) error {
	if err := s3proto.Unsupported(r.Header, s3proto.PartWrite); err != nil {
		return err
	}
	id, u, _, err := m.upload(r)
	if err != nil {
		return err
	}
	if u.Completing {
		return s3proto.Errorf(s3proto.ErrNoSuchUpload, "The upload is being completed.")
	}
	n, err := strconv.Atoi(r.URL.Query().Get("partNumber"))
	if err != nil || n < 1 || n > layout.MaxParts {
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "Part number must be an integer between 1 and %d, inclusive.", layout.MaxParts)
	}
	key := "/" + r.bucket + "/" + r.key
	rc := http.NewResponseController(w)
	if r.Header.Get("X-Amz-Copy-Source") == "" {
		want, err := s3proto.ContentMD5(r.Header)
		if err != nil {
			return err
		}
		body, size, err := s3Body(r)
		if err != nil {
			return err
		}
		defer body.Stop()
		if alg := u.Checksum.Algorithm; alg != "" && !slices.ContainsFunc(body.Checks, func(c *s3proto.BodyCheck) bool { return c.Header == s3proto.ChecksumHeader(alg) }) {
			// The upload's algorithm, which its client did not send: davkv sums it.
			body.Checks = append(body.Checks, s3proto.SumCheck(alg))
		}
		p, err := m.storePart(r.Context(), rc, key, id, n, body, size, want, func() index.Checksum { return bodyChecksum(body.Checks, u.Checksum.Algorithm) })
		if err != nil {
			return err
		}
		writeChecksum(w.Header(), index.Checksum{Algorithm: p.Checksum.Algorithm, Value: p.Checksum.Value})
		w.Header().Set("ETag", `"`+p.MD5+`"`)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	srcKey, src, err := m.copySource(r)
	if err != nil {
		return err
	}
	off, size := int64(0), src.Size
	if cr := r.Header.Get("X-Amz-Copy-Source-Range"); cr != "" {
		// Only bytes=FIRST-LAST, within the source: no open or suffix ranges.
		spec, okPrefix := strings.CutPrefix(cr, "bytes=")
		first, last, okDash := strings.Cut(spec, "-")
		f, ferr := strconv.ParseInt(first, 10, 64)
		l, lerr := strconv.ParseInt(last, 10, 64)
		switch {
		case !okPrefix || !okDash || ferr != nil || lerr != nil || f < 0 || f > l:
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "The x-amz-copy-source-range %q is not bytes=FIRST-LAST.", cr)
		case l >= src.Size:
			return s3proto.Errorf(s3proto.ErrInvalidRange, "The x-amz-copy-source-range %q is not within the source's %d bytes.", cr, src.Size)
		}
		off, size = f, l-f+1
	}
	body, err := m.openFile(r.Context(), src.Path(srcKey), src.Volumes, src.Size, off, size, off != 0 || size != src.Size)
	if err != nil {
		return err
	}
	defer body.Close()
	var want []byte
	if off == 0 && size == src.Size && src.MD5 != "" {
		want, _ = parseContentMD5(src.MD5)
	}
	copied := &s3proto.CheckedBody{Body: copyBody{body}}
	if alg := u.Checksum.Algorithm; alg != "" {
		copied.Checks = []*s3proto.BodyCheck{s3proto.SumCheck(alg)}
	}
	p, err := m.storePart(r.Context(), rc, key, id, n, copied, size, want, func() index.Checksum { return bodyChecksum(copied.Checks, "") })
	if err != nil {
		return err
	}
	return writeXML(w, r, copyResult{XMLName: xml.Name{Local: "CopyPartResult"}, Xmlns: s3Namespace, LastModified: s3Time(p.Created), ETag: `"` + p.MD5 + `"`,
		checksumXML: checksumFields(p.Checksum, false)})
}

// storePart writes part n of upload id (of key) to files of its own on every chosen
// volume, as a PUT writes a value, and makes it the part once it is stored, replacing
// (and deleting) the part stored before, or one that finished first meanwhile: the
// upload that finishes last is the part, as in S3. The write is recorded in the
// part's entry before a byte is sent, so that a failure or a crash leaves nothing
// untracked. sum gives the part's checksum once its body is read.
func (m *s3API) storePart(ctx context.Context, rc *http.ResponseController, key, id string, n int, body io.Reader, size int64, want []byte, sum func() index.Checksum) (index.UploadPart, error) {
	token := uuid.New()
	p := index.UploadPart{Token: hex.EncodeToString(token[:4]), Created: time.Now().UnixNano(), Done: true}
	path := layout.PartPath(id, n, p.Token)
	res, _, traced, err := m.writeReplicas(ctx, rc, key, body, size, true, want, true, func(vols, spares []string) (string, error) {
		return path, beginPartWrite(m.index, id, n, p.Token, append(slices.Clone(vols), spares...))
	})
	cctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	if err != nil && traced {
		cerr := deletePaths(cctx, m.client, append(res.written, res.mayHold...), path)
		m.health.Failed(cerr)
		if cerr == nil {
			cerr = endPartWrite(m.index, id, n, p.Token)
		}
		if cerr != nil {
			m.log.Error("cleanup after failed part upload left a trace", "upload", id, "part", n, "err", cerr)
		}
	}
	if err != nil {
		return index.UploadPart{}, err
	}
	p.Size, p.MD5, p.Volumes, p.Leftovers = res.size, res.sum, res.written, res.mayHold
	if c := sum(); c.Value != "" {
		p.Checksum = index.Checksum{Algorithm: c.Algorithm, Value: c.Value}
	}
	old, err := commitPartWrite(m.index, id, n, p)
	if errors.Is(err, errPartGone) {
		if err := deletePaths(cctx, m.client, append(p.Volumes, p.Leftovers...), path); err != nil {
			m.log.Warn("a part stored after its upload went was not deleted; verify -fix will", "upload", id, "part", n, "err", err)
		}
		return index.UploadPart{}, noSuchUpload()
	}
	if err != nil {
		return index.UploadPart{}, err
	}
	// Even if the client is gone, the part replaced is deleted, unless a completion
	// may be reading it: a completion deletes it with the upload.
	switch u, _, err := m.index.GetEntry(index.UploadSpace, id); {
	case errors.Is(err, index.ErrNotFound):
		// Removed before this part was recorded, or with it: this part's entry is the
		// last trace of the upload.
		if err := removePart(cctx, m.index, m.client, id, n); err != nil {
			m.log.Warn("a part stored after its upload went was not deleted; verify -fix will", "upload", id, "part", n, "err", err)
		}
		return index.UploadPart{}, noSuchUpload()
	case err != nil:
		m.log.Warn("a replaced part stays recorded until its upload is removed", "upload", id, "part", n, "err", err)
	case old.Done && !uploadCompleting(u):
		err := deletePaths(cctx, m.client, append(old.Volumes, old.Leftovers...), layout.PartPath(id, n, old.Token))
		if err == nil {
			err = endPartWrite(m.index, id, n, old.Token)
		}
		if err != nil {
			m.log.Warn("a replaced part's files stay recorded until its upload is removed", "upload", id, "part", n, "err", err)
		}
	}
	return p, nil
}

// uploadCompleting reports whether upload entry b has begun to complete; one that
// does not decode is taken as completing, so that nothing it may read is deleted.
func uploadCompleting(b []byte) bool {
	var u index.MultipartUpload
	return u.UnmarshalBinary(b) != nil || u.Completing
}

// s3AbortMultipartUpload removes r's upload and its parts.
func (m *s3API) s3AbortMultipartUpload(w http.ResponseWriter, r *s3Request) error {
	id, _, _, err := m.upload(r)
	if err != nil {
		return err
	}
	if err := removeUpload(r.Context(), m.index, m.client, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"ListPartsResult"`
	Xmlns                string   `xml:"xmlns,attr"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	PartNumberMarker     int
	NextPartNumberMarker int
	MaxParts             int
	IsTruncated          bool
	Parts                []partXML `xml:"Part"`
	StorageClass         string
	ChecksumAlgorithm    string `xml:",omitempty"`
	ChecksumType         string `xml:",omitempty"`
}

type partXML struct {
	PartNumber   int
	LastModified string
	ETag         string
	Size         int64
	checksumXML
}

// maxPartsPage is the most parts a listing of them holds, and the default: S3's.
const maxPartsPage = 1000

// partsPage reads a page of parts as ListParts (in its query) and GetObjectAttributes
// (in headers) ask for one: at most maxParts (named maxName; maxPartsPage by default
// and at most) after part number marker (named markerName; 0 by default).
func partsPage(maxParts, marker, maxName, markerName string) (limit, after int, err error) {
	limit = maxPartsPage
	if maxParts != "" {
		if limit, err = strconv.Atoi(maxParts); err != nil || limit < 0 {
			return 0, 0, s3proto.Errorf(s3proto.ErrInvalidArgument, "%s must be a number from 0.", maxName)
		}
		limit = min(limit, maxPartsPage)
	}
	if marker != "" {
		if after, err = strconv.Atoi(marker); err != nil || after < 0 {
			return 0, 0, s3proto.Errorf(s3proto.ErrInvalidArgument, "%s must be a number from 0.", markerName)
		}
	}
	return limit, after, nil
}

// s3ListParts lists the stored parts of r's upload, max-parts (1000 at most) at a
// time after part-number-marker.
func (m *s3API) s3ListParts(w http.ResponseWriter, r *s3Request) error {
	id, u, _, err := m.upload(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, marker, err := partsPage(q.Get("max-parts"), q.Get("part-number-marker"), "max-parts", "part-number-marker")
	if err != nil {
		return err
	}
	res := listPartsResult{Xmlns: s3Namespace, Bucket: r.bucket, Key: r.key, UploadID: id, PartNumberMarker: marker, MaxParts: limit, StorageClass: "STANDARD",
		ChecksumAlgorithm: u.Checksum.Algorithm, ChecksumType: u.Checksum.Type}
	err = uploadParts(m.index, id, func(n int, p index.UploadPart, _ int64) (bool, error) {
		if n <= marker || !p.Done {
			return true, nil
		}
		if len(res.Parts) == limit {
			res.IsTruncated = true
			return false, nil
		}
		res.Parts = append(res.Parts, partXML{PartNumber: n, LastModified: s3Time(p.Created), ETag: `"` + p.MD5 + `"`, Size: p.Size,
			checksumXML: checksumFields(p.Checksum, false)})
		res.NextPartNumberMarker = n
		return true, nil
	})
	if err != nil {
		return err
	}
	return writeXML(w, r, res)
}

type listUploadsResult struct {
	XMLName            xml.Name `xml:"ListMultipartUploadsResult"`
	Xmlns              string   `xml:"xmlns,attr"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string
	NextUploadIDMarker string `xml:"NextUploadIdMarker"`
	Prefix             string
	Delimiter          string `xml:",omitempty"`
	EncodingType       string `xml:",omitempty"`
	MaxUploads         int
	IsTruncated        bool
	Uploads            []uploadXML   `xml:"Upload"`
	CommonPrefixes     []s3PrefixXML `xml:"CommonPrefixes,omitempty"`
}

type uploadXML struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiated    string
	StorageClass string
}

// s3ListMultipartUploads lists the uploads in progress in r's bucket, by key then
// upload ID, with prefix, delimiter, key-marker, upload-id-marker and max-uploads.
func (m *s3API) s3ListMultipartUploads(w http.ResponseWriter, r *s3Request) error {
	if _, _, err := m.bucket(r.bucket); err != nil {
		return err
	}
	q := r.URL.Query()
	limit := 1000
	if s := q.Get("max-uploads"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "max-uploads must be a number from 0.")
		}
		limit = min(limit, 1000)
	}
	res := listUploadsResult{Xmlns: s3Namespace, Bucket: r.bucket, KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"),
		Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), MaxUploads: limit}
	var all []uploadXML
	err := m.index.Entries(index.UploadSpace, "", func(id string, value []byte, _ int64) (bool, error) {
		var u index.MultipartUpload
		if err := u.UnmarshalBinary(value); err != nil {
			return false, err
		}
		if u.Bucket == r.bucket && !u.Completing && strings.HasPrefix(u.Key, res.Prefix) {
			all = append(all, uploadXML{Key: u.Key, UploadID: id, Initiated: s3Time(u.Created), StorageClass: "STANDARD"})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b uploadXML) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.UploadID, b.UploadID))
	})
	for _, up := range all {
		if up.Key < res.KeyMarker || up.Key == res.KeyMarker && (res.UploadIDMarker == "" || up.UploadID <= res.UploadIDMarker) {
			continue
		}
		if res.Delimiter != "" {
			if i := strings.Index(up.Key[len(res.Prefix):], res.Delimiter); i >= 0 {
				p := up.Key[:len(res.Prefix)+i+len(res.Delimiter)]
				if n := len(res.CommonPrefixes); n == 0 || res.CommonPrefixes[n-1].Prefix != p {
					if len(res.Uploads)+len(res.CommonPrefixes) == limit {
						res.IsTruncated = true
						break
					}
					res.CommonPrefixes = append(res.CommonPrefixes, s3PrefixXML{Prefix: p})
				}
				continue
			}
		}
		if len(res.Uploads)+len(res.CommonPrefixes) == limit {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, up)
		res.NextKeyMarker, res.NextUploadIDMarker = up.Key, up.UploadID
	}
	if et := q.Get("encoding-type"); et == "url" {
		res.EncodingType = "url"
		encodeURL(&res.KeyMarker, &res.NextKeyMarker, &res.Prefix, &res.Delimiter)
		for i := range res.Uploads {
			encodeURL(&res.Uploads[i].Key)
		}
		encodePrefixes(res.CommonPrefixes)
	} else if et != "" {
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "encoding-type must be url.")
	}
	return writeXML(w, r, res)
}
