package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"davkv/internal/testenv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// s3Raw sends a request that the SDK cannot make (an empty header, a query as it is),
// signed with the test's keys by the SDK's signer, and returns its status and body.
func s3Raw(t *testing.T, c *testCluster, method, target string, body []byte, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.URL+target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header[http.CanonicalHeaderKey(header[i])] = []string{header[i+1]}
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	creds := aws.Credentials{AccessKeyID: "davkvtest", SecretAccessKey: "davkvtestsecret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestS3Answers checks answers that S3 clients rely on to the letter, each against
// what S3 answers: listings (owners, tokens, what is URL-encoded), an empty
// Content-MD5, a copied range past its source, a Content-Encoding kept as sent, an
// upload completed twice.
func TestS3Answers(t *testing.T) {
	c, s := s3Cluster(t, 3, "ans")
	ctx := context.Background()
	c.Put("/ans/a b/c", []byte("abc"))
	c.Put("/ans/plain", []byte("plain"))

	t.Run("fetch-owner", func(t *testing.T) {
		for _, fetch := range []bool{false, true} {
			out, err := s.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("ans"), FetchOwner: aws.Bool(fetch)})
			if err != nil || len(out.Contents) != 2 {
				t.Fatalf("fetch-owner %v: %+v, %v", fetch, out, err)
			}
			if got := out.Contents[0].Owner != nil && aws.ToString(out.Contents[0].Owner.ID) == s3Owner.ID; got != fetch {
				t.Fatalf("fetch-owner %v: owner %+v", fetch, out.Contents[0].Owner)
			}
		}
		out, err := s.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("ans")})
		if err != nil || out.Contents[0].Owner == nil {
			t.Fatalf("ListObjects V1 lists no owner: %+v, %v", out, err)
		}
	})
	t.Run("empty continuation token", func(t *testing.T) {
		status, body := s3Raw(t, c, http.MethodGet, "/ans?list-type=2&continuation-token=", nil)
		if status != http.StatusOK || !strings.Contains(body, "<ContinuationToken></ContinuationToken>") {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("V1 url encoding", func(t *testing.T) {
		status, body := s3Raw(t, c, http.MethodGet, "/ans?encoding-type=url&prefix=a%20b", nil)
		if status != http.StatusOK || !strings.Contains(body, "<Prefix>a b</Prefix>") || !strings.Contains(body, "<Key>a%20b/c</Key>") {
			t.Fatalf("%d %s", status, body)
		}
		out, err := s.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("ans"), Prefix: aws.String("a b"), EncodingType: types.EncodingTypeUrl})
		// The Go SDK decodes nothing (boto3 decodes what S3 encodes): the key comes
		// encoded, the prefix, which S3 does not encode in V1, as it is.
		if err != nil || aws.ToString(out.Prefix) != "a b" || aws.ToString(out.Contents[0].Key) != "a%20b/c" {
			t.Fatalf("prefix %q, key %q, %v", aws.ToString(out.Prefix), aws.ToString(out.Contents[0].Key), err)
		}
	})
	t.Run("empty Content-MD5", func(t *testing.T) {
		status, body := s3Raw(t, c, http.MethodPut, "/ans/md5", []byte("x"), "Content-MD5", "")
		if status != http.StatusBadRequest || !strings.Contains(body, "<Code>InvalidDigest</Code>") {
			t.Fatalf("%d %s", status, body)
		}
		if _, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ans"), Key: aws.String("md5")}); s3Code(err) != "404" {
			t.Fatalf("stored: %v", err)
		}
	})
	t.Run("Content-Encoding as sent", func(t *testing.T) {
		_, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ans"), Key: aws.String("enc"), Body: strings.NewReader("z"), ContentEncoding: aws.String("deflate, gzip")})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ans"), Key: aws.String("enc")})
		if err != nil || aws.ToString(out.ContentEncoding) != "deflate, gzip" {
			t.Fatalf("%q, %v", aws.ToString(out.ContentEncoding), err)
		}
	})
	t.Run("copied range past the source", func(t *testing.T) {
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("ans"), Key: aws.String("mp")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("ans"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
			CopySource: aws.String("ans/plain"), CopySourceRange: aws.String("bytes=2-5")})
		if code := s3Code(err); code != "InvalidRange" {
			t.Fatalf("got %q, want InvalidRange", code)
		}
		_, err = s.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("ans"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1),
			CopySource: aws.String("ans/plain"), CopySourceRange: aws.String("bytes=3-1")})
		if code := s3Code(err); code != "InvalidArgument" {
			t.Fatalf("got %q, want InvalidArgument", code)
		}
	})
	t.Run("completed twice", func(t *testing.T) {
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("ans"), Key: aws.String("twice")})
		if err != nil {
			t.Fatal(err)
		}
		part, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("ans"), Key: aws.String("twice"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("part one")})
		if err != nil {
			t.Fatal(err)
		}
		in := &s3.CompleteMultipartUploadInput{Bucket: aws.String("ans"), Key: aws.String("twice"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}
		first, err := s.CompleteMultipartUpload(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.CompleteMultipartUpload(ctx, in)
		if err != nil || aws.ToString(again.ETag) != aws.ToString(first.ETag) {
			t.Fatalf("again: %+v, %v; first %s", again, err, aws.ToString(first.ETag))
		}
		in.MultipartUpload.Parts[0].ETag = aws.String(`"00000000000000000000000000000000"`)
		if _, err := s.CompleteMultipartUpload(ctx, in); s3Code(err) != "NoSuchUpload" {
			t.Fatalf("again with other parts: %v, want NoSuchUpload", err)
		}
	})
}

// TestS3Versions lists an unversioned bucket's objects as versions: each its one
// version "null", in pages, and the bucket's versioning as never enabled.
func TestS3Versions(t *testing.T) {
	c, s := s3Cluster(t, 3, "ver")
	ctx := context.Background()
	for _, k := range []string{"a", "b", "dir/c"} {
		c.Put("/ver/"+k, []byte(k))
	}
	v, err := s.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("ver")})
	if err != nil || v.Status != "" {
		t.Fatalf("GetBucketVersioning: %+v, %v", v, err)
	}
	var got []string
	p := s3.NewListObjectVersionsPaginator(s, &s3.ListObjectVersionsInput{Bucket: aws.String("ver"), MaxKeys: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) != "null" || !aws.ToBool(v.IsLatest) || aws.ToInt64(v.Size) != int64(len(aws.ToString(v.Key))) {
				t.Fatalf("version of %s: %s, latest %v, %d bytes", aws.ToString(v.Key), aws.ToString(v.VersionId), aws.ToBool(v.IsLatest), aws.ToInt64(v.Size))
			}
			got = append(got, aws.ToString(v.Key))
		}
	}
	if strings.Join(got, ",") != "a,b,dir/c" {
		t.Fatalf("versions %q", got)
	}
	out, err := s.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("ver"), Delimiter: aws.String("/")})
	if err != nil || len(out.Versions) != 2 || len(out.CommonPrefixes) != 1 || aws.ToString(out.CommonPrefixes[0].Prefix) != "dir/" {
		t.Fatalf("with a delimiter: %+v, %v", out, err)
	}
	if _, err := s.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("ver"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); s3Code(err) != "NotImplemented" {
		t.Fatalf("PutBucketVersioning: %v, want NotImplemented", err)
	}
}

// TestS3ReadOptions reads objects with what download managers and presigned links ask
// for: one part of a multipart object (partNumber), the answer's headers overridden
// (response-*), the one version "null".
func TestS3ReadOptions(t *testing.T) {
	c, s := s3Cluster(t, 3, "rdo")
	ctx := context.Background()
	c.Put("/rdo/whole", []byte("whole value"))
	first, second := testenv.RandomBytes(minPartSize), []byte("second part")
	up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("rdo"), Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, b := range [][]byte{first, second} {
		p, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("rdo"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: p.ETag})
	}
	if _, err := s.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("rdo"), Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		in    s3.GetObjectInput
		want  []byte
		code  string
		parts int32 // x-amz-mp-parts-count
	}{
		{"part 1", s3.GetObjectInput{Key: aws.String("mp"), PartNumber: aws.Int32(1)}, first, "", 2},
		{"part 2", s3.GetObjectInput{Key: aws.String("mp"), PartNumber: aws.Int32(2)}, second, "", 2},
		{"part 3 of 2", s3.GetObjectInput{Key: aws.String("mp"), PartNumber: aws.Int32(3)}, nil, "InvalidPartNumber", 0},
		{"part 0", s3.GetObjectInput{Key: aws.String("mp"), PartNumber: aws.Int32(0)}, nil, "InvalidArgument", 0},
		{"part and range", s3.GetObjectInput{Key: aws.String("mp"), PartNumber: aws.Int32(1), Range: aws.String("bytes=0-1")}, nil, "InvalidRequest", 0},
		{"part 1 of a value written whole", s3.GetObjectInput{Key: aws.String("whole"), PartNumber: aws.Int32(1)}, []byte("whole value"), "", 0},
		{"part 2 of a value written whole", s3.GetObjectInput{Key: aws.String("whole"), PartNumber: aws.Int32(2)}, nil, "InvalidPartNumber", 0},
		{"version null", s3.GetObjectInput{Key: aws.String("whole"), VersionId: aws.String("null")}, []byte("whole value"), "", 0},
		{"another version", s3.GetObjectInput{Key: aws.String("whole"), VersionId: aws.String("3HL4kqtJlcpXroDTDmJ")}, nil, "InvalidArgument", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Bucket = aws.String("rdo")
			out, err := s.GetObject(ctx, &tt.in)
			if code := s3Code(err); code != tt.code {
				t.Fatalf("got %v, want %q", err, tt.code)
			}
			if err != nil {
				return
			}
			defer out.Body.Close()
			got, err := io.ReadAll(out.Body)
			if err != nil || !bytes.Equal(got, tt.want) || aws.ToInt32(out.PartsCount) != tt.parts {
				t.Fatalf("%d bytes (want %d), %d parts (want %d), %v", len(got), len(tt.want), aws.ToInt32(out.PartsCount), tt.parts, err)
			}
		})
	}
	t.Run("head of a part", func(t *testing.T) {
		out, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("rdo"), Key: aws.String("mp"), PartNumber: aws.Int32(2)})
		if err != nil || aws.ToInt64(out.ContentLength) != int64(len(second)) || aws.ToInt32(out.PartsCount) != 2 {
			t.Fatalf("%+v, %v", out, err)
		}
	})
	t.Run("overrides", func(t *testing.T) {
		out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rdo"), Key: aws.String("whole"), ResponseContentType: aws.String("text/plain"),
			ResponseContentDisposition: aws.String(`attachment; filename="w.txt"`), ResponseCacheControl: aws.String("no-cache"),
			ResponseContentEncoding: aws.String("identity"), ResponseContentLanguage: aws.String("de"), ResponseExpires: aws.Time(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))})
		if err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
		got := []string{aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition), aws.ToString(out.CacheControl), aws.ToString(out.ContentEncoding),
			aws.ToString(out.ContentLanguage), aws.ToString(out.ExpiresString)}
		want := []string{"text/plain", `attachment; filename="w.txt"`, "no-cache", "identity", "de", "Wed, 02 Jan 2030 03:04:05 GMT"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("presigned link with a file name", func(t *testing.T) {
		link, err := s3.NewPresignClient(s).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("rdo"), Key: aws.String("whole"),
			ResponseContentDisposition: aws.String(`attachment; filename="w.txt"`)})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(link.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "whole value" || resp.Header.Get("Content-Disposition") != `attachment; filename="w.txt"` {
			t.Fatalf("%d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Disposition"))
		}
	})
	t.Run("delete version null", func(t *testing.T) {
		if _, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("rdo"), Key: aws.String("whole"), VersionId: aws.String("null")}); err != nil {
			t.Fatal(err)
		}
		if status, _ := c.Get("/rdo/whole"); status != http.StatusNotFound {
			t.Fatalf("after DeleteObject of version null: %d", status)
		}
	})
}

// TestS3ConditionalWrites writes with If-None-Match (* or ETags) and If-Match through PutObject,
// CopyObject and CompleteMultipartUpload: each precondition that fails is S3's error and
// changes nothing; one that held when a completion began but not once it wrote, because
// a native PUT came between, is ConditionalRequestConflict.
func TestS3ConditionalWrites(t *testing.T) {
	c, s := s3Cluster(t, 3, "cond")
	ctx := context.Background()
	c.Put("/cond/src", []byte("source"))
	value := func(key string) string {
		status, b := c.Get("/cond/" + key)
		if status != http.StatusOK {
			return fmt.Sprint(status)
		}
		return string(b)
	}
	etag := func(key string) *string { return aws.String(`"` + c.Record("/cond/"+key).MD5 + `"`) }
	put := func(key, v string, f func(*s3.PutObjectInput)) error {
		in := &s3.PutObjectInput{Bucket: aws.String("cond"), Key: aws.String(key), Body: strings.NewReader(v)}
		f(in)
		_, err := s.PutObject(ctx, in)
		return err
	}
	copyTo := func(key string, f func(*s3.CopyObjectInput)) error {
		in := &s3.CopyObjectInput{Bucket: aws.String("cond"), Key: aws.String(key), CopySource: aws.String("cond/src")}
		f(in)
		_, err := s.CopyObject(ctx, in)
		return err
	}
	steps := []struct {
		name string
		do   func() error
		code string
		key  string
		want string // the key's value after
	}{
		{"put if none, new", func() error { return put("k", "one", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }) }, "", "k", "one"},
		{"put if none, exists", func() error { return put("k", "two", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") }) }, "PreconditionFailed", "k", "one"},
		{"put if-match, its etag", func() error { return put("k", "three", func(in *s3.PutObjectInput) { in.IfMatch = etag("k") }) }, "", "k", "three"},
		{"put if-match, another etag", func() error {
			return put("k", "four", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"5d41402abc4b2a76b9719d911017c592"`) })
		}, "PreconditionFailed", "k", "three"},
		{"put if-match *", func() error { return put("k", "five", func(in *s3.PutObjectInput) { in.IfMatch = aws.String("*") }) }, "", "k", "five"},
		{"put if-match, no such key", func() error { return put("nokey", "x", func(in *s3.PutObjectInput) { in.IfMatch = aws.String("*") }) }, "NoSuchKey", "nokey", "404"},
		{"put if-none-match its etag", func() error { return put("k", "six", func(in *s3.PutObjectInput) { in.IfNoneMatch = etag("k") }) }, "PreconditionFailed", "k", "five"},
		{"put if-none-match another etag", func() error {
			return put("k", "five", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String(`"5d41402abc4b2a76b9719d911017c592"`) })
		}, "", "k", "five"},
		{"put if-none-match an etag, no such key", func() error { return put("none", "n", func(in *s3.PutObjectInput) { in.IfNoneMatch = etag("k") }) }, "", "none", "n"},
		{"copy if none, exists", func() error { return copyTo("k", func(in *s3.CopyObjectInput) { in.IfNoneMatch = aws.String("*") }) }, "PreconditionFailed", "k", "five"},
		{"copy if-match, another etag", func() error { return copyTo("k", func(in *s3.CopyObjectInput) { in.IfMatch = etag("src") }) }, "PreconditionFailed", "k", "five"},
		{"copy if-match, its etag", func() error { return copyTo("k", func(in *s3.CopyObjectInput) { in.IfMatch = etag("k") }) }, "", "k", "source"},
		{"copy if none, new", func() error { return copyTo("c", func(in *s3.CopyObjectInput) { in.IfNoneMatch = aws.String("*") }) }, "", "c", "source"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if code := s3Code(st.do()); code != st.code {
				t.Fatalf("got %q, want %q", code, st.code)
			}
			if got := value(st.key); got != st.want {
				t.Fatalf("%s is %q, want %q", st.key, got, st.want)
			}
		})
	}

	// upload starts an upload of key with one part, and returns its completion.
	upload := func(t *testing.T, key, v string) *s3.CompleteMultipartUploadInput {
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("cond"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("cond"), Key: aws.String(key), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader(v)})
		if err != nil {
			t.Fatal(err)
		}
		return &s3.CompleteMultipartUploadInput{Bucket: aws.String("cond"), Key: aws.String(key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p.ETag}}}}
	}
	t.Run("complete", func(t *testing.T) {
		in := upload(t, "k", "uploaded")
		in.IfNoneMatch = aws.String("*")
		_, err := s.CompleteMultipartUpload(ctx, in)
		var re interface{ HTTPStatusCode() int }
		if s3Code(err) != "PreconditionFailed" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
			t.Fatalf("if none, exists: %v, want a 412", err)
		}
		in.IfNoneMatch, in.IfMatch = nil, aws.String(`"5d41402abc4b2a76b9719d911017c592"`)
		if _, err := s.CompleteMultipartUpload(ctx, in); s3Code(err) != "PreconditionFailed" {
			t.Fatalf("if-match, another etag: %v", err)
		}
		if got := value("k"); got != "source" {
			t.Fatalf("k is %q after failed completions", got)
		}
		in.IfMatch = etag("k")
		if _, err := s.CompleteMultipartUpload(ctx, in); err != nil {
			t.Fatalf("if-match, its etag: %v", err)
		}
		if got := value("k"); got != "uploaded" {
			t.Fatalf("k is %q, want uploaded", got)
		}
	})
	t.Run("complete, a write between", func(t *testing.T) {
		in := upload(t, "race", "uploaded")
		in.IfNoneMatch = aws.String("*")
		// A native PUT of the key that holds its lock while its body trickles in: its
		// first chunk goes out before it records its write.
		native := testenv.RandomBytes(2 * chunkSize)
		pr, pw := io.Pipe()
		putDone := make(chan *http.Response, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPut, c.URL+"/cond/race", pr)
			req.ContentLength = int64(len(native))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				resp = &http.Response{}
			}
			putDone <- resp
		}()
		go pw.Write(native[:chunkSize+1])
		testenv.Eventually(t, 10*time.Second, "the native PUT to begin", func() bool {
			rec, err := c.Master.index.Get("/cond/race")
			return err == nil && rec.Busy
		})
		completed := make(chan error, 1)
		go func() {
			_, err := s.CompleteMultipartUpload(ctx, in)
			completed <- err
		}()
		time.Sleep(300 * time.Millisecond) // the completion waits on the key's lock
		pw.Write(native[chunkSize+1:])
		pw.Close()
		if resp := <-putDone; resp.StatusCode != http.StatusCreated {
			t.Fatalf("native PUT: %d", resp.StatusCode)
		}
		if err := <-completed; s3Code(err) != "ConditionalRequestConflict" {
			t.Fatalf("completion: %v, want ConditionalRequestConflict", err)
		}
		if got := value("race"); got != string(native) {
			t.Fatalf("race is %d bytes, not the native PUT's", len(got))
		}
	})
}
