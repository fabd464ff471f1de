package main

// CompleteMultipartUpload: the parts read in order into one object, with spaces sent
// meanwhile so that clients wait.

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/s3proto"
)

// completeUpload is CompleteMultipartUpload's body.
type completeUpload struct {
	Parts []struct {
		PartNumber int
		ETag       string
		checksumXML
	} `xml:"Part"`
}

type completeUploadResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	Xmlns    string   `xml:"xmlns,attr"`
	Location string
	Bucket   string
	Key      string
	ETag     string
	checksumXML
}

// s3CompleteMultipartUpload checks the part list against the parts, then writes the
// object from them, in order, as one value. It answers 200 at once and sends a space
// every few seconds while it writes, so that clients do not time out, then the result,
// or the error, as XML, as S3 does.
func (m *s3API) s3CompleteMultipartUpload(w http.ResponseWriter, r *s3Request) error {
	id, u, rev, err := m.upload(r)
	if errors.Is(err, s3proto.ErrNoSuchUpload) {
		return m.completedAgain(w, r, err)
	}
	if err != nil {
		return err
	}
	list, err := readPartList(r)
	if err != nil {
		return err
	}
	// A precondition is checked before the answer's 200 goes out, so that one that
	// fails has its status; and again when the object is written, under the key's
	// lock: one that fails only then failed because another write came between.
	check := writePrecondition(r)
	if check != nil {
		_, cur, err := m.liveObject(r)
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			return err
		}
		if err := check(cur, err == nil); err != nil {
			return err
		}
		atStart := check
		check = func(old index.Record, live bool) error {
			if err := atStart(old, live); err != nil {
				return &s3proto.Error{ErrorCode: s3proto.ErrConditionalConflict, Message: "Another write of the key came while the upload completed; try again.", Err: err}
			}
			return nil
		}
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
		if given := lp.value(p.Checksum.Algorithm); given != "" && given != p.Checksum.Value {
			return s3proto.Errorf(s3proto.ErrInvalidPart, "Part %d's %s checksum is not the part's.", lp.PartNumber, p.Checksum.Algorithm)
		}
		if u.Checksum.Algorithm != "" && (p.Checksum.Algorithm != u.Checksum.Algorithm || p.Checksum.Value == "") {
			return s3proto.Errorf(s3proto.ErrInvalidPart, "Part %d has no %s checksum, which the upload was created with.", lp.PartNumber, u.Checksum.Algorithm)
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
	numbers, objectParts := make([]int, len(list.Parts)), make([]index.Part, len(chosen))
	var partSums []string
	for i, lp := range list.Parts {
		numbers[i], objectParts[i] = lp.PartNumber, index.Part{Size: chosen[i].Size, Checksum: chosen[i].Checksum.Value}
		partSums = append(partSums, chosen[i].Checksum.Value)
	}
	opt := putOptions{Empty: true, Meta: u.Meta, Tags: u.Tags, ETag: partsETag(sums, len(chosen)), Parts: objectParts, Check: check}
	var compositeSum string
	if u.Checksum.Type == composite {
		if compositeSum, err = s3proto.CompositeChecksum(u.Checksum.Algorithm, partSums); err != nil {
			return err
		}
	}
	// The object's checksum, if the client gave it: a composite one is checked now,
	// a full-object one as the object is written.
	alg, given := s3proto.HeaderChecksum(r.Header)
	if given != "" && alg != u.Checksum.Algorithm {
		return s3proto.Errorf(s3proto.ErrInvalidRequest, "The upload was created with checksum algorithm %s, not %s.", cmp.Or(u.Checksum.Algorithm, "none"), alg)
	}
	if given != "" && u.Checksum.Type == composite && given != compositeSum && given+"-"+strconv.Itoa(len(chosen)) != compositeSum {
		return s3proto.Errorf(s3proto.ErrBadDigest, "The %s you specified did not match the object's: %s.", s3proto.ChecksumHeader(alg), compositeSum)
	}
	began := !u.Completing
	if began {
		u.Completing = true
		b, err := u.MarshalBinary()
		if err != nil {
			return err
		}
		if rev, err = m.index.PutEntry(index.UploadSpace, id, b, rev); err != nil {
			return err
		}
	}
	// A part uploaded again that finished before Completing was set may have replaced
	// one chosen above, and deleted it; one that finishes after leaves the chosen
	// ones for the completion to read.
	if err := m.partsStill(id, numbers, chosen); err != nil {
		if began {
			// Nothing was written: the upload takes parts again.
			u.Completing = false
			b, merr := u.MarshalBinary()
			if merr == nil {
				_, merr = m.index.PutEntry(index.UploadSpace, id, b, rev)
			}
			if merr != nil {
				return fmt.Errorf("upload %s stays completing: %w", id, merr)
			}
		}
		return err
	}

	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, xml.Header)
	stop := m.keepAlive(w)
	// The client may go: the object is written all the same, as S3 does.
	ctx := context.WithoutCancel(r.Context())
	key := "/" + r.bucket + "/" + r.key
	body := &s3proto.CheckedBody{Body: &partsReader{m: m, ctx: ctx, id: id, numbers: numbers, parts: chosen}}
	switch u.Checksum.Type {
	case composite:
		opt.Checksum = func() index.Checksum {
			return index.Checksum{Algorithm: u.Checksum.Algorithm, Value: compositeSum, Type: composite}
		}
	case fullObject:
		// The whole object's checksum, summed as its parts stream into it.
		check := s3proto.SumCheck(u.Checksum.Algorithm)
		if given != "" {
			check.Want, check.SumOnly, check.Code = given, false, s3proto.ErrBadDigest
		}
		body.Checks = []*s3proto.BodyCheck{check}
		opt.Checksum = func() index.Checksum { return bodyChecksum(body.Checks, u.Checksum.Algorithm) }
	}
	rec, err := m.overwrite(ctx, nil, key, body, total, opt)
	stop()
	if err != nil {
		w.Write(s3proto.ErrorXML(asS3Error(err), r.URL.Path, r.id))
		return answeredError{fmt.Errorf("complete upload %s: %w", id, err)}
	}
	b, err := xml.Marshal(completeUploadResult{Xmlns: s3Namespace, Location: r.URL.Path, Bucket: r.bucket, Key: r.key, ETag: objectETag(rec),
		checksumXML: checksumFields(rec.Checksum, true)})
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Write(b)
	if err := removeUpload(ctx, m.index, m.client, id); err != nil {
		m.log.Warn("a completed upload's parts were not all deleted; the upload sweeper will", "upload", id, "err", err)
	}
	return nil
}

// partsStill checks that parts numbers of upload id are still the ones chosen; a part
// that another upload of its number replaced is InvalidPart, as if the list had been
// checked after.
func (m *s3API) partsStill(id string, numbers []int, chosen []index.UploadPart) error {
	for i, n := range numbers {
		p, _, found, err := readPart(m.index, index.PartName(id, n))
		if err != nil {
			return err
		}
		if !found || !p.Done || p.Token != chosen[i].Token {
			return s3proto.Errorf(s3proto.ErrInvalidPart, "Part %d was uploaded again while the upload completed; its ETag is no longer the part's.", n)
		}
	}
	return nil
}

// partsETag is the ETag of an object made of n parts, sums the MD5 of their MD5s: S3's
// form, which clients check.
func partsETag(sums hash.Hash, n int) string {
	return fmt.Sprintf("%s-%d", md5Hex(sums.Sum(nil)), n)
}

// readPartList reads CompleteMultipartUpload's list of parts.
func readPartList(r *s3Request) (completeUpload, error) {
	var list completeUpload
	// Its x-amz-checksum-* are the object's, checked as it is written.
	body, err := readSmallBodyOf(r, nil)
	if err != nil {
		return list, err
	}
	if err := xml.Unmarshal(body, &list); err != nil || len(list.Parts) == 0 {
		return list, s3proto.Errorf(s3proto.ErrMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	// A part number listed again, next to itself, is the part uploaded again: its
	// last entry counts, as a client that lists each upload of a part as it finishes
	// expects (s3-tests' test_multipart_resend_first_finishes_last). Any other order
	// but ascending is InvalidPartOrder.
	kept := list.Parts[:0]
	for i, p := range list.Parts {
		if i+1 < len(list.Parts) && list.Parts[i+1].PartNumber == p.PartNumber {
			continue
		}
		kept = append(kept, p)
	}
	list.Parts = kept
	return list, nil
}

// completedAgain answers a CompleteMultipartUpload of an upload that is no more
// (noSuch): if the object is live with the ETag that the list's parts make, the upload
// was completed with them, and S3 answers a client that completes it again (its answer
// lost, say) with the same result. Anything else is noSuch.
func (m *s3API) completedAgain(w http.ResponseWriter, r *s3Request, noSuch error) error {
	list, err := readPartList(r)
	if err != nil {
		return err
	}
	sums := md5.New()
	for _, lp := range list.Parts {
		sum, err := hex.DecodeString(strings.Trim(lp.ETag, `"`))
		if err != nil || len(sum) != md5.Size {
			return noSuch
		}
		sums.Write(sum)
	}
	_, rec, err := m.liveObject(r)
	if err != nil || rec.ETag != partsETag(sums, len(list.Parts)) {
		return noSuch
	}
	return writeXML(w, r, completeUploadResult{Xmlns: s3Namespace, Location: r.URL.Path, Bucket: r.bucket, Key: r.key, ETag: objectETag(rec),
		checksumXML: checksumFields(rec.Checksum, true)})
}

// keepAlive sends a space to w every CompleteKeepalive until the returned stop is
// called; stop returns once no space is being written.
func (m *s3API) keepAlive(w http.ResponseWriter) (stop func()) {
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
	m       *s3API
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
