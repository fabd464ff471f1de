package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"hash/crc64"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/testenv"
)

// TestS3Checksums stores objects with checksums through the AWS SDK for Go, which sends
// and checks them, and reads them back as S3 returns them: in PutObject's and
// UploadPart's answers, on HEAD and GET with x-amz-checksum-mode (a part's, with
// partNumber), in ListParts, in CompleteMultipartUpload's answer (composite, -N, or of
// the whole object), through GetObjectAttributes, and kept by CopyObject; a checksum
// CompleteMultipartUpload is given is checked, BadDigest and nothing stored if wrong.
func TestS3Checksums(t *testing.T) {
	_, s := s3Cluster(t, 3, "sums")
	ctx := context.Background()
	bucket := aws.String("sums")
	value := testenv.RandomBytes(300 << 10)
	sha := sha256.Sum256(value)

	head := func(t *testing.T, key string, mode bool) *s3.HeadObjectOutput {
		t.Helper()
		in := &s3.HeadObjectInput{Bucket: bucket, Key: aws.String(key)}
		if mode {
			in.ChecksumMode = types.ChecksumModeEnabled
		}
		out, err := s.HeadObject(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Run("put", func(t *testing.T) {
		out, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("crc"), Body: bytes.NewReader(value), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil || aws.ToString(out.ChecksumCRC32) != crc32Base64(value) {
			t.Fatalf("PutObject: %v, CRC32 %q, want %q", err, aws.ToString(out.ChecksumCRC32), crc32Base64(value))
		}
		if h := head(t, "crc", false); h.ChecksumCRC32 != nil {
			t.Fatalf("HEAD without checksum mode: CRC32 %q", aws.ToString(h.ChecksumCRC32))
		}
		if h := head(t, "crc", true); aws.ToString(h.ChecksumCRC32) != crc32Base64(value) || h.ChecksumType != types.ChecksumTypeFullObject {
			t.Fatalf("HEAD: CRC32 %q, type %q", aws.ToString(h.ChecksumCRC32), h.ChecksumType)
		}
		// The SDK checks the body it reads against the checksum the answer gives.
		got, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("crc"), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil || !bytes.Equal(b, value) || aws.ToString(got.ChecksumCRC32) != crc32Base64(value) {
			t.Fatalf("GET: %d bytes, %v, CRC32 %q", len(b), err, aws.ToString(got.ChecksumCRC32))
		}
		if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String("sha"), Body: bytes.NewReader(value), ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sha[:]))}); err != nil {
			t.Fatal(err)
		}
		if h := head(t, "sha", true); aws.ToString(h.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sha[:]) {
			t.Fatalf("HEAD: SHA256 %q", aws.ToString(h.ChecksumSHA256))
		}
	})
	t.Run("copy", func(t *testing.T) {
		out, err := s.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String("copied"), CopySource: aws.String("sums/crc")})
		if err != nil || aws.ToString(out.CopyObjectResult.ChecksumCRC32) != crc32Base64(value) {
			t.Fatalf("CopyObject: %v, %+v", err, out)
		}
		out, err = s.CopyObject(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String("copied-sha"), CopySource: aws.String("sums/crc"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
		if err != nil || aws.ToString(out.CopyObjectResult.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sha[:]) {
			t.Fatalf("CopyObject to SHA256: %v, %+v", err, out)
		}
	})

	// parts uploads the parts of an object with the SDK, checksummed with alg (and
	// typ), and returns its completion.
	partA, partB := testenv.RandomBytes(minPartSize), []byte("the last part")
	parts := func(t *testing.T, key string, alg types.ChecksumAlgorithm, typ types.ChecksumType) *s3.CompleteMultipartUploadInput {
		t.Helper()
		up, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(key), ChecksumAlgorithm: alg, ChecksumType: typ})
		if err != nil {
			t.Fatal(err)
		}
		var parts []types.CompletedPart
		for i, p := range [][]byte{partA, partB} {
			out, err := s.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: aws.String(key), UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p), ChecksumAlgorithm: alg})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC64NVME: out.ChecksumCRC64NVME})
		}
		list, err := s.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: aws.String(key), UploadId: up.UploadId})
		if err != nil || len(list.Parts) != 2 || list.ChecksumAlgorithm != alg {
			t.Fatalf("ListParts: %+v, %v", list, err)
		}
		if alg == types.ChecksumAlgorithmCrc32 && aws.ToString(list.Parts[1].ChecksumCRC32) != crc32Base64(partB) {
			t.Fatalf("ListParts: part 2's CRC32 %q", aws.ToString(list.Parts[1].ChecksumCRC32))
		}
		return &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(key), UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	}
	// upload makes an object of parts and returns the completion's answer.
	upload := func(t *testing.T, key string, alg types.ChecksumAlgorithm, typ types.ChecksumType) *s3.CompleteMultipartUploadOutput {
		t.Helper()
		out, err := s.CompleteMultipartUpload(ctx, parts(t, key, alg, typ))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// wrongSum completes in, whose x-amz-checksum-* set is wrong, and checks that it
	// fails with BadDigest and stores nothing; then completes it with the right one.
	wrongSum := func(t *testing.T, in *s3.CompleteMultipartUploadInput, right func()) {
		t.Helper()
		if _, err := s.CompleteMultipartUpload(ctx, in); s3Code(err) != "BadDigest" {
			t.Fatalf("Complete with a wrong checksum: %v, want BadDigest", err)
		}
		if _, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: in.Key}); s3Code(err) != "404" {
			t.Fatalf("HEAD after a Complete with a wrong checksum: %v, want 404", err)
		}
		right()
		if _, err := s.CompleteMultipartUpload(ctx, in); err != nil {
			t.Fatalf("Complete with the right checksum: %v", err)
		}
	}
	// part2 reads part 2 of key with checksum mode: the SDK checks its bytes against
	// the checksum the answer gives, which is the part's.
	part2 := func(t *testing.T, key string) *s3.GetObjectOutput {
		t.Helper()
		got, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key), PartNumber: aws.Int32(2), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil || !bytes.Equal(b, partB) {
			t.Fatalf("GET part 2: %q, %v", b, err)
		}
		return got
	}
	t.Run("multipart, composite", func(t *testing.T) {
		raw := func(b []byte) []byte { return binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)) }
		want := crc32Base64(append(raw(partA), raw(partB)...)) + "-2"
		out := upload(t, "mp", types.ChecksumAlgorithmCrc32, "")
		if aws.ToString(out.ChecksumCRC32) != want || out.ChecksumType != types.ChecksumTypeComposite {
			t.Fatalf("Complete: CRC32 %q (want %q), type %q", aws.ToString(out.ChecksumCRC32), want, out.ChecksumType)
		}
		if h := head(t, "mp", true); aws.ToString(h.ChecksumCRC32) != want || h.ChecksumType != types.ChecksumTypeComposite {
			t.Fatalf("HEAD: CRC32 %q, type %q", aws.ToString(h.ChecksumCRC32), h.ChecksumType)
		}
		attrs, err := s.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: bucket, Key: aws.String("mp"),
			ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize, types.ObjectAttributesStorageClass}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt64(attrs.ObjectSize) != int64(len(partA)+len(partB)) || !strings.HasSuffix(aws.ToString(attrs.ETag), "-2") || attrs.StorageClass != types.StorageClassStandard ||
			aws.ToString(attrs.Checksum.ChecksumCRC32) != want || aws.ToInt32(attrs.ObjectParts.TotalPartsCount) != 2 ||
			aws.ToInt64(attrs.ObjectParts.Parts[1].Size) != int64(len(partB)) || aws.ToString(attrs.ObjectParts.Parts[1].ChecksumCRC32) != crc32Base64(partB) {
			t.Fatalf("GetObjectAttributes: %+v", attrs)
		}
		if got := part2(t, "mp"); aws.ToString(got.ChecksumCRC32) != crc32Base64(partB) || got.ChecksumType != types.ChecksumTypeComposite {
			t.Fatalf("GET part 2: CRC32 %q, type %q", aws.ToString(got.ChecksumCRC32), got.ChecksumType)
		}
		in := parts(t, "mp-given", types.ChecksumAlgorithmCrc32, "")
		in.ChecksumCRC32 = aws.String(crc32Base64(partA) + "-2")
		wrongSum(t, in, func() { in.ChecksumCRC32 = aws.String(want) })
	})
	t.Run("multipart, full object", func(t *testing.T) {
		sum := crc64.Checksum(append(append([]byte{}, partA...), partB...), crc64.MakeTable(0x9a6c9329ac4bc9b5))
		want := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, sum))
		out := upload(t, "full", types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
		if aws.ToString(out.ChecksumCRC64NVME) != want || out.ChecksumType != types.ChecksumTypeFullObject {
			t.Fatalf("Complete: CRC64NVME %q (want %q), type %q", aws.ToString(out.ChecksumCRC64NVME), want, out.ChecksumType)
		}
		partSum := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, crc64.Checksum(partB, crc64.MakeTable(0x9a6c9329ac4bc9b5))))
		if got := part2(t, "full"); aws.ToString(got.ChecksumCRC64NVME) != partSum || got.ChecksumType != types.ChecksumTypeFullObject {
			t.Fatalf("GET part 2: CRC64NVME %q (want %q), type %q", aws.ToString(got.ChecksumCRC64NVME), partSum, got.ChecksumType)
		}
		// A full-object checksum is checked as the object is written, after the 200.
		in := parts(t, "full-given", types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
		in.ChecksumCRC64NVME = aws.String(partSum)
		wrongSum(t, in, func() { in.ChecksumCRC64NVME = aws.String(want) })
		in = parts(t, "other-algorithm", types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject)
		in.ChecksumCRC32 = aws.String(crc32Base64(partB))
		if _, err := s.CompleteMultipartUpload(ctx, in); s3Code(err) != "InvalidRequest" {
			t.Fatalf("Complete with another algorithm's checksum: %v, want InvalidRequest", err)
		}
	})
	t.Run("bad algorithm and type", func(t *testing.T) {
		_, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String("bad"), ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumType: types.ChecksumTypeFullObject})
		if s3Code(err) != "InvalidRequest" {
			t.Fatalf("SHA256 of the whole object: %v", err)
		}
	})
}
