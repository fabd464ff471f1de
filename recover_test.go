package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"davkv/internal/layout"
	"davkv/internal/testenv"
)

// TestMasterKilledUnderLoad kills the master with SIGKILL in the middle of concurrent
// PUTs and DELETEs and starts it again on the same index: every key that got a 201
// reads back bit-exact, every key that got a 204 stays gone, a key whose request got no
// answer either exists whole or not at all, and once the new master has recovered,
// the volumes hold exactly the replicas of the keys that exist.
func TestMasterKilledUnderLoad(t *testing.T) {
	vols := []*testenv.Volume{testenv.StartVolume(t), testenv.StartVolume(t), testenv.StartVolume(t)}
	addrs := []string{vols[0].Addr, vols[1].Addr, vols[2].Addr}
	db := filepath.Join(t.TempDir(), "db")
	args := []string{"-volumes", strings.Join(addrs, ","), "-db", db, "server"}
	cmd, _, url := startServer(t, args...)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}

	type outcome struct {
		value   []byte
		put     int // status of the PUT, 0 if it got no answer
		deleted int // status of the DELETE, if one was sent; 0 if it got no answer
		delSent bool
	}
	var mu sync.Mutex
	outcomes := map[string]*outcome{}
	var requests int
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range 8 {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("/crash/%d/%d", w, i)
				value := testenv.RandomBytes(1000 + (i*7919+w*104729)%(3*chunkSize))
				o := &outcome{value: value}
				mu.Lock()
				outcomes[key] = o
				requests++
				mu.Unlock()
				req, _ := http.NewRequest(http.MethodPut, url+key, bytes.NewReader(value))
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					o.put = resp.StatusCode
					mu.Unlock()
				}
				if i%3 != 0 || o.put != http.StatusCreated {
					continue
				}
				req, _ = http.NewRequest(http.MethodDelete, url+key, nil)
				mu.Lock()
				o.delSent = true
				requests++
				mu.Unlock()
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
					mu.Lock()
					o.deleted = resp.StatusCode
					mu.Unlock()
				}
			}
		})
	}
	killUnderLoad(cmd, stop, &load)

	_, stderr, url := startServer(t, args...)
	c := &testCluster{t: t, Vols: vols, URL: url, client: &http.Client{Timeout: 10 * time.Second}}
	acked, lost, unanswered, existing := 0, 0, 0, 0
	for key, o := range outcomes {
		status, got := c.Get(key)
		switch {
		case o.put == http.StatusCreated && (!o.delSent || o.deleted == 0):
			if o.deleted == 0 && o.delSent {
				unanswered++
				if status == http.StatusNotFound {
					continue // the DELETE went through before the crash
				}
			} else {
				acked++
			}
			if status != http.StatusOK || !bytes.Equal(got, o.value) {
				lost++
				t.Errorf("%s: acknowledged, then %d after the crash (bytes equal: %v)", key, status, bytes.Equal(got, o.value))
			}
		case o.deleted == http.StatusNoContent:
			acked++
			if status != http.StatusNotFound {
				t.Errorf("%s: deleted with 204, then %d after the crash", key, status)
			}
			continue
		case o.put == 0:
			unanswered++
			if status != http.StatusNotFound && !bytes.Equal(got, o.value) {
				t.Errorf("%s: PUT unanswered, then %d with wrong bytes", key, status)
			}
		default:
			t.Errorf("%s: PUT answered %d", key, o.put)
		}
		if status == http.StatusOK {
			existing++
		}
	}
	t.Logf("%d requests, %d acknowledged, %d unanswered at the kill, %d lost; %d keys exist", requests, acked, unanswered, lost, existing)
	if acked < 20 || unanswered == 0 {
		t.Fatalf("the kill did not land under load: %d acknowledged, %d unanswered", acked, unanswered)
	}
	files := func() int {
		n := 0
		for _, v := range vols {
			n += len(v.Files())
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, "partial replicas not removed by recovery", func() bool { return files() == 3*existing })
	for _, v := range vols {
		if tmp := v.TempFiles(); len(tmp) != 0 {
			t.Errorf("volume %s keeps %d half-received bodies", v.Addr, len(tmp))
		}
	}
	if !strings.Contains(stderr.String(), "finished what a master left unfinished") {
		t.Logf("the new master found nothing to recover:\n%s", stderr)
	}
}

// TestS3OverwriteKilled kills the master with SIGKILL while S3 clients overwrite their
// keys again and again, and starts it again on the same index: every key reads back
// whole, as the last value acknowledged or the one whose write got no answer, never a
// mix; and once the grace has passed, the volumes hold only each key's current
// generation, three replicas of it, whatever the crash left.
func TestS3OverwriteKilled(t *testing.T) {
	vols := []*testenv.Volume{testenv.StartVolume(t), testenv.StartVolume(t), testenv.StartVolume(t)}
	addrs := []string{vols[0].Addr, vols[1].Addr, vols[2].Addr}
	db := filepath.Join(t.TempDir(), "db")
	args := []string{"-volumes", strings.Join(addrs, ","), "-db", db, "server", "-s3keys", "davkvtest:davkvtestsecret", "-grace", "1s"}
	cmd, _, url := startServer(t, args...)
	ctx := context.Background()
	client := func(url string) *s3.Client {
		return s3Client(&testCluster{URL: url}, "davkvtest", "davkvtestsecret")
	}
	if _, err := client(url).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("crash")}); err != nil {
		t.Fatal(err)
	}

	type outcome struct{ acked, unanswered []byte }
	outcomes := make([]outcome, 6)
	var writes atomic.Int64
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range outcomes {
		load.Go(func() {
			s := client(url)
			o := &outcomes[w]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				value := testenv.RandomBytes(1000 + (i*7919+w*104729)%(3*chunkSize))
				_, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("crash"), Key: aws.String(fmt.Sprint(w)), Body: bytes.NewReader(value)})
				if err != nil {
					o.unanswered = value // the master is gone: this is the last try
					return
				}
				o.acked = value
				writes.Add(1)
			}
		})
	}
	killUnderLoad(cmd, stop, &load)

	_, stderr, url := startServer(t, args...)
	s := client(url)
	for w, o := range outcomes {
		out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("crash"), Key: aws.String(fmt.Sprint(w))})
		if err != nil {
			t.Fatalf("key %d after the crash: %v", w, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, o.acked) && !bytes.Equal(got, o.unanswered) {
			t.Fatalf("key %d after the crash: %d bytes (%v), neither the acknowledged value (%d bytes) nor the unanswered one (%d)",
				w, len(got), err, len(o.acked), len(o.unanswered))
		}
	}
	t.Logf("%d overwrites acknowledged before the kill", writes.Load())
	if writes.Load() < 10 {
		t.Fatalf("the kill did not land under load: %d overwrites", writes.Load())
	}
	// Each key's files: its generations, and how many replicas of each.
	gens := func() map[string]map[uint64]int {
		files := map[string]map[uint64]int{}
		for _, v := range vols {
			for _, path := range v.Files() {
				f, err := layout.ParseVolumePath(path)
				if err != nil {
					t.Fatalf("stray file %s: %v", path, err)
				}
				if files[f.Key] == nil {
					files[f.Key] = map[uint64]int{}
				}
				files[f.Key][f.Gen]++
			}
		}
		return files
	}
	testenv.Eventually(t, 20*time.Second, "old generations left on the volumes", func() bool {
		for _, g := range gens() {
			if len(g) != 1 {
				return false
			}
			for _, n := range g {
				if n != 3 {
					return false
				}
			}
		}
		return true
	})
	if !strings.Contains(stderr.String(), "old files queued") {
		t.Logf("the new master found no old files to delete:\n%s", stderr)
	}
}

// killUnderLoad lets the load run for a while, kills the master with SIGKILL, then
// stops the load and waits for it to end.
func killUnderLoad(cmd *exec.Cmd, stop chan struct{}, load *sync.WaitGroup) {
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	load.Wait()
}
