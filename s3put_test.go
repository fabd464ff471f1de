package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/layout"
	"davkv/internal/s3proto"
	"davkv/internal/testenv"
)

// TestS3PutObject writes objects with the AWS SDK for Go, as it sends them by default:
// new, empty, large (streamed in chunks), overwritten, with metadata; and reads them
// back through S3 and the native API.
func TestS3PutObject(t *testing.T) {
	c, s := s3Cluster(t, 3, "media")
	ctx := context.Background()
	get := func(t *testing.T, key string) ([]byte, *s3.GetObjectOutput) {
		t.Helper()
		out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b, out
	}
	put := func(t *testing.T, key string, value []byte, in *s3.PutObjectInput) *s3.PutObjectOutput {
		t.Helper()
		if in == nil {
			in = &s3.PutObjectInput{}
		}
		in.Bucket, in.Key, in.Body = aws.String("media"), aws.String(key), bytes.NewReader(value)
		out, err := s.PutObject(ctx, in)
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		sum := md5.Sum(value)
		if want := `"` + hex.EncodeToString(sum[:]) + `"`; aws.ToString(out.ETag) != want {
			t.Fatalf("put %s: ETag %s, want %s", key, aws.ToString(out.ETag), want)
		}
		return out
	}

	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17, 5 << 20} {
		t.Run(fmt.Sprintf("size %d", size), func(t *testing.T) {
			key := fmt.Sprintf("sizes/%d", size)
			value := testenv.RandomBytes(size)
			put(t, key, value, nil)
			if got, _ := get(t, key); !bytes.Equal(got, value) {
				t.Fatalf("got %d bytes, want %d", len(got), size)
			}
			// The native API sees the same value.
			if status, got := c.Get("/media/" + key); status != http.StatusOK || !bytes.Equal(got, value) {
				t.Fatalf("native GET: %d, %d bytes, want %d", status, len(got), size)
			}
		})
	}

	t.Run("overwrite", func(t *testing.T) {
		key := "over/write"
		var last []byte
		var gen uint64
		for i, size := range []int{100, 2*chunkSize + 5, 10, 0, 3 * chunkSize} {
			last = testenv.RandomBytes(size)
			put(t, key, last, nil)
			got, _ := get(t, key)
			if !bytes.Equal(got, last) {
				t.Fatalf("write %d: read %d bytes, want %d", i, len(got), size)
			}
			// Every write has a generation of its own, after the one it replaced.
			rec := c.Record("/media/" + key)
			if rec.Gen <= gen {
				t.Fatalf("write %d: generation %#x, not after %#x", i, rec.Gen, gen)
			}
			gen = rec.Gen
		}
		// With no grace (as in these tests), the replaced generations go at once.
		testenv.Eventually(t, 10*time.Second, "old generations still on the volumes", func() bool {
			rec := c.Record("/media/" + key)
			files := keyFiles(c, "/media/"+key)
			return len(rec.Stale) == 0 && len(files) == 3 && files[0].Gen == gen && files[2].Gen == gen
		})
	})

	t.Run("metadata", func(t *testing.T) {
		key := "meta/doc.txt"
		put(t, key, []byte("hello"), &s3.PutObjectInput{
			ContentType: aws.String("text/plain"), CacheControl: aws.String("max-age=60"),
			ContentDisposition: aws.String(`attachment; filename="doc.txt"`),
			Metadata:           map[string]string{"camera": "front-left", "Camera-Id": "7"},
		})
		_, out := get(t, key)
		if aws.ToString(out.ContentType) != "text/plain" || aws.ToString(out.CacheControl) != "max-age=60" ||
			aws.ToString(out.ContentDisposition) != `attachment; filename="doc.txt"` || out.Metadata["camera"] != "front-left" || out.Metadata["camera-id"] != "7" {
			t.Fatalf("GetObject headers: type %q cache %q disposition %q meta %v", aws.ToString(out.ContentType),
				aws.ToString(out.CacheControl), aws.ToString(out.ContentDisposition), out.Metadata)
		}
		head, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
		if err != nil || aws.ToString(head.ContentType) != "text/plain" || head.Metadata["camera"] != "front-left" {
			t.Fatalf("HeadObject: %+v, %v", head, err)
		}
		// An overwrite replaces the metadata with its own.
		put(t, key, []byte("hello again"), nil)
		if _, out := get(t, key); out.Metadata["camera"] != "" || aws.ToString(out.ContentType) != "application/octet-stream" {
			t.Fatalf("after overwrite: type %q meta %v", aws.ToString(out.ContentType), out.Metadata)
		}
	})

	t.Run("bad input stores nothing", func(t *testing.T) {
		key := "bad/one"
		put(t, key, []byte("kept"), nil)
		tests := []struct {
			name string
			in   *s3.PutObjectInput
			code string
		}{
			{"wrong Content-MD5", &s3.PutObjectInput{ContentMD5: aws.String("XrY7u+Ae7tCTyyK7j1rNww==")}, "BadDigest"},
			{"malformed Content-MD5", &s3.PutObjectInput{ContentMD5: aws.String("nope")}, "InvalidDigest"},
			{"wrong CRC32", &s3.PutObjectInput{ChecksumCRC32: aws.String("AAAAAA==")}, "BadDigest"},
			{"too much metadata", &s3.PutObjectInput{Metadata: map[string]string{"big": strings.Repeat("x", 2100)}}, "MetadataTooLarge"},
			{"exists, If-None-Match", &s3.PutObjectInput{IfNoneMatch: aws.String("*")}, "PreconditionFailed"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.in.Bucket, tt.in.Key, tt.in.Body = aws.String("media"), aws.String(key), strings.NewReader("changed")
				if _, err := s.PutObject(ctx, tt.in); s3Code(err) != tt.code {
					t.Fatalf("PutObject: %v, want %s", err, tt.code)
				}
				if got, _ := get(t, key); string(got) != "kept" {
					t.Fatalf("value now %q, want %q", got, "kept")
				}
			})
		}
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k"), Body: strings.NewReader("x")}); s3Code(err) != "NoSuchBucket" {
			t.Fatalf("PutObject into a missing bucket: %v", err)
		}
	})
}

// TestS3PutAWSChunked streams values as aws-chunked bodies through a master that checks
// signatures: signed chunk by chunk, with a signed or unsigned trailing checksum. Every
// bad body is refused with its S3 error, and the key keeps its value, with no new file
// on any volume.
func TestS3PutAWSChunked(t *testing.T) {
	c, s := s3Cluster(t, 3, "media")
	ctx := context.Background()
	const key = "chunked/value"
	old := []byte("old verified value")
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key), Body: bytes.NewReader(old)}); err != nil {
		t.Fatal(err)
	}
	// send PUTs payload framed by frame, as a client signing with mode does.
	send := func(t *testing.T, mode string, payload []byte, trailer string, frame func(auth *s3proto.Auth) []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, c.URL+"/media/"+key, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
		if trailer != "" {
			req.Header.Set("X-Amz-Trailer", trailer)
		}
		now := time.Now().UTC()
		auth := s3proto.Auth{SigningKey: s3proto.SigningKey("davkvtestsecret", now.Format("20060102"), "us-east-1"),
			Scope: now.Format("20060102") + "/us-east-1/s3/aws4_request", AmzDate: now.Format(s3proto.AmzDateFormat), Signature: strings.Repeat("0", 64)}
		req.ContentLength = int64(len(frame(&auth))) // signatures have a fixed length
		req.Header.Set("X-Amz-Content-Sha256", mode)
		creds := aws.Credentials{AccessKeyID: "davkvtest", SecretAccessKey: "davkvtestsecret"}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, mode, "s3", "us-east-1", now); err != nil {
			t.Fatal(err)
		}
		_, auth.Signature, _ = strings.Cut(req.Header.Get("Authorization"), "Signature=")
		body := frame(&auth)
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	value := func(t *testing.T) []byte {
		t.Helper()
		out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}

	big, exact := testenv.RandomBytes(2*chunkSize+1000), testenv.RandomBytes(2*chunkSize)
	crc := "x-amz-checksum-crc32:" + crc32Base64(big)
	files := c.AllFiles()
	bad := []struct {
		name, mode, trailer string
		frame               func(auth *s3proto.Auth) []byte
		code                string
	}{
		{"a chunk's data changed", s3proto.StreamingSigned, "", func(a *s3proto.Auth) []byte {
			b := s3proto.EncodeChunked(big, 64<<10, a)
			b[len(b)-1000] ^= 1
			return b
		}, "SignatureDoesNotMatch"},
		{"wrong trailing checksum", s3proto.StreamingUnsignedTrailer, "x-amz-checksum-crc32", func(a *s3proto.Auth) []byte {
			return s3proto.EncodeChunked(big, 64<<10, nil, "x-amz-checksum-crc32:AAAAAA==")
		}, "BadDigest"},
		{"trailer signature wrong", s3proto.StreamingSignedTrailer, "x-amz-checksum-crc32", func(a *s3proto.Auth) []byte {
			return bytes.Replace(s3proto.EncodeChunked(big, 64<<10, a, crc), []byte("signature:"), []byte("signature:f"), 1)
		}, "SignatureDoesNotMatch"},
		{"truncated", s3proto.StreamingSigned, "", func(a *s3proto.Auth) []byte {
			b := s3proto.EncodeChunked(big, 64<<10, a)
			return b[:len(b)-200]
		}, "IncompleteBody"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, tt.mode, big, tt.trailer, tt.frame)
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), "<Code>"+tt.code+"</Code>") {
				t.Fatalf("%s: %s, want %s", resp.Status, b, tt.code)
			}
			if got := value(t); !bytes.Equal(got, old) {
				t.Fatalf("value now %d bytes, want the old one", len(got))
			}
			if now := c.AllFiles(); !slices.Equal(now, files) {
				t.Fatalf("files on volumes changed:\n%q\nwant\n%q", now, files)
			}
		})
	}

	good := []struct {
		name, mode, trailer string
		frame               func(auth *s3proto.Auth) []byte
	}{
		{"signed", s3proto.StreamingSigned, "", func(a *s3proto.Auth) []byte { return s3proto.EncodeChunked(big, 64<<10, a) }},
		{"signed, trailing checksum", s3proto.StreamingSignedTrailer, "x-amz-checksum-crc32", func(a *s3proto.Auth) []byte { return s3proto.EncodeChunked(big, 64<<10, a, crc) }},
		{"unsigned, trailing checksum", s3proto.StreamingUnsignedTrailer, "x-amz-checksum-crc32", func(a *s3proto.Auth) []byte { return s3proto.EncodeChunked(big, 8<<10, nil, crc) }},
		// The decoder ends apart from the last bytes: a value that fills its last
		// buffer exactly must not wait for that buffer twice.
		{"ending at a buffer's end", s3proto.StreamingSigned, "", func(a *s3proto.Auth) []byte { return s3proto.EncodeChunked(exact, 64<<10, a) }},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			payload := big
			if tt.name == "ending at a buffer's end" {
				payload = exact
			}
			resp := send(t, tt.mode, payload, tt.trailer, tt.frame)
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %s", resp.Status, b)
			}
			if got := value(t); !bytes.Equal(got, payload) {
				t.Fatalf("read %d bytes back, want %d", len(got), len(payload))
			}
			if enc := c.Record("/media/" + key).Meta; len(enc) != 0 {
				t.Fatalf("stored headers %v: aws-chunked is not the value's encoding", enc)
			}
		})
	}
}

// keyFiles returns the files of key on every volume, oldest generation first.
func keyFiles(c *testCluster, key string) []layout.VolumeFile {
	var files []layout.VolumeFile
	for _, f := range c.AllFiles() {
		_, path, _ := strings.Cut(f, "/")
		if vf, err := layout.ParseVolumePath(path); err == nil && vf.Key == key {
			files = append(files, vf)
		}
	}
	slices.SortFunc(files, func(a, b layout.VolumeFile) int { return cmp.Compare(a.Gen, b.Gen) })
	return files
}

// TestS3OverwriteFails: an overwrite that cannot finish (a volume down before it, a
// volume killed during it, a client that hangs up) leaves the old value whole and
// readable, its record as it was, and no file of the failed write on any volume.
func TestS3OverwriteFails(t *testing.T) {
	c := startCluster(t, 3, nil) // no keys: requests need no signature
	old := testenv.RandomBytes(2*chunkSize + 3)
	put := func(value io.Reader) *http.Response {
		return c.Do(http.MethodPut, "/media/k?x-id=PutObject", value)
	}
	if resp := c.Do(http.MethodPut, "/media", nil, "Authorization", "AWS4-HMAC-SHA256 none"); resp.StatusCode != http.StatusOK {
		t.Fatalf("CreateBucket: %s", resp.Status)
	}
	if resp := put(bytes.NewReader(old)); resp.StatusCode != http.StatusOK {
		t.Fatalf("first PutObject: %s", resp.Status)
	}
	want := c.Record("/media/k")
	unchanged := func(t *testing.T) {
		t.Helper()
		// What a volume that was down holds goes once it is back, with the trace.
		testenv.Eventually(t, 20*time.Second, "files or trace of the failed write left", func() bool {
			files := keyFiles(c, "/media/k")
			rec := c.Record("/media/k")
			return len(files) == 3 && files[2].Gen == want.Gen && len(rec.Stale) == 0 && len(rec.Writes) == 0
		})
		rec := c.Record("/media/k")
		if rec.Gen != want.Gen || !slices.Equal(rec.Volumes, want.Volumes) || rec.MD5 != want.MD5 {
			t.Fatalf("record now %+v, want %+v", rec, want)
		}
		if status, got := c.Get("/media/k"); status != http.StatusOK || !bytes.Equal(got, old) {
			t.Fatalf("GET: %d, %d bytes; want the old value", status, len(got))
		}
	}

	t.Run("volume down", func(t *testing.T) {
		c.Vols[1].Stop()
		if resp := put(bytes.NewReader(testenv.RandomBytes(100))); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("PutObject with a volume down: %s", resp.Status)
		}
		if err := c.Vols[1].Start(); err != nil {
			t.Fatal(err)
		}
		unchanged(t)
	})

	t.Run("volume killed mid-write", func(t *testing.T) {
		testenv.Eventually(t, 10*time.Second, "volume not back up", func() bool { return c.Master.health.Up(c.Vols[1].Addr) })
		resp := failMidUpload(func(body io.Reader) *http.Response {
			req, err := http.NewRequest(http.MethodPut, c.URL+"/media/k?x-id=PutObject", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = 40 * chunkSize // S3 wants a length
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return &http.Response{StatusCode: 599, Status: err.Error(), Body: http.NoBody}
			}
			resp.Body.Close()
			return resp
		}, c.Vols[2].Kill)
		if resp.StatusCode < 500 {
			t.Fatalf("PutObject: %s, want 5xx", resp.Status)
		}
		if err := c.Vols[2].Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "volume not back up", func() bool { return c.Master.health.Up(c.Vols[2].Addr) })
		unchanged(t)
	})

	t.Run("client hangs up", func(t *testing.T) {
		conn := rawPut(t, c, "/media/k?x-id=PutObject", fmt.Sprintf("Content-Length: %d\r\n", 10*chunkSize), testenv.RandomBytes(3*chunkSize))
		testenv.Eventually(t, 10*time.Second, "overwrite not in flight", func() bool { return len(c.Record("/media/k").Writes) > 0 })
		conn.Close()
		unchanged(t)
	})
}

// crc32Base64 is b's x-amz-checksum-crc32.
func crc32Base64(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

// TestS3ConcurrentPuts sends writes of one key side by side, as S3 clients do: two
// PutObjects from one thread (both begun, then the second's body, then the first's), and a
// CompleteMultipartUpload while a PutObject streams. None waits for another's body;
// each is answered, the write that finished last is the value, and once the grace has
// passed only its files are left.
func TestS3ConcurrentPuts(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Grace = 100 * time.Millisecond })
	if resp := c.Do(http.MethodPut, "/race", nil, "Authorization", "AWS4-HMAC-SHA256 none"); resp.StatusCode != http.StatusOK {
		t.Fatalf("CreateBucket: %s", resp.Status)
	}
	answer := func(t *testing.T, conn net.Conn) int {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	onlyFiles := func(t *testing.T, key string) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, "other generations' files left", func() bool {
			rec := c.Record(key)
			files := keyFiles(c, key)
			return len(files) == 3 && files[0].Gen == rec.Gen && files[2].Gen == rec.Gen && len(rec.Writes) == 0 && len(rec.Stale) == 0
		})
	}

	// beginPut sends a PutObject of value to key and the first two chunks of its body,
	// and returns its connection once its write is recorded, in flight; the caller
	// sends the rest from value[2*chunkSize:].
	beginPut := func(t *testing.T, key string, value []byte) net.Conn {
		t.Helper()
		conn := rawPut(t, c, key+"?x-id=PutObject", fmt.Sprintf("Content-Length: %d\r\n", len(value)), value[:2*chunkSize])
		testenv.Eventually(t, 10*time.Second, "the PutObject to begin", func() bool {
			rec, err := c.Master.index.Get(key)
			return err == nil && len(rec.Writes) == 1
		})
		return conn
	}

	t.Run("two puts from one thread", func(t *testing.T) {
		a, b := testenv.RandomBytes(3*chunkSize), testenv.RandomBytes(3*chunkSize+1)
		header := func(v []byte) string { return fmt.Sprintf("Content-Length: %d\r\n", len(v)) }
		connA := rawPut(t, c, "/race/k?x-id=PutObject", header(a), nil)
		connB := rawPut(t, c, "/race/k?x-id=PutObject", header(b), nil)
		time.Sleep(100 * time.Millisecond) // both requests are in
		// The second one's body first: the first one, begun, must not hold it up.
		connB.Write(b)
		if status := answer(t, connB); status != http.StatusOK {
			t.Fatalf("second PutObject: %d", status)
		}
		connA.Write(a)
		if status := answer(t, connA); status != http.StatusOK {
			t.Fatalf("first PutObject: %d", status)
		}
		// The first one's write finished last.
		if status, got := c.Get("/race/k"); status != http.StatusOK || !bytes.Equal(got, a) {
			t.Fatalf("GET: %d, %d bytes; want the first request's value, whose write finished last", status, len(got))
		}
		onlyFiles(t, "/race/k")
	})

	t.Run("complete while a put streams", func(t *testing.T) {
		s := s3Client(c, "anyone", "anything")
		ctx := context.Background()
		put := testenv.RandomBytes(4 * chunkSize)
		conn := beginPut(t, "/race/mp", put)
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("race"), Key: aws.String("mp")})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("race"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("completed")})
		if err != nil {
			t.Fatal(err)
		}
		done, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := s.CompleteMultipartUpload(done, &s3.CompleteMultipartUploadInput{Bucket: aws.String("race"), Key: aws.String("mp"), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p.ETag}}}}); err != nil {
			t.Fatalf("CompleteMultipartUpload while a PutObject streams: %v", err)
		}
		conn.Write(put[2*chunkSize:])
		if status := answer(t, conn); status != http.StatusOK {
			t.Fatalf("PutObject: %d", status)
		}
		if status, got := c.Get("/race/mp"); status != http.StatusOK || !bytes.Equal(got, put) {
			t.Fatalf("GET: %d, %d bytes; want the PutObject's value, which finished last", status, len(got))
		}
		onlyFiles(t, "/race/mp")
	})

	t.Run("a native put races an S3 write of a new key", func(t *testing.T) {
		v := testenv.RandomBytes(3 * chunkSize)
		conn := beginPut(t, "/race/new", v)
		if resp := c.Do(http.MethodPut, "/race/new", strings.NewReader("native")); resp.StatusCode != http.StatusConflict {
			t.Fatalf("native PUT during an S3 write of a new key: %s, want 409", resp.Status)
		}
		conn.Write(v[2*chunkSize:])
		if status := answer(t, conn); status != http.StatusOK {
			t.Fatalf("PutObject: %d", status)
		}
		if status, got := c.Get("/race/new"); status != http.StatusOK || !bytes.Equal(got, v) {
			t.Fatalf("GET: %d, %d bytes", status, len(got))
		}
	})
}
