package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMasterKilledUnderLoad kills the master with SIGKILL in the middle of concurrent
// PUTs and DELETEs and starts it again on the same index: every key that got a 201
// reads back bit-exact, every key that got a 204 stays gone, a key whose request got no
// answer either exists whole or not at all, and once the new master has recovered,
// the volumes hold exactly the replicas of the keys that exist.
func TestMasterKilledUnderLoad(t *testing.T) {
	vols := []*testVolume{startVolume(t), startVolume(t), startVolume(t)}
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
				value := randomBytes(1000 + (i*7919+w*104729)%(3*chunkSize))
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
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	close(stop)
	load.Wait()

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
	eventually(t, 10*time.Second, "partial replicas not removed by recovery", func() bool { return files() == 3*existing })
	for _, v := range vols {
		if tmp := v.TempFiles(); len(tmp) != 0 {
			t.Errorf("volume %s keeps %d half-received bodies", v.Addr, len(tmp))
		}
	}
	if !strings.Contains(stderr.String(), "recovered from an earlier crash") {
		t.Logf("the new master found nothing to recover:\n%s", stderr)
	}
}
