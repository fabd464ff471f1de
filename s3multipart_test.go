package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// multipartETag is S3's ETag of an object uploaded in parts of partSize.
func multipartETag(value []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(value); off += partSize {
		sum := md5.Sum(value[off:min(off+partSize, len(value))])
		sums = append(sums, sum[:]...)
		n++
	}
	all := md5.Sum(sums)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(all[:]), n)
}

// TestS3MultipartUpload uploads with the AWS SDK for Go's upload manager, parts in
// parallel, and reads back: the object is one plain file per replica, read through S3
// and the native redirect, with S3's multipart ETag; the parts are gone.
func TestS3MultipartUpload(t *testing.T) {
	c, s := s3Cluster(t, 3, "big")
	ctx := context.Background()
	value := testenv.RandomBytes(23<<20 + 12345) // 5 parts of 5 MiB, the last shorter
	// manager is the SDK's stable upload manager, deprecated for transfermanager, which
	// is still v0: what users run today.
	//lint:ignore SA1019 see above
	up := manager.NewUploader(s, func(u *manager.Uploader) { u.PartSize = 5 << 20; u.Concurrency = 3 })
	//lint:ignore SA1019 see above
	out, err := up.Upload(ctx, &s3.PutObjectInput{Bucket: aws.String("big"), Key: aws.String("video/one.mp4"), Body: bytes.NewReader(value),
		ContentType: aws.String("video/mp4"), Metadata: map[string]string{"camera": "front"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := multipartETag(value, 5<<20); aws.ToString(out.ETag) != want {
		t.Fatalf("ETag %s, want %s", aws.ToString(out.ETag), want)
	}
	got, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("video/one.mp4")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(b, value) || aws.ToString(got.ContentType) != "video/mp4" || got.Metadata["camera"] != "front" || aws.ToString(got.ETag) != aws.ToString(out.ETag) {
		t.Fatalf("GetObject: %d bytes, type %q, meta %v, ETag %s", len(b), aws.ToString(got.ContentType), got.Metadata, aws.ToString(got.ETag))
	}
	if status, b := c.Get("/big/video/one.mp4"); status != http.StatusOK || !bytes.Equal(b, value) {
		t.Fatalf("native GET: %d, %d bytes", status, len(b))
	}
	rec := c.Record("/big/video/one.mp4")
	sum := md5.Sum(value)
	if rec.MD5 != hex.EncodeToString(sum[:]) || len(c.VolumeFiles(rec.Path("/big/video/one.mp4"))) != 3 {
		t.Fatalf("record %+v: want the value's MD5 and three plain replicas", rec)
	}
	testenv.Eventually(t, 10*time.Second, "parts left", func() bool { return len(c.AllFiles()) == 3 })
	if n := countEntries(t, c, index.UploadSpace) + countEntries(t, c, index.PartSpace); n != 0 {
		t.Fatalf("%d upload and part entries left", n)
	}
}

// countEntries counts the index's entries in space.
func countEntries(t *testing.T, c *testCluster, space string) int {
	n := 0
	if err := c.Master.index.Entries(space, "", func(string, []byte, int64) (bool, error) { n++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestS3MultipartSteps drives each multipart operation by hand with the SDK: parts
// uploaded again and copied from objects, listings of parts and uploads, every wrong
// completion refused with its S3 error and nothing lost, abort, and an upload
// surviving a restart.
func TestS3MultipartSteps(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys = testS3Keys })
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	ctx := context.Background()
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mpu")}); err != nil {
		t.Fatal(err)
	}
	src := testenv.RandomBytes(6 << 20)
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mpu"), Key: aws.String("source"), Body: bytes.NewReader(src)}); err != nil {
		t.Fatal(err)
	}
	create := func(key string) string {
		t.Helper()
		out, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.UploadId)
	}
	part := func(key, id string, n int32, value []byte) types.CompletedPart {
		t.Helper()
		out, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: aws.String(id), PartNumber: aws.Int32(n), Body: bytes.NewReader(value)})
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag}
	}
	complete := func(key, id string, parts ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
		return s.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String(key), UploadId: aws.String(id),
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	}

	id := create("k")
	p1 := part("k", id, 1, testenv.RandomBytes(5<<20))
	a := testenv.RandomBytes(5 << 20)
	p1 = part("k", id, 1, a) // again: the last one counts
	cp, err := s.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: aws.String(id), PartNumber: aws.Int32(2),
		CopySource: aws.String("mpu/source"), CopySourceRange: aws.String("bytes=1000-5243879")})
	if err != nil {
		t.Fatal(err)
	}
	p2 := types.CompletedPart{PartNumber: aws.Int32(2), ETag: cp.CopyPartResult.ETag}
	last := []byte("the end")
	p3 := part("k", id, 3, last)

	lp, err := s.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: aws.String(id), MaxParts: aws.Int32(2)})
	if err != nil || len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.Parts[0].ETag) != aws.ToString(p1.ETag) || aws.ToInt64(lp.Parts[1].Size) != 5<<20 {
		t.Fatalf("ListParts: %+v, %v", lp, err)
	}
	other := create("dir/other")
	lu, err := s.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(lu.Uploads) != 2 || aws.ToString(lu.Uploads[0].Key) != "dir/other" || aws.ToString(lu.Uploads[1].UploadId) != id {
		t.Fatalf("ListMultipartUploads: %+v, %v", lu, err)
	}
	lu, err = s.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu"), Delimiter: aws.String("/")})
	if err != nil || len(lu.Uploads) != 1 || len(lu.CommonPrefixes) != 1 || aws.ToString(lu.CommonPrefixes[0].Prefix) != "dir/" {
		t.Fatalf("ListMultipartUploads with a delimiter: %+v, %v", lu, err)
	}

	// Wrong completions: refused, and the upload is still there to complete.
	wrongETag := types.CompletedPart{PartNumber: aws.Int32(2), ETag: aws.String(`"00000000000000000000000000000000"`)}
	small := part("dir/other", other, 1, []byte("too small"))
	bad := []struct {
		name, key, id string
		parts         []types.CompletedPart
		code          string
	}{
		{"parts out of order", "k", id, []types.CompletedPart{p2, p1, p3}, "InvalidPartOrder"},
		{"a part's ETag wrong", "k", id, []types.CompletedPart{p1, wrongETag, p3}, "InvalidPart"},
		{"a part never uploaded", "k", id, []types.CompletedPart{p1, p2, {PartNumber: aws.Int32(9), ETag: p3.ETag}}, "InvalidPart"},
		{"no such upload", "k", strings.Repeat("ab", 16), []types.CompletedPart{p1}, "NoSuchUpload"},
		{"another key's upload", "dir/other", id, []types.CompletedPart{p1}, "NoSuchUpload"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := complete(tt.key, tt.id, tt.parts...); s3Code(err) != tt.code {
				t.Fatalf("CompleteMultipartUpload: %v, want %s", err, tt.code)
			}
		})
	}
	part("dir/other", other, 2, last)
	if _, err := complete("dir/other", other, small, types.CompletedPart{PartNumber: aws.Int32(2), ETag: p3.ETag}); s3Code(err) != "EntityTooSmall" {
		t.Fatalf("a small part not last: %v", err)
	}
	if _, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: aws.String(id), PartNumber: aws.Int32(10001), Body: strings.NewReader("x")}); s3Code(err) != "InvalidArgument" {
		t.Fatalf("part 10001: %v", err)
	}
	for _, key := range []string{"k", "dir/other"} {
		if _, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String(key)}); s3Code(err) != "404" {
			t.Fatalf("%s exists after refused completions: %v", key, err)
		}
	}

	// An upload survives a restart of the master.
	c.RestartMaster()
	s = s3Client(c, "davkvtest", "davkvtestsecret")
	out, err := complete("k", id, p1, p2, p3)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, a...), src[1000:5243880]...), last...)
	if etag := aws.ToString(out.ETag); !strings.HasSuffix(etag, `-3"`) {
		t.Fatalf("ETag %s, want a multipart ETag of 3 parts", etag)
	}
	if status, got := c.Get("/mpu/k"); status != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("completed object: %d, %d bytes; want %d", status, len(got), len(want))
	}
	// Completed again with the same parts, as a client whose answer was lost does:
	// S3's answer is the same result; with other parts, the upload is no more.
	if again, err := complete("k", id, p1, p2, p3); err != nil || aws.ToString(again.ETag) != aws.ToString(out.ETag) {
		t.Fatalf("completing again: %v", err)
	}
	if _, err := complete("k", id, p1, p2); s3Code(err) != "NoSuchUpload" {
		t.Fatalf("completing again with other parts: %v", err)
	}

	// Abort: the parts go, the upload is gone.
	if _, err := s.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/other"), UploadId: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("dir/other"), UploadId: aws.String(other)}); s3Code(err) != "NoSuchUpload" {
		t.Fatalf("ListParts after abort: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "parts left after complete and abort", func() bool { return len(c.AllFiles()) == 6 })
	if n := countEntries(t, c, index.UploadSpace) + countEntries(t, c, index.PartSpace); n != 0 {
		t.Fatalf("%d upload and part entries left", n)
	}
}

// TestS3CompleteKeepalive: while a completion assembles a large object, the answer is
// a 200 whose body starts with spaces; the result, or the error, follows them.
func TestS3CompleteKeepalive(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.CompleteKeepalive = time.Millisecond })
	do := func(method, path string, body []byte) *http.Response {
		t.Helper()
		resp := c.Do(method, path, bytes.NewReader(body))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, readAll(t, resp.Body))
		}
		return resp
	}
	do(http.MethodPut, "/keep?x-id=CreateBucket", nil)
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.NewDecoder(do(http.MethodPost, "/keep/k?uploads", nil).Body).Decode(&created); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	list.WriteString("<CompleteMultipartUpload>")
	for n := 1; n <= 4; n++ {
		resp := do(http.MethodPut, fmt.Sprintf("/keep/k?partNumber=%d&uploadId=%s", n, created.UploadID), testenv.RandomBytes(5<<20))
		fmt.Fprintf(&list, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, resp.Header.Get("ETag"))
	}
	list.WriteString("</CompleteMultipartUpload>")
	complete := func() string {
		t.Helper()
		body := readAll(t, do(http.MethodPost, "/keep/k?uploadId="+created.UploadID, []byte(list.String())).Body)
		rest, ok := strings.CutPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n ")
		if !ok {
			t.Fatalf("answer: %.200q", body)
		}
		return strings.TrimLeft(rest, " ")
	}
	// A part lost behind the master's back: the error comes inside the 200.
	lost := map[string][]byte{}
	for _, v := range c.Vols {
		for _, f := range v.Files() {
			if strings.Contains(f, "/00003.") {
				path := filepath.Join(v.Dir, f)
				data, err := os.ReadFile(path)
				if err != nil || os.Remove(path) != nil {
					t.Fatal(err)
				}
				lost[path] = data
			}
		}
	}
	if got := complete(); !strings.HasPrefix(got, "<Error><Code>ServiceUnavailable</Code>") {
		t.Fatalf("completion with a part lost: %.300q", got)
	}
	if status, _ := c.Get("/keep/k"); status != http.StatusNotFound {
		t.Fatalf("the object exists after a failed completion: %d", status)
	}
	// The part back, the same completion succeeds, after its spaces.
	for path, data := range lost {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := complete(); !strings.HasPrefix(got, "<CompleteMultipartUploadResult") {
		t.Fatalf("completion: %.300q", got)
	}
	if status, got := c.Get("/keep/k"); status != http.StatusOK || len(got) != 20<<20 {
		t.Fatalf("completed object: %d, %d bytes", status, len(got))
	}
}

// TestS3UploadsAbandoned: an upload's parts are its own files, which verify finds
// owned while the upload lives; one older than the grace is abandoned, reported by
// verify and removed by verify -fix or by the master; rebuild leaves parts out.
func TestS3UploadsAbandoned(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys = testS3Keys })
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	ctx := context.Background()
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("old")}); err != nil {
		t.Fatal(err)
	}
	start := func(key string) {
		t.Helper()
		out, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("old"), Key: aws.String(key)})
		if err == nil {
			_, err = s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("old"), Key: aws.String(key), UploadId: out.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part")})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	start("a")
	start("b")
	if n := len(c.AllFiles()); n != 6 {
		t.Fatalf("%d files, want 3 replicas of each upload's part", n)
	}
	c.StopMaster()

	verify := func(fix bool, grace time.Duration) string {
		t.Helper()
		cfg := VerifyConfig{ClusterConfig: c.Config.ClusterConfig, CheckOptions: CheckOptions{Fix: fix, UploadGrace: grace}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
		var out bytes.Buffer
		if err := runVerify(ctx, cfg, &out, testLogger(t)); err != nil {
			t.Fatalf("verify: %v\n%s", err, out.String())
		}
		return out.String()
	}
	if out := verify(true, time.Hour); strings.Contains(out, probOrphan) || strings.Contains(out, probAbandoned) || len(c.AllFiles()) != 6 {
		t.Fatalf("verify -fix of live uploads:\n%s", out)
	}
	var rebuilt bytes.Buffer
	if err := runRebuild(ctx, rebuildConfig(c, filepath.Join(t.TempDir(), "rebuilt")), &rebuilt, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rebuilt.String(), "rebuild: 0 keys") || !strings.Contains(rebuilt.String(), "6 parts of multipart uploads") {
		t.Fatalf("rebuild:\n%s", rebuilt.String())
	}

	// Verify -fix removes an abandoned upload...
	idx, err := openIndex(c.Config.DB, false)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	idx.Entries(index.UploadSpace, "", func(id string, _ []byte, _ int64) (bool, error) { ids = append(ids, id); return true, nil })
	b, rev, err := idx.GetEntry(index.UploadSpace, ids[0])
	var u index.MultipartUpload
	if err != nil || u.UnmarshalBinary(b) != nil {
		t.Fatal(err)
	}
	u.Created -= int64(2 * time.Hour)
	b, _ = u.MarshalBinary()
	if _, err := idx.PutEntry(index.UploadSpace, ids[0], b, rev); err != nil {
		t.Fatal(err)
	}
	idx.Close()
	if out := verify(true, time.Hour); !strings.Contains(out, probAbandoned) || len(c.AllFiles()) != 3 {
		t.Fatalf("verify -fix of an abandoned upload: %d files\n%s", len(c.AllFiles()), out)
	}
	// ... and the master the other, at its start, once it is older than -upload-grace.
	c.Config.UploadGrace = time.Millisecond
	c.startMaster()
	testenv.Eventually(t, 10*time.Second, "abandoned upload not removed by the master", func() bool {
		return len(c.AllFiles()) == 0 && countEntries(t, c, index.UploadSpace)+countEntries(t, c, index.PartSpace) == 0
	})
}

// TestS3PartsAtOnce: uploads of one part number at once each stream to files of their
// own, and the one that finishes last is the part, as in S3 (s3-tests'
// test_multipart_resend_first_finishes_last); the one replaced is deleted, and a
// part that finishes after its upload was aborted leaves nothing.
func TestS3PartsAtOnce(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Grace = 100 * time.Millisecond })
	s := s3Client(c, "anyone", "anything")
	ctx := context.Background()
	bucket := aws.String("parts")
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	create := func(t *testing.T, key string) string {
		t.Helper()
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(up.UploadId)
	}
	// beginPart sends an UploadPart of value and its first two chunks, and returns
	// its connection once its write is recorded; the caller sends the rest.
	beginPart := func(t *testing.T, key, id string, value []byte) net.Conn {
		t.Helper()
		conn := rawPut(t, c, fmt.Sprintf("/parts/%s?partNumber=1&uploadId=%s", key, id),
			fmt.Sprintf("Authorization: AWS4-HMAC-SHA256 none\r\nContent-Length: %d\r\n", len(value)), value[:2*chunkSize])
		testenv.Eventually(t, 10*time.Second, "the part's write to begin", func() bool {
			b, _, err := c.Master.index.GetEntry(index.PartSpace, index.PartName(id, 1))
			var p index.UploadPart
			return err == nil && p.UnmarshalBinary(b) == nil && len(p.Writes) == 1
		})
		return conn
	}
	answer := func(t *testing.T, conn net.Conn) (int, string) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag") + body
	}
	noFiles := func(t *testing.T, want int) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, "parts' files left", func() bool { return len(c.AllFiles()) == want })
	}

	t.Run("first begun finishes last", func(t *testing.T) {
		id := create(t, "k")
		first, second := testenv.RandomBytes(3*chunkSize), []byte("the second upload, finished first")
		conn := beginPart(t, "k", id, first)
		p2, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String("k"), UploadId: aws.String(id), PartNumber: aws.Int32(1), Body: bytes.NewReader(second)})
		if err != nil {
			t.Fatalf("second upload of part 1 while the first streams: %v", err)
		}
		conn.Write(first[2*chunkSize:])
		status, etag := answer(t, conn)
		if status != http.StatusOK {
			t.Fatalf("first upload of part 1, finished last: %d %s", status, etag)
		}
		complete := func(etags ...*string) error {
			var parts []types.CompletedPart
			for _, e := range etags {
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(1), ETag: e})
			}
			_, err := s.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String("k"), UploadId: aws.String(id),
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			return err
		}
		if err := complete(p2.ETag); err == nil || !strings.Contains(err.Error(), "InvalidPart") {
			t.Fatalf("complete with the replaced part's ETag: %v, want InvalidPart", err)
		}
		if err := complete(aws.String(etag), p2.ETag); err == nil || !strings.Contains(err.Error(), "InvalidPart") {
			t.Fatalf("complete listing part 1 twice, the replaced one last: %v, want InvalidPart", err)
		}
		// Each upload listed as it finished, as s3-tests does: the last entry counts.
		if err := complete(p2.ETag, aws.String(etag)); err != nil {
			t.Fatalf("complete listing part 1 twice, the last one last: %v", err)
		}
		if status, got := c.Get("/parts/k"); status != http.StatusOK || !bytes.Equal(got, first) {
			t.Fatalf("GET: %d, %d bytes; want the part that finished last", status, len(got))
		}
		noFiles(t, 3)
		if n := countEntries(t, c, index.PartSpace); n != 0 {
			t.Fatalf("%d part entries left", n)
		}
	})

	t.Run("a part finishes after its upload is aborted", func(t *testing.T) {
		id := create(t, "gone")
		v := testenv.RandomBytes(3 * chunkSize)
		conn := beginPart(t, "gone", id, v)
		if _, err := s.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String("gone"), UploadId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		conn.Write(v[2*chunkSize:])
		if status, body := answer(t, conn); status != http.StatusNotFound || !strings.Contains(body, "NoSuchUpload") {
			t.Fatalf("a part finished after the abort: %d %s, want 404 NoSuchUpload", status, body)
		}
		noFiles(t, 3)
		if n := countEntries(t, c, index.PartSpace); n != 0 {
			t.Fatalf("%d part entries left", n)
		}
	})
}
