package etcd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/index/indextest"
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
	open := func() index.Index {
		ix, err := Open(e.DB("/stats"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.Close() })
		return ix
	}
	indextest.StatsTwoWriters(t, open(), open(), 40)
}

// TestConformance runs the suite every backend passes on etcd: each test on a prefix of
// its own in one 3-member cluster.
func TestConformance(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	n := 0
	indextest.Run(t, func(t *testing.T) index.Index {
		n++
		ix, err := Open(e.DB(fmt.Sprintf("/conformance%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.Close() })
		return ix
	})
}
