package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// putAll stores n values under prefix and fails the test unless every PUT gets a 201.
func putAll(t *testing.T, c *testCluster, prefix string, n, size int) map[string][]byte {
	t.Helper()
	values := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("%s/%d", prefix, i)
		values[key] = randomBytes(size + i)
		c.Put(key, values[key])
	}
	return values
}

// checkReplicas checks that every key has want replicas, none on the volume avoid, and
// reads back whole.
func checkReplicas(t *testing.T, c *testCluster, values map[string][]byte, want int, avoid string) {
	t.Helper()
	for key, value := range values {
		rec := c.Record(key)
		if len(rec.Volumes) != want || slices.Contains(rec.Volumes, avoid) {
			t.Fatalf("%s on %q, want %d volumes without %s", key, rec.Volumes, want, avoid)
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s: %d", key, status)
		}
	}
}

// TestWritesWithAVolumeDown: with 1 of 5 volumes down, every PUT succeeds with full
// replication, on the next volumes in each key's order; rebalance moves them home.
func TestWritesWithAVolumeDown(t *testing.T) {
	c := startCluster(t, 5, nil)
	down := c.Vols[1]
	down.Stop()
	// At once, before the master knows: values fall back when the volume does not
	// answer, small ones at any time, streamed ones before their body is sent.
	small := putAll(t, c, "/down/small", 100, 100)
	// A streamed value placed on the dead volume, while the master still counts it up
	// (as in the moments after it died), is sent to the next volume instead.
	for i := 0; len(small) < 110; i++ {
		key := fmt.Sprintf("/down/early/%d", i)
		if !slices.Contains(c.Master.placement.Choose(key), down.Addr) {
			continue
		}
		c.Master.health.set(down.Addr, nil)
		small[key] = randomBytes(3 * chunkSize)
		c.Put(key, small[key])
	}
	// Once it knows, large (streamed) values avoid the volume from the start.
	eventually(t, 2*time.Second, "volume not seen down", func() bool { return !c.Master.health.Up(down.Addr) })
	large := putAll(t, c, "/down/large", 10, 3*chunkSize)
	checkReplicas(t, c, small, 3, down.Addr)
	checkReplicas(t, c, large, 3, down.Addr)
	t.Logf("%d PUTs with 1 of 5 volumes down: %d acknowledged, 0 failed", len(small)+len(large), len(small)+len(large))

	down.Start()
	eventually(t, 2*time.Second, "volume not seen up", func() bool { return c.Master.health.Up(down.Addr) })
	var out bytes.Buffer
	err := runRebalance(context.Background(), RebalanceConfig{Master: c.URL, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}, &out, testLogger(t))
	if err != nil || !strings.Contains(out.String(), "moved") {
		t.Fatalf("rebalance home: %v\n%s", err, out.String())
	}
	for key := range small {
		if rec, want := c.Record(key), c.Master.placement.Choose(key); !slices.Equal(rec.Volumes, want) {
			t.Fatalf("%s on %q after rebalance, want %q", key, rec.Volumes, want)
		}
	}
}

func TestTooFewVolumes(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Vols[2].Stop()
	eventually(t, 2*time.Second, "volume not seen down", func() bool { return !c.Master.health.Up(c.Vols[2].Addr) })
	resp := c.Do(http.MethodPut, "/few", strings.NewReader("x"))
	if msg := readAll(t, resp.Body); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg, "2 of 3 volumes are up (down: "+c.Vols[2].Addr) {
		t.Fatalf("PUT with 2 of 3 volumes up: %d %q", resp.StatusCode, msg)
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Fatalf("files: %q", files)
	}
	c.Config.MinReplicas = 2
	c.RestartMaster()
	eventually(t, 2*time.Second, "volume not seen down", func() bool { return !c.Master.health.Up(c.Vols[2].Addr) })
	values := putAll(t, c, "/few", 5, 10)
	checkReplicas(t, c, values, 2, c.Vols[2].Addr)
}

// TestStoppedVolume freezes one nginx with SIGSTOP: a PUT that meets it costs about
// -voltimeout, then the volume is skipped; a replica it stores when it thaws is deleted.
func TestStoppedVolume(t *testing.T) {
	c := startCluster(t, 5, func(cfg *ServerConfig) {
		cfg.VolTimeout = 500 * time.Millisecond
		cfg.Grace = 100 * time.Millisecond
	})
	frozen := c.Vols[3]
	frozen.Pause()
	var slowest time.Duration
	values := map[string][]byte{}
	for i := range 40 {
		key := fmt.Sprintf("/frozen/%d", i)
		values[key] = randomBytes(100 + i)
		start := time.Now()
		c.Put(key, values[key])
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("40 PUTs with a volume frozen: all acknowledged, slowest %v", slowest.Round(time.Millisecond))
	if slowest > 1500*time.Millisecond {
		t.Errorf("a PUT took %v with -voltimeout 500ms", slowest)
	}
	if c.Master.health.Up(frozen.Addr) {
		t.Fatal("frozen volume still counted up")
	}
	for key := range values {
		resp := c.Do(http.MethodGet, key, nil)
		if strings.Contains(resp.Header.Get("Location"), frozen.Addr) {
			t.Fatalf("%s redirected to the frozen volume", key)
		}
	}
	frozen.Resume()
	eventually(t, 2*time.Second, "volume not seen back", func() bool { return c.Master.health.Up(frozen.Addr) })
	// Whatever the thawed nginx stored of the PUTs that gave up on it is deleted.
	eventually(t, 15*time.Second, "leftovers on the thawed volume not deleted", func() bool {
		return len(c.AllFiles()) == 3*len(values)
	})
	checkReplicas(t, c, values, 3, frozen.Addr)
}

// TestVerify damages the volumes behind the master's back and shows verify finding each
// problem and verify -fix repairing it.
func TestVerify(t *testing.T) {
	c := startCluster(t, 3, nil)
	values := putAll(t, c, "/v", 20, 500)
	if resp := c.Do("UNLINK", "/v/3", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatal(resp.Status)
	}
	rec := func(key string) (Record, string) { r := c.Record(key); return r, KeyPath(key, r.Sub) }
	// A replica removed, a replica corrupted (same size: only -deep sees it), an unlink
	// marker lost, orphans old and new, a write that never finished.
	r1, p1 := rec("/v/1")
	removed := filepath.Join(volumeDir(c, r1.Volumes[0]), p1)
	os.Remove(removed)
	r2, p2 := rec("/v/2")
	os.WriteFile(filepath.Join(volumeDir(c, r2.Volumes[1]), p2), bytes.Repeat([]byte{'!'}, int(r2.Size)), 0o644)
	r3, _ := rec("/v/3")
	os.Remove(filepath.Join(volumeDir(c, r3.Volumes[2]), MarkerPath("/v/3", r3.Sub)))
	oldOrphan := filepath.Join(c.Vols[0].Dir, KeyPath("/nobody", 0))
	os.MkdirAll(filepath.Dir(oldOrphan), 0o755)
	os.WriteFile(oldOrphan, []byte("x"), 0o644)
	os.Chtimes(oldOrphan, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	youngOrphan := filepath.Join(c.Vols[1].Dir, KeyPath("/newborn", 0))
	os.MkdirAll(filepath.Dir(youngOrphan), 0o755)
	os.WriteFile(youngOrphan, []byte("y"), 0o644)
	if err := c.Master.index.Put("/v/unfinished", Record{State: StateWriting, Volumes: c.Config.Volumes}); err != nil {
		t.Fatal(err)
	}
	c.StopMaster()

	verify := func(deep, fix bool, grace time.Duration) (string, error) {
		cfg := VerifyConfig{ClusterConfig: c.Config.ClusterConfig, Deep: deep, Fix: fix, Grace: grace, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
		var out bytes.Buffer
		err := runVerify(context.Background(), cfg, &out, testLogger(t))
		t.Logf("verify deep=%v fix=%v:\n%s", deep, fix, out.String())
		return out.String(), err
	}
	out, err := verify(false, false, time.Hour)
	if !errors.Is(err, ErrNotWhole) {
		t.Fatalf("verify of damaged data: %v", err)
	}
	for _, want := range []string{probMissing, "/v/1 on " + r1.Volumes[0], probMarker, probOrphan, probYoungOrpha} {
		if !strings.Contains(out, want) {
			t.Errorf("verify does not report %q", want)
		}
	}
	if strings.Contains(out, probCorrupt) || strings.Contains(out, probPending) {
		t.Errorf("shallow verify with -grace 1h reports corruption or a young unfinished write")
	}
	if out, _ = verify(true, false, 0); !strings.Contains(out, probCorrupt) || !strings.Contains(out, "/v/2 on "+r2.Volumes[1]) || !strings.Contains(out, probPending) {
		t.Errorf("deep verify misses the corrupt replica or the unfinished write")
	}
	if _, err := verify(true, true, time.Hour); err != nil {
		t.Fatalf("verify -fix: %v", err)
	}
	if out, err := verify(true, false, time.Hour); err != nil || !strings.Contains(out, "the data is whole") {
		t.Fatalf("verify after -fix: %v", err)
	}
	if _, err := os.Stat(removed); err != nil {
		t.Errorf("removed replica not restored: %v", err)
	}
	if _, err := os.Stat(oldOrphan); !os.IsNotExist(err) {
		t.Errorf("old orphan not removed: %v", err)
	}
	if _, err := os.Stat(youngOrphan); err != nil {
		t.Errorf("young orphan removed: %v", err)
	}
	c.RestartMaster()
	for key, value := range values {
		if key == "/v/3" {
			continue
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s after repair: %d", key, status)
		}
	}
}

// TestGracefulShutdown sends SIGTERM while a PUT is half sent: the master stops taking
// connections, lets the PUT finish, closes the index and exits 0, and the value is there.
func TestGracefulShutdown(t *testing.T) {
	vols := []*testVolume{startVolume(t), startVolume(t), startVolume(t)}
	args := []string{"-volumes", strings.Join([]string{vols[0].Addr, vols[1].Addr, vols[2].Addr}, ","), "-db", filepath.Join(t.TempDir(), "db"), "server"}
	cmd, stderr, url := startServer(t, args...)
	value := randomBytes(2 * chunkSize)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, url+"/inflight", pr)
	req.ContentLength = int64(len(value))
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	pw.Write(value[:chunkSize])
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if _, err := http.Get(url + "/health"); err == nil {
		t.Error("master still takes new connections after SIGTERM")
	}
	pw.Write(value[chunkSize:])
	pw.Close()
	if status := <-answered; status != http.StatusCreated {
		t.Fatalf("PUT in flight during shutdown: %d", status)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr)
	}
	_, _, url = startServer(t, args...)
	c := &testCluster{t: t, URL: url, client: &http.Client{Timeout: 10 * time.Second}}
	if status, got := c.Get("/inflight"); status != http.StatusOK || !bytes.Equal(got, value) {
		t.Fatalf("value of the PUT that finished during shutdown: %d", status)
	}
}

// TestVerifyOnline does verify's work through a running master.
func TestVerifyOnline(t *testing.T) {
	c := startCluster(t, 3, nil)
	values := putAll(t, c, "/vo", 30, 300)
	r := c.Record("/vo/7")
	removed := filepath.Join(volumeDir(c, r.Volumes[1]), KeyPath("/vo/7", r.Sub))
	os.Remove(removed)
	orphan := filepath.Join(c.Vols[2].Dir, KeyPath("/stray", 0))
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("x"), 0o644)
	os.Chtimes(orphan, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))

	verify := func(fix bool) (string, error) {
		var out bytes.Buffer
		err := runVerify(context.Background(), VerifyConfig{Master: c.URL, Fix: fix, Grace: time.Hour, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}, &out, testLogger(t))
		t.Logf("online verify fix=%v:\n%s", fix, out.String())
		return out.String(), err
	}
	out, err := verify(false)
	if !errors.Is(err, ErrNotWhole) || !strings.Contains(out, "/vo/7 on "+r.Volumes[1]) || !strings.Contains(out, probOrphan) {
		t.Fatalf("online verify: %v", err)
	}
	if _, err := verify(true); err != nil {
		t.Fatalf("online verify -fix: %v", err)
	}
	if _, err := verify(false); err != nil {
		t.Fatalf("online verify after -fix: %v", err)
	}
	if _, err := os.Stat(removed); err != nil {
		t.Errorf("replica not restored: %v", err)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan not removed: %v", err)
	}
	for key, value := range values {
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s: %d", key, status)
		}
	}
}

// TestVolumeFrozenMidUpload freezes a volume while a large value streams to it: the
// PUT fails once the probe marks the volume down (about -voltimeout plus a probe
// interval), not after the full stall bound, and leaves nothing.
func TestVolumeFrozenMidUpload(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.VolTimeout = 500 * time.Millisecond })
	pr, pw := io.Pipe()
	result := make(chan *http.Response, 1)
	go func() { result <- c.Do(http.MethodPut, "/frozen-upload", pr) }()
	chunk := randomBytes(chunkSize)
	for range 4 {
		pw.Write(chunk)
	}
	eventually(t, 5*time.Second, "upload not started", func() bool {
		rec, err := c.Master.index.Get("/frozen-upload")
		return err == nil && rec.State == StateWriting
	})
	c.Vols[1].Pause()
	frozen := time.Now()
	go func() {
		for {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp := <-result
	took := time.Since(frozen)
	pw.CloseWithError(errors.New("done"))
	t.Logf("PUT failed %v after the volume froze: %d", took.Round(time.Millisecond), resp.StatusCode)
	if resp.StatusCode != http.StatusGatewayTimeout || took > 3*time.Second {
		t.Fatalf("PUT to a frozen volume: %d after %v, want 504 within about 1.5s", resp.StatusCode, took)
	}
	c.Vols[1].Resume()
	eventually(t, 5*time.Second, "files left", func() bool { return len(c.AllFiles()) == 0 })
}
