package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"davkv/internal/testenv"
)

// TestS3Lifecycle sets a bucket's lifecycle with the AWS SDK for Go, on a master whose
// lifecycle day lasts a second, and watches it work: keys expire by prefix, size and
// tag, whichever API wrote them, and go from the volumes as DELETE removes them; old
// uploads are aborted; keys no rule names stay; PutObject, GET and HEAD say when a key expires;
// the progress shows in /metrics.
func TestS3Lifecycle(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys, cfg.LifecycleDay = testS3Keys, time.Second })
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	ctx := context.Background()
	bucket := aws.String("life")
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: bucket}); s3Code(err) != "NoSuchLifecycleConfiguration" {
		t.Fatalf("a bucket without rules: %v", err)
	}
	conf := &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{
		{ID: aws.String("tmp"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("tmp/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(2)}, AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(1)}},
		{ID: aws.String("big"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{ObjectSizeGreaterThan: aws.Int64(1000)},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		{ID: aws.String("tagged"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Tag: &types.Tag{Key: aws.String("expire"), Value: aws.String("yes")}},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		{ID: aws.String("off"), Status: types.ExpirationStatusDisabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String("keep/")},
			Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		// The form before Filter, answered as given.
		{ID: aws.String("legacy"), Status: types.ExpirationStatusDisabled, Prefix: aws.String("old/"), Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
	}}
	if _, err := s.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: bucket, LifecycleConfiguration: conf}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: bucket})
	if err != nil || len(got.Rules) != 5 || aws.ToString(got.Rules[1].ID) != "big" || aws.ToInt64(got.Rules[1].Filter.ObjectSizeGreaterThan) != 1000 ||
		aws.ToString(got.Rules[2].Filter.Tag.Value) != "yes" || got.Rules[3].Status != types.ExpirationStatusDisabled || got.Rules[4].Filter != nil {
		t.Fatalf("GetBucketLifecycleConfiguration: %+v, %v", got, err)
	}
	//lint:ignore SA1019 the rule's Prefix outside a Filter, the old form clients still send, is what this checks
	if legacy := got.Rules[4].Prefix; aws.ToString(legacy) != "old/" {
		t.Fatalf("GetBucketLifecycleConfiguration: the legacy rule's Prefix %q", aws.ToString(legacy))
	}
	bad := &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{{ID: aws.String("cold"), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{},
		Transitions: []types.Transition{{Days: aws.Int32(30), StorageClass: types.TransitionStorageClassGlacier}}}}}
	if _, err := s.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: bucket, LifecycleConfiguration: bad}); s3Code(err) != "NotImplemented" {
		t.Fatalf("a transition: %v", err)
	}

	put := func(key, value, tagging string) *s3.PutObjectOutput {
		in := &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key), Body: strings.NewReader(value)}
		if tagging != "" {
			in.Tagging = aws.String(tagging)
		}
		out, err := s.PutObject(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := put("tmp/a", "a", ""); !strings.Contains(aws.ToString(out.Expiration), `rule-id="tmp"`) {
		t.Fatalf("PutObject: x-amz-expiration %q", aws.ToString(out.Expiration))
	}
	c.Put("/life/tmp/native", []byte("written with curl"))
	put("data/big", strings.Repeat("b", 2000), "")
	put("data/tagged", "t", "expire=yes")
	put("data/plain", "p", "expire=no")
	put("keep/b", "b", "")
	if _, err := s.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String("tmp/upload")}); err != nil {
		t.Fatal(err)
	}
	head, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String("tmp/a")})
	if err != nil || !strings.Contains(aws.ToString(head.Expiration), `rule-id="tmp"`) || !strings.HasPrefix(aws.ToString(head.Expiration), "expiry-date=") {
		t.Fatalf("HEAD: x-amz-expiration %q, %v", aws.ToString(head.Expiration), err)
	}
	if head, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: aws.String("keep/b")}); err != nil || head.Expiration != nil {
		t.Fatalf("HEAD of a key no enabled rule names: %q, %v", aws.ToString(head.Expiration), err)
	}

	gone := []string{"/life/tmp/a", "/life/tmp/native", "/life/data/big", "/life/data/tagged"}
	testenv.Eventually(t, 20*time.Second, "expired keys still there", func() bool {
		for _, key := range gone {
			if status, _ := c.Get(key); status != http.StatusNotFound {
				return false
			}
		}
		return true
	})
	for _, key := range []string{"/life/data/plain", "/life/keep/b"} {
		if status, _ := c.Get(key); status != http.StatusOK {
			t.Fatalf("%s: %d, want it kept", key, status)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the upload not aborted", func() bool {
		out, err := s.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket})
		return err == nil && len(out.Uploads) == 0
	})
	// Deleted as DELETE does: the files go from every volume.
	testenv.Eventually(t, 10*time.Second, "files of expired keys left", func() bool { return len(c.AllFiles()) == 2*3 })
	// A pass counts what it did once it ends, which may be after its keys are gone.
	testenv.Eventually(t, 10*time.Second, "the lifecycle's work not in /metrics", func() bool {
		m := scrape(t, c)
		return m["davkv_lifecycle_expired_keys_total"] >= 4 && m["davkv_lifecycle_aborted_uploads_total"] >= 1 && m["davkv_lifecycle_last_pass_timestamp_seconds"] != 0
	})

	if _, err := s.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: bucket}); s3Code(err) != "NoSuchLifecycleConfiguration" {
		t.Fatalf("after DeleteBucketLifecycle: %v", err)
	}
}

// TestLifecycleOnEtcd runs three masters on one etcd index, each with a lifecycle day of
// a second: the keys a rule expires are expired once, by one master, whichever master
// wrote them.
func TestLifecycleOnEtcd(t *testing.T) {
	e := testenv.StartEtcd(t, 1)
	ms := newMasters(t, e.DB("/lifecycle"))
	ms.Flags = []string{"-lifecycle-day", "1s"}
	for range 3 {
		ms.Start()
	}
	s3Do := func(i int, method, target, body string) int {
		req, err := http.NewRequest(method, ms.URLs[i]+target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 none") // no -s3keys: any signature is taken
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := s3Do(0, http.MethodPut, "/once", ""); status != http.StatusOK {
		t.Fatalf("CreateBucket: %d", status)
	}
	conf := `<LifecycleConfiguration><Rule><ID>all</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>`
	if status := s3Do(1, http.MethodPut, "/once?lifecycle", conf); status != http.StatusOK {
		t.Fatalf("PutBucketLifecycleConfiguration: %d", status)
	}
	const n = 30
	for i := range n {
		if status, _ := ms.Do(i%3, http.MethodPut, fmt.Sprintf("/once/tmp/%d", i), []byte("v")); status != http.StatusCreated {
			t.Fatalf("PUT %d: %d", i, status)
		}
	}
	testenv.Eventually(t, 30*time.Second, "expired keys left", func() bool {
		status, body := ms.Do(2, http.MethodGet, "/once/?list", nil)
		return status == http.StatusOK && !strings.Contains(string(body), "tmp/")
	})
	// The masters' counts: a pass counts what it expired once it ends, which may be
	// after the listing is empty.
	counts := func() (expired float64, passing int) {
		for i := range 3 {
			_, page := ms.Do(i, http.MethodGet, metricsPath, nil)
			for line := range strings.SplitSeq(string(page), "\n") {
				name, value, _ := strings.Cut(line, " ")
				v, _ := strconv.ParseFloat(value, 64)
				switch name {
				case "davkv_lifecycle_expired_keys_total":
					expired += v
				case "davkv_lifecycle_last_pass_timestamp_seconds":
					if v > 0 {
						passing++
					}
				}
			}
		}
		return expired, passing
	}
	testenv.Eventually(t, 10*time.Second, "expired keys not counted", func() bool {
		expired, _ := counts()
		return expired >= n
	})
	expired, passing := counts()
	if expired != n || passing != 1 {
		t.Fatalf("%v keys expired by %d masters making passes; want %d by one", expired, passing, n)
	}
}
