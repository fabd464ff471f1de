package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// TestGetWithVolumeDown: reads keep working from the other replicas, a replica on a
// down volume is never chosen, and a key whose volumes are all down answers 503.
func TestGetWithVolumeDown(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Replicas = 2 })
	keys := map[string][]byte{}
	for i := range 30 {
		key := fmt.Sprintf("/gd/%d", i)
		keys[key] = testenv.RandomBytes(100 + i)
		c.Put(key, keys[key])
	}
	down := c.Vols[0]
	down.Stop()
	stopped := time.Now()
	testenv.Eventually(t, 2*time.Second, "volume not seen down within 2s", func() bool { return !c.Master.health.Up(down.Addr) })
	t.Logf("volume seen down after %v", time.Since(stopped).Round(time.Millisecond))

	resp := c.Fetch(http.MethodGet, "/health", nil)
	var health struct{ Volumes []VolumeStatus }
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	for _, v := range health.Volumes {
		if v.Up == (v.Volume == down.Addr) {
			t.Errorf("/health: %+v", v)
		}
	}

	for key, value := range keys {
		rec, _ := c.Master.index.Get(key)
		onlyDown := len(rec.Volumes) == 2 && !slices.ContainsFunc(rec.Volumes, func(v string) bool { return v != down.Addr })
		for range 10 {
			resp := c.Do(http.MethodGet, key, nil)
			if strings.Contains(resp.Header.Get("Location"), down.Addr) {
				t.Fatalf("%s redirected to the down volume", key)
			}
			if onlyDown && resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("%s: %d, want 503", key, resp.StatusCode)
			}
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("%s: %d", key, status)
		}
	}

	// Every volume of a key down: 503.
	c.Vols[1].Stop()
	c.Vols[2].Stop()
	testenv.Eventually(t, 2*time.Second, "volumes not seen down", func() bool {
		return !c.Master.health.Up(c.Vols[1].Addr) && !c.Master.health.Up(c.Vols[2].Addr)
	})
	if resp := c.Do(http.MethodGet, "/gd/0", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("all volumes down: %d, want 503", resp.StatusCode)
	}
	// And back.
	down.Start()
	testenv.Eventually(t, 2*time.Second, "volume not seen back up", func() bool { return c.Master.health.Up(down.Addr) })
}

func TestList(t *testing.T) {
	c := startCluster(t, 3, nil)
	var want []string
	for i := range 25 {
		key := fmt.Sprintf("/list/%02d", i)
		want = append(want, key)
		c.Put(key, []byte{byte(i)})
	}
	c.Put("/lisp", []byte("x"))
	c.Put("/other", []byte("x"))

	if got := listKeys(t, c, "/list/?list"); !slices.Equal(got.Keys, want) || got.Next != "" {
		t.Fatalf("?list: %q next %q", got.Keys, got.Next)
	}
	if got := listKeys(t, c, "/lis?list"); len(got.Keys) != 26 {
		t.Fatalf("prefix /lis: %q", got.Keys)
	}
	if got := listKeys(t, c, "/nothing?list"); got.Keys == nil || len(got.Keys) != 0 {
		t.Fatalf("empty list: %#v", got)
	}
	// Paging with start and limit visits every key once.
	var paged []string
	next := ""
	for {
		page := listKeys(t, c, "/list/?list&limit=10&start="+next)
		paged = append(paged, page.Keys...)
		if page.Next == "" {
			break
		}
		if len(page.Keys) != 10 {
			t.Fatalf("page of %d", len(page.Keys))
		}
		next = page.Next
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged: %q", paged)
	}
	for _, bad := range []string{"abc", "0", "-1", "1000001"} {
		if resp := c.Do(http.MethodGet, "/list/?list&limit="+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("limit=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// TestListTooMany fills the index directly with more keys than a list may return.
func TestListTooMany(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million index records")
	}
	levelDBOnly(t, "writes a million records straight into LevelDB")
	c := startCluster(t, 1, nil)
	rec, _ := index.Record{State: index.StateLive, Volumes: []string{c.Vols[0].Addr}}.MarshalBinary()
	c.StopMaster()
	db, err := leveldb.OpenFile(c.Config.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	for start := 0; start <= maxListKeys; start += 100000 {
		b := new(leveldb.Batch)
		for i := start; i < min(start+100000, maxListKeys+1); i++ {
			b.Put(fmt.Appendf(nil, "/many/%07d", i), rec)
		}
		if err := db.Write(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c.startMaster()
	// Scanning a million records takes seconds under the race detector: longer than
	// the harness's header timeout, which is for requests that should be quick.
	slow := &http.Client{Timeout: 5 * time.Minute, CheckRedirect: c.raw.CheckRedirect}
	if resp := c.do(slow, http.MethodGet, "/many/?list", nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("list of %d keys: %d, want 413", maxListKeys+1, resp.StatusCode)
	}
	if got := listKeys(t, c, "/many/?list&limit=2&start=/many/0999999"); !slices.Equal(got.Keys, []string{"/many/0999999", "/many/1000000"}) {
		t.Fatalf("last page: %q", got.Keys)
	}
}

func TestFallback(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Fallback = "127.0.0.1:9" })
	c.Put("/here", []byte("x"))
	if resp := c.Do(http.MethodGet, "/here", nil); resp.StatusCode != http.StatusFound || strings.Contains(resp.Header.Get("Location"), ":9/") {
		t.Errorf("known key: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp := c.Do(http.MethodGet, "/elsewhere", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:9/elsewhere" {
		t.Errorf("unknown key: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
