package main

// S3 multipart uploads: create, upload parts (streamed and replicated as a PUT is, or
// copied from an object), list, abort, and complete, which streams the parts in order
// into one write of the object: a plain file on each replica, as a PUT makes, so that
// native GETs, rebuild, rebalance and verify know nothing of multipart.

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
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
func (m *Master) s3CreateMultipartUpload(w http.ResponseWriter, r *s3Request) error {
	if _, err := m.objectKey(r); err != nil {
		return err
	}
	meta, err := objectMeta(r.Header)
	if err != nil {
		return err
	}
	u := index.MultipartUpload{Bucket: r.bucket, Key: r.key, Created: time.Now().UnixNano(), Meta: meta}
	b, err := u.MarshalBinary()
	if err != nil {
		return err
	}
	id := newUploadID()
	if _, err := m.index.PutEntry(index.UploadSpace, id, b, 0); err != nil {
		return err
	}
	return writeXML(w, r, initiateUploadResult{Xmlns: s3Namespace, Bucket: r.bucket, Key: r.key, UploadID: id})
}

// newUploadID returns a new random upload ID, 32 hex digits.
func newUploadID() string {
	u := uuid.New()
	return hex.EncodeToString(u[:])
}

// upload returns r's upload (?uploadId) and its revision, or NoSuchUpload.
func (m *Master) upload(r *s3Request) (string, index.MultipartUpload, int64, error) {
	var u index.MultipartUpload
	id := r.URL.Query().Get("uploadId")
	noSuch := s3proto.Errorf(s3proto.ErrNoSuchUpload, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
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

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	Xmlns        string   `xml:"xmlns,attr"`
	LastModified string
	ETag         string
}

// s3UploadPart stores part ?partNumber of r's upload from the body, checked as
// PutObject's is, or with x-amz-copy-source (UploadPartCopy) from an object, whole or
// the bytes x-amz-copy-source-range names. A part uploaded again replaces the last.
func (m *Master) s3UploadPart(w http.ResponseWriter, r *s3Request) error {
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
		p, err := m.storePart(r.Context(), rc, key, id, n, body, size, want)
		if err != nil {
			return err
		}
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
		if !okPrefix || !okDash || ferr != nil || lerr != nil || f < 0 || f > l || l >= src.Size {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "The x-amz-copy-source-range %q is not bytes=FIRST-LAST within the source's %d bytes.", cr, src.Size)
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
	p, err := m.storePart(r.Context(), rc, key, id, n, copyBody{body}, size, want)
	if err != nil {
		return err
	}
	return writeXML(w, r, copyPartResult{Xmlns: s3Namespace, LastModified: s3Time(p.Created), ETag: `"` + p.MD5 + `"`})
}

// storePart writes part n of upload id (of key) to its own file on every chosen volume,
// as a PUT writes a value, and records it; a part that was there before is replaced,
// its files deleted. The part's entry names the volumes first, so that a failure or a
// crash leaves nothing untracked.
func (m *Master) storePart(ctx context.Context, rc *http.ResponseController, key, id string, n int, body io.Reader, size int64, want []byte) (index.UploadPart, error) {
	bufp := m.buffers.Get().(*[]byte)
	defer m.buffers.Put(bufp)
	first, eof, err := fill(body, *bufp, rc)
	if err != nil {
		return index.UploadPart{}, err
	}
	_, vols, spares, minOK, err := m.chooseVolumes(key)
	if err != nil {
		return index.UploadPart{}, err
	}
	name := index.PartName(id, n)
	var old index.UploadPart
	oldValue, rev, err := m.index.GetEntry(index.PartSpace, name)
	switch {
	case errors.Is(err, index.ErrNotFound):
	case err != nil:
		return index.UploadPart{}, err
	default:
		if err := old.UnmarshalBinary(oldValue); err != nil {
			return index.UploadPart{}, err
		}
	}
	token := uuid.New()
	p := index.UploadPart{Token: hex.EncodeToString(token[:4]), Created: time.Now().UnixNano(), Volumes: append(slices.Clone(vols), spares...)}
	if rev, err = m.putPart(name, p, rev); err != nil {
		return index.UploadPart{}, err
	}
	path := layout.PartPath(id, n, p.Token)
	res, err := m.replicate(ctx, rc, body, first, eof, size, vols, spares, path, want, true)
	if err == nil && len(res.written) < minOK {
		err = fmt.Errorf("%w: %d replicas written, %d needed", ErrNoVolumes, len(res.written), minOK)
	}
	if err != nil {
		cctx, cancel := m.cleanupContext(ctx)
		defer cancel()
		cerr := deletePaths(cctx, m.client, append(res.written, res.mayHold...), path)
		m.health.Failed(cerr)
		if cerr == nil && oldValue != nil {
			_, cerr = m.index.PutEntry(index.PartSpace, name, oldValue, rev)
		} else if cerr == nil {
			cerr = m.index.DeleteEntry(index.PartSpace, name, rev)
		}
		if cerr != nil {
			m.log.Error("cleanup after failed part upload left a trace", "upload", id, "part", n, "err", cerr)
		}
		return index.UploadPart{}, err
	}
	p.Done, p.Size, p.MD5, p.Volumes, p.Leftovers = true, res.size, res.sum, res.written, res.mayHold
	if _, err := m.putPart(name, p, rev); err != nil {
		return index.UploadPart{}, err
	}
	if oldValue != nil {
		// Even if the client is gone: the replaced part's files are in no entry now.
		dctx, cancel := m.cleanupContext(ctx)
		defer cancel()
		if err := deletePaths(dctx, m.client, append(old.Volumes, old.Leftovers...), layout.PartPath(id, n, old.Token)); err != nil {
			m.log.Warn("a replaced part's files were not deleted; verify -fix will", "upload", id, "part", n, "err", err)
		}
	}
	return p, nil
}

// putPart writes part p as the entry name, if it is still at rev.
func (m *Master) putPart(name string, p index.UploadPart, rev int64) (int64, error) {
	b, err := p.MarshalBinary()
	if err != nil {
		return 0, err
	}
	return m.index.PutEntry(index.PartSpace, name, b, rev)
}

// uploadParts calls fn with every part entry of upload id, in part number order.
func uploadParts(idx index.Index, id string, fn func(n int, p index.UploadPart, rev int64) (bool, error)) error {
	prefix := id + "/"
	return idx.Entries(index.PartSpace, prefix, func(name string, value []byte, rev int64) (bool, error) {
		num, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return false, nil
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return false, fmt.Errorf("%w: part entry %q", index.ErrBadRecord, name)
		}
		var p index.UploadPart
		if err := p.UnmarshalBinary(value); err != nil {
			return false, err
		}
		return fn(n, p, rev)
	})
}

// removeUpload deletes every part of upload id, files then entries, then the upload:
// what AbortMultipartUpload, a completion and the removal of abandoned uploads share.
// What fails stays recorded, for the next try.
func removeUpload(ctx context.Context, idx index.Index, client *VolumeClient, id string) error {
	var errs []error
	err := uploadParts(idx, id, func(n int, p index.UploadPart, rev int64) (bool, error) {
		if err := deletePaths(ctx, client, append(p.Volumes, p.Leftovers...), layout.PartPath(id, n, p.Token)); err != nil {
			errs = append(errs, err)
			return true, nil
		}
		errs = append(errs, idx.DeleteEntry(index.PartSpace, index.PartName(id, n), rev))
		return true, nil
	})
	if err = errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("remove upload %s: %w", id, err)
	}
	_, rev, err := idx.GetEntry(index.UploadSpace, id)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = idx.DeleteEntry(index.UploadSpace, id, rev)
	}
	if err != nil {
		return fmt.Errorf("remove upload %s: %w", id, err)
	}
	return nil
}

// s3AbortMultipartUpload removes r's upload and its parts.
func (m *Master) s3AbortMultipartUpload(w http.ResponseWriter, r *s3Request) error {
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

// completeUpload is CompleteMultipartUpload's body.
type completeUpload struct {
	Parts []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

type completeUploadResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string
	Bucket   string
	Key      string
	ETag     string
}

// s3CompleteMultipartUpload checks the part list against the parts, then writes the
// object from them, in order, as one value. It answers 200 at once and sends a space
// every few seconds while it writes, so that clients do not time out, then the result,
// or the error, as XML, as S3 does.
func (m *Master) s3CompleteMultipartUpload(w http.ResponseWriter, r *s3Request) error {
	id, u, rev, err := m.upload(r)
	if err != nil {
		return err
	}
	body, err := readSmallBody(r)
	if err != nil {
		return err
	}
	var list completeUpload
	if err := xml.Unmarshal(body, &list); err != nil || len(list.Parts) == 0 {
		return s3proto.Errorf(s3proto.ErrMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	parts := map[int]index.UploadPart{}
	if err := uploadParts(m.index, id, func(n int, p index.UploadPart, _ int64) (bool, error) {
		if p.Done {
			parts[n] = p
		}
		return true, nil
	}); err != nil {
		return err
	}
	var chosen []index.UploadPart
	var total int64
	sums := md5.New()
	for i, lp := range list.Parts {
		if i > 0 && lp.PartNumber <= list.Parts[i-1].PartNumber {
			return s3proto.Errorf(s3proto.ErrInvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number.")
		}
		p, ok := parts[lp.PartNumber]
		if !ok || strings.Trim(lp.ETag, `"`) != p.MD5 {
			return s3proto.Errorf(s3proto.ErrInvalidPart, "Part %d was not uploaded, or its ETag %s is not the part's.", lp.PartNumber, lp.ETag)
		}
		if i < len(list.Parts)-1 && p.Size < minPartSize {
			return s3proto.Errorf(s3proto.ErrEntityTooSmall, "Part %d has %d bytes; every part but the last must have at least %d.", lp.PartNumber, p.Size, minPartSize)
		}
		sum, err := hex.DecodeString(p.MD5)
		if err != nil {
			return fmt.Errorf("part %d: %w: md5 %q", lp.PartNumber, index.ErrBadRecord, p.MD5)
		}
		sums.Write(sum)
		chosen = append(chosen, p)
		total += p.Size
	}
	if !u.Completing {
		u.Completing = true
		b, err := u.MarshalBinary()
		if err != nil {
			return err
		}
		if _, err := m.index.PutEntry(index.UploadSpace, id, b, rev); err != nil {
			return err
		}
	}

	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, xml.Header)
	stop := m.keepAlive(w)
	// The client may go: the object is written all the same, as S3 does.
	ctx := context.WithoutCancel(r.Context())
	key := "/" + r.bucket + "/" + r.key
	numbers := make([]int, len(list.Parts))
	for i, lp := range list.Parts {
		numbers[i] = lp.PartNumber
	}
	etag := fmt.Sprintf("%s-%d", md5Hex(sums.Sum(nil)), len(chosen))
	rec, err := m.store(ctx, nil, key, &partsReader{m: m, ctx: ctx, id: id, numbers: numbers, parts: chosen}, total,
		putOptions{Overwrite: true, Empty: true, Wait: true, Sum: true, Meta: u.Meta, ETag: etag})
	stop()
	if err != nil {
		w.Write(s3proto.ErrorXML(asS3Error(err), r.URL.Path, r.id))
		return answeredError{fmt.Errorf("complete upload %s: %w", id, err)}
	}
	b, err := xml.Marshal(completeUploadResult{Xmlns: s3Namespace, Location: r.URL.Path, Bucket: r.bucket, Key: r.key, ETag: objectETag(rec)})
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Write(b)
	if err := removeUpload(ctx, m.index, m.client, id); err != nil {
		m.log.Warn("a completed upload's parts were not all deleted; the upload sweeper will", "upload", id, "err", err)
	}
	return nil
}

// keepAlive sends a space to w every CompleteKeepalive until the returned stop is
// called; stop returns once no space is being written.
func (m *Master) keepAlive(w http.ResponseWriter) (stop func()) {
	every := m.cfg.CompleteKeepalive
	if every == 0 {
		every = 5 * time.Second
	}
	rc := http.NewResponseController(w)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				io.WriteString(w, " ")
				rc.Flush()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// partsReader reads the parts of an upload, in order, each from the first of its
// volumes that answers, each checked against its MD5 before its end is given: a
// failure is the volumes', never the end of the value.
type partsReader struct {
	m       *Master
	ctx     context.Context
	id      string
	numbers []int
	parts   []index.UploadPart
	cur     io.ReadCloser
}

func (pr *partsReader) Read(b []byte) (int, error) {
	for {
		if pr.cur == nil {
			if len(pr.parts) == 0 {
				return 0, io.EOF
			}
			p, n := pr.parts[0], pr.numbers[0]
			body, err := pr.m.openFile(pr.ctx, layout.PartPath(pr.id, n, p.Token), p.Volumes, p.Size, 0, p.Size, false)
			if err != nil {
				return 0, &s3proto.Error{ErrorCode: s3proto.ErrServiceUnavailable, Message: fmt.Sprintf("Part %d could not be read; try again.", n), Err: err}
			}
			check := &s3proto.BodyCheck{Header: fmt.Sprintf("part %d", n), Hash: md5.New(), Want: p.MD5, Hex: true, Code: s3proto.ErrInternalError}
			pr.cur = struct {
				io.Reader
				io.Closer
			}{&s3proto.CheckedBody{Body: copyBody{body}, Checks: []*s3proto.BodyCheck{check}}, body}
		}
		k, err := pr.cur.Read(b)
		if err == io.EOF {
			pr.cur.Close()
			pr.cur, pr.parts, pr.numbers = nil, pr.parts[1:], pr.numbers[1:]
			if k == 0 {
				continue
			}
			err = nil
		}
		return k, err
	}
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
}

type partXML struct {
	PartNumber   int
	LastModified string
	ETag         string
	Size         int64
}

// s3ListParts lists the stored parts of r's upload, max-parts (1000 at most) at a
// time after part-number-marker.
func (m *Master) s3ListParts(w http.ResponseWriter, r *s3Request) error {
	id, _, _, err := m.upload(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, marker := 1000, 0
	if s := q.Get("max-parts"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 0 {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "max-parts must be a number from 0.")
		}
		limit = min(limit, 1000)
	}
	if s := q.Get("part-number-marker"); s != "" {
		if marker, err = strconv.Atoi(s); err != nil || marker < 0 {
			return s3proto.Errorf(s3proto.ErrInvalidArgument, "part-number-marker must be a number from 0.")
		}
	}
	res := listPartsResult{Xmlns: s3Namespace, Bucket: r.bucket, Key: r.key, UploadID: id, PartNumberMarker: marker, MaxParts: limit, StorageClass: "STANDARD"}
	err = uploadParts(m.index, id, func(n int, p index.UploadPart, _ int64) (bool, error) {
		if n <= marker || !p.Done {
			return true, nil
		}
		if len(res.Parts) == limit {
			res.IsTruncated = true
			return false, nil
		}
		res.Parts = append(res.Parts, partXML{PartNumber: n, LastModified: s3Time(p.Created), ETag: `"` + p.MD5 + `"`, Size: p.Size})
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
func (m *Master) s3ListMultipartUploads(w http.ResponseWriter, r *s3Request) error {
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
		enc := func(s string) string { return s3proto.URIEncode(s, false) }
		res.KeyMarker, res.NextKeyMarker, res.Prefix, res.Delimiter = enc(res.KeyMarker), enc(res.NextKeyMarker), enc(res.Prefix), enc(res.Delimiter)
		for i := range res.Uploads {
			res.Uploads[i].Key = enc(res.Uploads[i].Key)
		}
		for i := range res.CommonPrefixes {
			res.CommonPrefixes[i].Prefix = enc(res.CommonPrefixes[i].Prefix)
		}
	} else if et != "" {
		return s3proto.Errorf(s3proto.ErrInvalidArgument, "encoding-type must be url.")
	}
	return writeXML(w, r, res)
}

// sweepUploads removes the uploads older than UploadGrace, now and every hour, until
// ctx ends.
func (m *Master) sweepUploads(ctx context.Context) {
	grace := m.cfg.UploadGrace
	if grace == 0 {
		grace = 7 * 24 * time.Hour
	}
	for {
		var old []string
		err := m.index.Entries(index.UploadSpace, "", func(id string, value []byte, _ int64) (bool, error) {
			var u index.MultipartUpload
			if err := u.UnmarshalBinary(value); err != nil {
				return false, err
			}
			if time.Since(time.Unix(0, u.Created)) > grace {
				old = append(old, id)
			}
			return ctx.Err() == nil, nil
		})
		if err != nil {
			m.log.Warn("listing multipart uploads failed", "err", err)
		}
		for _, id := range old {
			if err := removeUpload(ctx, m.index, m.client, id); err != nil {
				m.log.Warn("an abandoned multipart upload was not removed; the next sweep will try again", "upload", id, "err", err)
			} else {
				m.log.Info("removed an abandoned multipart upload", "upload", id, "older than", grace)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}
