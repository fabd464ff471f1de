package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestParseEtcdDB: -db etcd://HOST:PORT[,HOST:PORT...]/PREFIX.
func TestParseEtcdDB(t *testing.T) {
	tests := []struct {
		db        string
		endpoints string
		prefix    string
		lease     time.Duration
		ok        bool
	}{
		{"etcd://127.0.0.1:2379/davkv", "http://127.0.0.1:2379", "/davkv/", etcdDefaultLease, true},
		{"etcd://a:1,b:2,c:3/team/davkv/", "http://a:1 http://b:2 http://c:3", "/team/davkv/", etcdDefaultLease, true},
		{"etcd://a:1/davkv?lease=3s", "http://a:1", "/davkv/", 3 * time.Second, true},
		{"etcd://a:1/davkv?lease=1s", "", "", 0, false},
		{"etcd://a:1/davkv?lease=x", "", "", 0, false},
		{"etcd://a:1/davkv?ttl=3s", "", "", 0, false},
		{"etcd://a:1", "", "", 0, false},
		{"etcd://a/davkv", "", "", 0, false},
		{"etcd:///davkv", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.db, func(t *testing.T) {
			e, err := parseEtcdDB(tt.db)
			if (err == nil) != tt.ok || strings.Join(e.Endpoints, " ") != tt.endpoints || e.Prefix != tt.prefix || (tt.ok && e.Lease != tt.lease) {
				t.Fatalf("parseEtcdDB = %+v, %v", e, err)
			}
		})
	}
}

// TestEtcdIndexStats: the statistics follow every write in etcd too, and stay exact
// when two masters (two clients) write at once and contend for the shards.
func TestEtcdIndexStats(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	open := func() Index {
		index, err := OpenIndex(e.DB("/stats"), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { index.Close() })
		return index
	}
	a, b := open(), open()
	final := checkIndexStats(t, a)
	var wg sync.WaitGroup
	for w, index := range []Index{a, b} {
		wg.Go(func() {
			for i := range 40 {
				rec := Record{State: StateLive, Size: 10}
				if err := index.Put(fmt.Sprintf("/many/%d/%d", w, i), &rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	final.Keys[StateLive] += 80
	final.Bytes[StateLive] += 800
	for _, index := range []Index{a, b} {
		if got := indexStats(t, index); got != final {
			t.Fatalf("after two writers: %+v, want %+v", got, final)
		}
	}
}

// TestMasterOnEtcd: a master whose index is in etcd stores, lists, unlinks and deletes
// keys and keeps S3 buckets, as on LevelDB, and a rebuild writes into etcd.
func TestMasterOnEtcd(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.DB = e.DB("/master") })
	for i := range 5 {
		c.Put(fmt.Sprintf("/etcd/%d", i), []byte(fmt.Sprint("value ", i)))
	}
	if status, got := c.Get("/etcd/3"); status != http.StatusOK || string(got) != "value 3" {
		t.Fatalf("GET: %d %q", status, got)
	}
	if resp := c.Do("UNLINK", "/etcd/1", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("UNLINK: %d", resp.StatusCode)
	}
	if resp := c.Do(http.MethodDelete, "/etcd/2", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if page := listKeys(t, c, "/etcd/?list"); strings.Join(page.Keys, " ") != "/etcd/0 /etcd/3 /etcd/4" {
		t.Fatalf("?list: %q", page.Keys)
	}
	if resp := c.Do(http.MethodPut, "/bucket", nil, "Authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"); resp.StatusCode != http.StatusOK {
		t.Fatalf("S3 CreateBucket: %d", resp.StatusCode)
	}
	if m := scrape(t, c); m[`davkv_keys{state="live"}`] != 3 || m[`davkv_keys{state="unlinked"}`] != 1 {
		t.Fatalf("keys: live %v, unlinked %v", m[`davkv_keys{state="live"}`], m[`davkv_keys{state="unlinked"}`])
	}
	c.StopMaster()
	var out bytes.Buffer
	if err := runRebuild(context.Background(), rebuildConfig(c, e.DB("/rebuilt")), &out, testLogger(t)); err != nil {
		t.Fatalf("rebuild into etcd: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "rebuild: 4 keys (1 unlinked)") {
		t.Fatalf("rebuild: %s", out.String())
	}
	c.Config.DB = e.DB("/rebuilt")
	c.startMaster()
	if status, got := c.Get("/etcd/4"); status != http.StatusOK || string(got) != "value 4" {
		t.Fatalf("GET from the rebuilt index: %d %q", status, got)
	}
}
