package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"davkv/internal/layout"
	"davkv/internal/testenv"
)

// startHosts starts per volumes on each of hosts (loopback addresses standing for
// machines), and checks that each binds its own address only.
func startHosts(t *testing.T, hosts []string, per int) []*testenv.Volume {
	t.Helper()
	var vols []*testenv.Volume
	for _, h := range hosts {
		for range per {
			v := testenv.StartVolumeOn(t, h)
			if h != "127.0.0.1" {
				if resp, err := http.Head(fmt.Sprintf("http://127.0.0.1:%d/", v.Port)); err == nil {
					resp.Body.Close()
					t.Fatalf("the volume on %s answers on 127.0.0.1 too: it does not stand for another machine", v.Addr)
				}
			}
			vols = append(vols, v)
		}
	}
	return vols
}

// storedHosts returns the hosts whose volumes hold key's value on disk.
func storedHosts(c *testCluster, key string) []string {
	var hosts []string
	for _, v := range c.VolumeFiles(c.Record(key).Path(key)) {
		hosts = append(hosts, layout.Host(v))
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// healthOf reads the master's /health.
func healthOf(t *testing.T, c *testCluster) HealthPage {
	t.Helper()
	resp := c.Do(http.MethodGet, healthPath, nil)
	defer resp.Body.Close()
	var page HealthPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page
}

// TestReplicasOnThreeHosts: with three volumes on each of three hosts, every key has
// a replica on every host, on disk. With every volume of one host killed, every key
// reads back whole, and PUTs and DELETEs go on; verify names the keys written
// meanwhile as crowded, and once the host is back, rebalance spreads them again.
func TestReplicasOnThreeHosts(t *testing.T) {
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	c := startClusterOf(t, startHosts(t, hosts, 3), func(cfg *ServerConfig) { cfg.Grace = 0 })
	page := healthOf(t, c)
	if len(page.Domains) != 3 {
		t.Fatalf("/health names domains %+v, want the 3 hosts", page.Domains)
	}
	for i, d := range page.Domains {
		if d.Host != hosts[i] || len(d.Volumes) != 3 || d.Up != 3 {
			t.Fatalf("/health domain %+v, want host %s with 3 volumes up", d, hosts[i])
		}
	}
	values := putAll(t, c, "/spread/", 60, 3000)
	for key := range values {
		if on := storedHosts(c, key); !slices.Equal(on, hosts) {
			t.Fatalf("%s stored on hosts %q, want all three", key, on)
		}
	}

	// One machine gone.
	var lost []*testenv.Volume
	for _, v := range c.Vols {
		if layout.Host(v.Addr) == "127.0.0.2" {
			v.Kill()
			lost = append(lost, v)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the master sees the host down", func() bool { return healthOf(t, c).Domains[1].Up == 0 })
	for key, value := range values {
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s with a host down: %d, equal=%v", key, status, bytes.Equal(got, value))
		}
	}
	written := putAll(t, c, "/meanwhile/", 20, 3000)
	for key := range written {
		if on := storedHosts(c, key); !slices.Equal(on, []string{"127.0.0.1", "127.0.0.3"}) {
			t.Fatalf("%s written with a host down is stored on hosts %q, want the other two", key, on)
		}
		if n := len(c.Record(key).Volumes); n != 3 {
			t.Fatalf("%s written with a host down has %d replicas, want 3", key, n)
		}
	}
	var deleted []string
	for key := range values {
		if len(deleted) == 10 {
			break
		}
		if resp := c.Do(http.MethodDelete, key, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s with a host down: %d", key, resp.StatusCode)
		}
		deleted = append(deleted, key)
		delete(values, key)
	}

	// The machine back: verify names the crowded keys, rebalance spreads them.
	for _, v := range lost {
		if err := v.Start(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the master sees the host up", func() bool { return healthOf(t, c).Domains[1].Up == 3 })
	testenv.Eventually(t, 10*time.Second, "the deletes are swept", func() bool {
		return !slices.ContainsFunc(deleted, func(key string) bool { _, err := c.Master.index.Get(key); return err == nil })
	})
	batch := BatchConfig{Workers: 4, VolTimeout: time.Second}
	var out strings.Builder
	err := runVerify(context.Background(), VerifyConfig{Master: c.URL, BatchConfig: batch}, &out, testLogger(t))
	if err != nil || !strings.Contains(out.String(), fmt.Sprintf("%-48s %8d found %8d fixed", probCrowded, len(written), 0)) {
		t.Fatalf("verify with crowded keys: %v\n%s", err, out.String())
	}
	// Half of them spread by verify -fix, the rest by rebalance.
	half := slices.Sorted(maps.Keys(written))[:len(written)/2]
	for _, key := range half {
		if resp := c.Do("VERIFY", key+"?fix", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("VERIFY %s?fix: %d", key, resp.StatusCode)
		}
		if on := storedHosts(c, key); !slices.Equal(on, hosts) {
			t.Fatalf("%s stored on hosts %q after verify -fix, want all three", key, on)
		}
	}
	out.Reset()
	if err := runRebalance(context.Background(), RebalanceConfig{Master: c.URL, BatchConfig: batch}, &out, testLogger(t)); err != nil ||
		!strings.Contains(out.String(), fmt.Sprintf("moved %d keys", len(written)-len(half))) {
		t.Fatalf("rebalance: %v\n%s", err, out.String())
	}
	for key, value := range written {
		values[key] = value
	}
	checkPlaced(t, c, values)
	for key := range values {
		if on := storedHosts(c, key); !slices.Equal(on, hosts) {
			t.Fatalf("%s stored on hosts %q after rebalance, want all three", key, on)
		}
	}
	out.Reset()
	if err := runVerify(context.Background(), VerifyConfig{Master: c.URL, BatchConfig: batch}, &out, testLogger(t)); err != nil || strings.Contains(out.String(), "found") {
		t.Fatalf("verify after rebalance: %v\n%s", err, out.String())
	}
}

// TestReadsNearTheMaster: a master given -zone redirects GETs to the replica in its
// zone, and reads S3 objects from it, while one is up; then from another zone.
func TestReadsNearTheMaster(t *testing.T) {
	vols := startHosts(t, []string{"127.0.0.1", "127.0.0.2"}, 2)
	c := startClusterOf(t, vols, func(cfg *ServerConfig) {
		cfg.Replicas, cfg.Zone, cfg.Zones = 2, "zone-b", map[string]string{}
		for _, v := range vols {
			cfg.Zones[v.Addr] = map[string]string{"127.0.0.1": "zone-a", "127.0.0.2": "zone-b"}[layout.Host(v.Addr)]
		}
	})
	if d := healthOf(t, c).Domains; len(d) != 2 || d[0].Zone != "zone-a" || d[1].Zone != "zone-b" {
		t.Fatalf("/health domains %+v, want zones zone-a and zone-b", d)
	}
	if m := scrape(t, c); m[fmt.Sprintf(`davkv_volume_domain{host="127.0.0.2",volume=%q,zone="zone-b"}`, vols[2].Addr)] != 1 {
		t.Fatalf("/metrics has no davkv_volume_domain for %s", vols[2].Addr)
	}
	values := putAll(t, c, "/near/", 20, 100)
	redirectsTo := func(key string) string {
		resp := c.Do(http.MethodGet, key, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("GET %s: %d", key, resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	for key := range values {
		for range 5 {
			if loc := redirectsTo(key); !strings.HasPrefix(loc, "http://127.0.0.2:") {
				t.Fatalf("GET %s redirects to %s, out of the master's zone zone-b", key, loc)
			}
		}
	}
	ctx := context.Background()
	s := s3Client(c, "any", "any")
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("near")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("near"), Key: aws.String("object"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	volumeGets := func() (near, far float64) {
		m := scrape(t, c)
		for _, v := range vols {
			n := m[fmt.Sprintf(`davkv_volume_requests_total{method="GET",volume=%q}`, v.Addr)]
			if layout.Host(v.Addr) == "127.0.0.2" {
				near += n
			} else {
				far += n
			}
		}
		return near, far
	}
	near0, far0 := volumeGets()
	for range 10 {
		out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("near"), Key: aws.String("object")})
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, out.Body); body != "hello" {
			t.Fatalf("GetObject = %q", body)
		}
	}
	if near, far := volumeGets(); near-near0 != 10 || far != far0 {
		t.Fatalf("10 GetObjects read %v times from the master's zone and %v from the other", near-near0, far-far0)
	}

	// The master's zone down: reads go to the other.
	for _, v := range vols[2:] {
		v.Kill()
	}
	testenv.Eventually(t, 10*time.Second, "the master sees its zone down", func() bool { return healthOf(t, c).Domains[1].Up == 0 })
	for key, value := range values {
		if loc := redirectsTo(key); !strings.HasPrefix(loc, "http://127.0.0.1:") {
			t.Fatalf("GET %s with the master's zone down redirects to %s", key, loc)
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s with the master's zone down: %d", key, status)
		}
	}
}

// rankBefore is how davkv ranked volumes for a key before failure domains and
// weights, frozen here: by the first 8 bytes of md5(volume, 0, key), highest first.
func rankBefore(key string, vols []string) []string {
	score := func(v string) uint64 {
		sum := md5.Sum([]byte(v + "\x00" + key))
		return binary.BigEndian.Uint64(sum[:8])
	}
	out := slices.Clone(vols)
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(score(b), score(a)), strings.Compare(a, b)) })
	return out
}

// TestUpgradeMovesNothing: volumes laid out by a davkv from before failure domains
// (rendezvous order alone, as rankBefore), on one host or on a host each, rebuilt and
// served by this one with the same -volumes, have nothing to move.
func TestUpgradeMovesNothing(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
	}{
		{"one host", []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"}},
		{"a host each", []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vols []*testenv.Volume
			for _, h := range tt.hosts {
				vols = append(vols, testenv.StartVolumeOn(t, h))
			}
			c := startClusterOf(t, vols, nil)
			c.StopMaster()
			p := c.Config.Placement()
			for i := range 200 {
				key := fmt.Sprintf("/before/%d", i)
				for _, v := range rankBefore(key, c.Config.Volumes)[:c.Config.Replicas] {
					full := filepath.Join(volumeDir(c, v), layout.KeyPath(key, p.Subvolume(key)))
					if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(full, []byte(key), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			db := filepath.Join(t.TempDir(), "rebuilt")
			var out strings.Builder
			if err := runRebuild(context.Background(), rebuildConfig(c, db), &out, testLogger(t)); err != nil {
				t.Fatalf("rebuild: %v\n%s", err, out.String())
			}
			cfg := rebalanceConfig(c, c.Config.Volumes)
			cfg.DB, cfg.DryRun = db, true
			out.Reset()
			if err := runRebalance(context.Background(), cfg, &out, testLogger(t)); err != nil || !strings.Contains(out.String(), "checked 200 keys, nothing to move") {
				t.Fatalf("rebalance -dry-run after the upgrade: %v\n%s", err, out.String())
			}
		})
	}
}
