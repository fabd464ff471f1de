package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/testenv"
)

func rebalanceConfig(c *testCluster, volumes []string) RebalanceConfig {
	cluster := c.Config.ClusterConfig
	cluster.Volumes = volumes
	return RebalanceConfig{ClusterConfig: cluster, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
}

// checkPlaced checks that every key is recorded on, and stored on exactly, the volumes
// placement wants, with its marker if unlinked, and that live keys read back whole.
func checkPlaced(t *testing.T, c *testCluster, values map[string][]byte) {
	t.Helper()
	p := c.Config.Placement()
	for key, value := range values {
		rec := c.Record(key)
		want := p.Choose(key)
		if !slices.Equal(rec.Volumes, want) || len(rec.Leftovers) != 0 {
			t.Fatalf("%.40q recorded on %q (leftovers %q), want %q", key, rec.Volumes, rec.Leftovers, want)
		}
		sorted := slices.Sorted(slices.Values(want))
		if on := c.VolumeFiles(rec.Path(key)); !slices.Equal(on, sorted) {
			t.Fatalf("%.40q stored on %q, want %q", key, on, sorted)
		}
		markers := c.VolumeFiles(rec.MarkerPath(key))
		if rec.State == index.StateUnlinked {
			if !slices.Equal(markers, sorted) {
				t.Fatalf("unlinked %.40q has markers on %q, want %q", key, markers, sorted)
			}
			continue
		}
		if len(markers) != 0 {
			t.Fatalf("live %.40q has markers on %q", key, markers)
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %.40q: %d, equal=%v", key, status, bytes.Equal(got, value))
		}
	}
}

// moveOffline runs an offline rebalance to volumes and restarts the master on them.
func moveOffline(t *testing.T, c *testCluster, volumes []string, dryRun bool) string {
	t.Helper()
	c.StopMaster()
	cfg := rebalanceConfig(c, volumes)
	cfg.DryRun = dryRun
	var out bytes.Buffer
	if err := runRebalance(context.Background(), cfg, &out, testLogger(t)); err != nil {
		t.Fatalf("rebalance: %v\n%s", err, out.String())
	}
	if !dryRun {
		c.Config.Volumes = volumes
	}
	c.RestartMaster()
	return out.String()
}

func TestRebalanceThreeFiveThree(t *testing.T) {
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Volumes = cfg.Volumes[:3] })
	five := []string{c.Vols[0].Addr, c.Vols[1].Addr, c.Vols[2].Addr, c.Vols[3].Addr, c.Vols[4].Addr}
	three := five[:3]
	values := fillCluster(t, c, "/rebal", 120)
	before := slices.Clone(c.AllFiles())

	out := moveOffline(t, c, five, true)
	t.Log(out)
	if !strings.Contains(out, "would move") || !strings.Contains(out, "to   "+five[3]) {
		t.Fatalf("dry run: %s", out)
	}
	if after := c.AllFiles(); !slices.Equal(before, after) {
		t.Fatal("dry run changed the volumes")
	}

	out = moveOffline(t, c, five, false)
	t.Log(out)
	checkPlaced(t, c, values)
	if !strings.Contains(out, "moved") {
		t.Fatalf("3 to 5: %s", out)
	}
	if out := moveOffline(t, c, five, false); !strings.Contains(out, "nothing to move") {
		t.Fatalf("second run: %s", out)
	}

	// 5 to 3 while the removed volumes still run.
	out = moveOffline(t, c, three, false)
	t.Log(out)
	checkPlaced(t, c, values)
	for _, v := range c.Vols[3:] {
		if files := v.Files(); len(files) != 0 {
			t.Fatalf("removed volume %s still holds %q", v.Addr, files[:min(3, len(files))])
		}
	}
}

// TestRebalanceSkipsUnreadableReplicas: a missing replica is copied from another one;
// a key with no readable replica is reported, left as it was, and fails the run.
func TestRebalanceSkipsUnreadableReplicas(t *testing.T) {
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Volumes = cfg.Volumes[:3] })
	five := []string{c.Vols[0].Addr, c.Vols[1].Addr, c.Vols[2].Addr, c.Vols[3].Addr, c.Vols[4].Addr}
	// Find keys that must move to a new volume.
	p := layout.Placement{Volumes: five, Replicas: 3, Subvolumes: 10}
	var moving []string
	for i := 0; len(moving) < 2; i++ {
		key := fmt.Sprintf("/u/%d", i)
		if slices.ContainsFunc(p.Choose(key), func(v string) bool { return v == five[3] || v == five[4] }) {
			moving = append(moving, key)
			c.Put(key, []byte(key))
		}
	}
	damaged, lost := moving[0], moving[1]
	// Damage the replica on a volume the key leaves, tried first as a copy source if
	// it comes first: the copy must use another one.
	rec := c.Record(damaged)
	leaving := (&Rebalancer{Placement: p}).Plan(damaged, rec).From[0]
	if err := os.Remove(filepath.Join(volumeDir(c, leaving), rec.Path(damaged))); err != nil {
		t.Fatal(err)
	}
	lostRec := c.Record(lost)
	for _, v := range lostRec.Volumes {
		os.Remove(filepath.Join(volumeDir(c, v), lostRec.Path(lost)))
	}
	c.StopMaster()
	var out bytes.Buffer
	err := runRebalance(context.Background(), rebalanceConfig(c, five), &out, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "1 keys failed") {
		t.Fatalf("rebalance with a lost key: %v\n%s", err, out.String())
	}
	c.Config.Volumes = five
	c.RestartMaster()
	if got := c.Record(lost); !slices.Equal(got.Volumes, lostRec.Volumes) {
		t.Fatalf("record of the lost key changed: %q, was %q", got.Volumes, lostRec.Volumes)
	}
	if status, got := c.Get(damaged); status != http.StatusOK || string(got) != damaged {
		t.Fatalf("damaged key after rebalance: %d %q", status, got)
	}
}

func volumeDir(c *testCluster, addr string) string {
	for _, v := range c.Vols {
		if v.Addr == addr {
			return v.Dir
		}
	}
	c.t.Fatalf("no volume %s", addr)
	return ""
}

// TestRebalanceKilled kills an offline rebalance with SIGKILL at several moments and
// runs it again: every key ends readable and placed right.
func TestRebalanceKilled(t *testing.T) {
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Volumes = cfg.Volumes[:3] })
	five := []string{c.Vols[0].Addr, c.Vols[1].Addr, c.Vols[2].Addr, c.Vols[3].Addr, c.Vols[4].Addr}
	values := map[string][]byte{}
	for i := range 300 {
		key := fmt.Sprintf("/kill/%03d", i)
		values[key] = testenv.RandomBytes(100000 + i)
		c.Put(key, values[key])
	}
	c.StopMaster()
	args := []string{"-volumes", strings.Join(five, ","), "-db", c.Config.DB, "-workers", "2", "rebalance"}
	newFiles := func() int { return len(c.Vols[3].Files()) + len(c.Vols[4].Files()) }
	for round := range 3 {
		// Kill each run once it has copied some more values: in the middle of its work.
		before := newFiles()
		cmd := exec.Command(davkvBinary, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(20 * time.Second)
	poll:
		for newFiles() < before+20+round*7 {
			select {
			case err := <-exited:
				t.Fatalf("round %d: rebalance finished before it could be killed: %v", round, err)
			case <-deadline:
				break poll
			case <-time.After(2 * time.Millisecond):
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		t.Logf("round %d: killed after %d new files: %v", round, newFiles(), <-exited)
	}
	code, stderr := davkv(t, args...)
	if code != 0 {
		t.Fatalf("rebalance after kills: exit %d\n%s", code, stderr)
	}
	c.Config.Volumes = five
	c.RestartMaster()
	checkPlaced(t, c, values)
	if n := len(c.AllFiles()); n != 3*len(values) {
		t.Fatalf("%d files on the volumes, want %d: old replicas left behind", n, 3*len(values))
	}
}

// TestRebalanceOnline rebalances through a running master while clients read the keys
// being moved and write others: no request may fail, and no read may see wrong bytes.
func TestRebalanceOnline(t *testing.T) {
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Volumes = cfg.Volumes[:3] })
	five := []string{c.Vols[0].Addr, c.Vols[1].Addr, c.Vols[2].Addr, c.Vols[3].Addr, c.Vols[4].Addr}
	values := fillCluster(t, c, "/online", 200)
	var live []string
	for key := range values {
		if c.Record(key).State == index.StateLive {
			live = append(live, key)
		}
	}
	c.Config.Volumes = five
	c.Config.Grace = time.Second
	c.RestartMaster()

	var requests, failures atomic.Int64
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	stop := make(chan struct{})
	var load sync.WaitGroup
	for w := range 4 {
		load.Go(func() { // readers of the keys being moved
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := live[rand.IntN(len(live))]
				requests.Add(1)
				if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, values[key]) {
					fail("GET %.40q during rebalance: %d, equal=%v", key, status, bytes.Equal(got, values[key]))
				}
			}
		})
		load.Go(func() { // writers of other keys
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("/load/%d/%d", w, i)
				value := testenv.RandomBytes(100 + i)
				requests.Add(3)
				if resp := c.Do(http.MethodPut, key, bytes.NewReader(value)); resp.StatusCode != http.StatusCreated {
					fail("PUT %s: %d", key, resp.StatusCode)
				}
				if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
					fail("GET %s: %d", key, status)
				}
				// The rebalance lists keys as they are written, and may hold this one
				// (REBALANCE, or its sweep of old replicas) at the moment of the
				// DELETE: 409 says so, and a client tries again.
				status := 0
				for try := 0; try < 100; try++ {
					if status = c.Do(http.MethodDelete, key, nil).StatusCode; status != http.StatusConflict {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if status != http.StatusNoContent {
					fail("DELETE %s: %d", key, status)
				}
			}
		})
	}
	var out bytes.Buffer
	err := runRebalance(context.Background(), RebalanceConfig{Master: c.URL, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}, &out, testLogger(t))
	// Keep the load going past the grace period, so that reads land after old
	// replicas are deleted too.
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	load.Wait()
	t.Logf("%s%d requests during the rebalance, %d failed", out.String(), requests.Load(), failures.Load())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "moved") {
		t.Fatalf("online rebalance: %s", out.String())
	}
	testenv.Eventually(t, 10*time.Second, "old replicas not deleted after the grace period", func() bool {
		n := 0
		for key := range values {
			if rec, err := c.Master.index.Get(key); err == nil {
				n += len(rec.Leftovers)
			}
		}
		return n == 0
	})
	checkPlaced(t, c, values)
	if out.Reset(); runRebalance(context.Background(), RebalanceConfig{Master: c.URL, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}, &out, testLogger(t)) != nil ||
		!strings.Contains(out.String(), "nothing to move") {
		t.Fatalf("second online run: %s", out.String())
	}
}

func TestRebalanceConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  RebalanceConfig
		want string
	}{
		{RebalanceConfig{Master: "x:1"}, "-workers"},
		{RebalanceConfig{BatchConfig: BatchConfig{Workers: 1}}, "missing -db"},
		{RebalanceConfig{BatchConfig: BatchConfig{Workers: 1}, ClusterConfig: ClusterConfig{DB: "d", Volumes: []string{"a:1"}, Replicas: 3, Subvolumes: 10}}, "-replicas 3 needs"},
	} {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
	if err := (RebalanceConfig{BatchConfig: BatchConfig{Workers: 1}, Master: "x:1"}).Validate(); err != nil {
		t.Errorf("online config: %v", err)
	}
}
