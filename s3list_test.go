package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/index"
)

// TestS3ListObjects lists, through the AWS SDK for Go, keys written with the native API:
// prefixes, delimiters, pages of both versions, start-after, URL encoding, and keys that
// XML and URLs must escape.
func TestS3ListObjects(t *testing.T) {
	c, s := s3Cluster(t, 3, "photos")
	ctx := context.Background()
	keys := []string{"a.txt", "dir/1", "dir/2", "dir/sub/3", "e&<>+ x.txt", "z", "ünï/ö"}
	for _, k := range keys {
		c.Put("/photos/"+k, []byte(k))
	}
	// Not the bucket's, or not live: never listed.
	c.Put("/photos", []byte("a key, not a bucket"))
	c.Put("/photosx/y", []byte("another bucket's"))
	c.Put("/photos/gone", []byte("unlinked"))
	if resp := c.Do("UNLINK", "/photos/gone", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("UNLINK: %d", resp.StatusCode)
	}

	// v2 lists with the paginator, max keys a page, and returns keys and prefixes.
	v2 := func(t *testing.T, in s3.ListObjectsV2Input) (got []string) {
		in.Bucket = aws.String("photos")
		p := s3.NewListObjectsV2Paginator(s, &in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if int(aws.ToInt32(out.KeyCount)) != len(out.Contents)+len(out.CommonPrefixes) {
				t.Fatalf("KeyCount %d for %d keys and %d prefixes", aws.ToInt32(out.KeyCount), len(out.Contents), len(out.CommonPrefixes))
			}
			got = append(got, pageEntries(out.Contents, out.CommonPrefixes)...)
		}
		return got
	}
	tests := []struct {
		name string
		in   s3.ListObjectsV2Input
		want []string
	}{
		{"all", s3.ListObjectsV2Input{}, keys},
		{"pages of 2", s3.ListObjectsV2Input{MaxKeys: aws.Int32(2)}, keys},
		{"delimiter", s3.ListObjectsV2Input{Delimiter: aws.String("/")}, []string{"a.txt", "dir/", "e&<>+ x.txt", "z", "ünï/"}},
		{"delimiter, pages of 1", s3.ListObjectsV2Input{Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)}, []string{"a.txt", "dir/", "e&<>+ x.txt", "z", "ünï/"}},
		{"prefix and delimiter", s3.ListObjectsV2Input{Prefix: aws.String("dir/"), Delimiter: aws.String("/")}, []string{"dir/1", "dir/2", "dir/sub/"}},
		{"prefix", s3.ListObjectsV2Input{Prefix: aws.String("dir/")}, []string{"dir/1", "dir/2", "dir/sub/3"}},
		{"start-after", s3.ListObjectsV2Input{StartAfter: aws.String("dir/2")}, []string{"dir/sub/3", "e&<>+ x.txt", "z", "ünï/ö"}},
		{"start-after a common prefix", s3.ListObjectsV2Input{StartAfter: aws.String("dir/"), Delimiter: aws.String("/")}, []string{"e&<>+ x.txt", "z", "ünï/"}},
		{"no such prefix", s3.ListObjectsV2Input{Prefix: aws.String("nothing")}, nil},
	}
	for _, tt := range tests {
		t.Run("v2 "+tt.name, func(t *testing.T) {
			if got := v2(t, tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("listed %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("v1 pages with markers", func(t *testing.T) {
		var got []string
		marker := ""
		for range 10 {
			out, err := s.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("photos"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2), Marker: aws.String(marker)})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pageEntries(out.Contents, out.CommonPrefixes)...)
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			marker = aws.ToString(out.NextMarker)
		}
		if want := []string{"a.txt", "dir/", "e&<>+ x.txt", "z", "ünï/"}; !slices.Equal(got, want) {
			t.Fatalf("listed %q, want %q", got, want)
		}
	})

	t.Run("details and url encoding", func(t *testing.T) {
		out, err := s.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("photos"), Prefix: aws.String("e&"), EncodingType: types.EncodingTypeUrl})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 1 {
			t.Fatalf("listed %d keys", len(out.Contents))
		}
		o := out.Contents[0]
		sum := md5.Sum([]byte("e&<>+ x.txt"))
		if aws.ToString(o.Key) != "e%26%3C%3E%2B%20x.txt" || aws.ToInt64(o.Size) != int64(len("e&<>+ x.txt")) ||
			aws.ToString(o.ETag) != `"`+hex.EncodeToString(sum[:])+`"` || o.LastModified == nil {
			t.Fatalf("listed %+v", o)
		}
	})

	t.Run("missing bucket", func(t *testing.T) {
		_, err := s.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
		if s3Code(err) != "NoSuchBucket" {
			t.Fatalf("got %v, want NoSuchBucket", err)
		}
	})
}

// pageEntries is a listing page's keys and common prefixes, in key order.
func pageEntries(objects []types.Object, prefixes []types.CommonPrefix) []string {
	var out []string
	for _, o := range objects {
		out = append(out, aws.ToString(o.Key))
	}
	for _, p := range prefixes {
		out = append(out, aws.ToString(p.Prefix))
	}
	slices.Sort(out)
	return out
}

// TestS3ListSkipsCommonPrefixes: a delimiter listing of a bucket whose keys are mostly
// under one prefix lists that prefix once, seeking past its keys.
func TestS3ListSkipsCommonPrefixes(t *testing.T) {
	c, s := s3Cluster(t, 1, "big")
	ctx := context.Background()
	for i := range 5000 {
		rec := index.Record{State: index.StateLive, Volumes: c.Config.Volumes, Size: 1}
		if err := c.Master.index.Put(fmt.Sprintf("/big/many/%05d", i), &rec); err != nil {
			t.Fatal(err)
		}
	}
	c.Put("/big/top", []byte("t"))
	out, err := s.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("big"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if got := pageEntries(out.Contents, out.CommonPrefixes); !slices.Equal(got, []string{"many/", "top"}) || aws.ToBool(out.IsTruncated) {
		t.Fatalf("listed %q (truncated %v)", got, aws.ToBool(out.IsTruncated))
	}
}
