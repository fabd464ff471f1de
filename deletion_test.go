package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/testenv"
)

// TestDeleteWithVolumeDown: with one of a key's volumes stopped, DELETE and UNLINK
// answer 204 at once; the deleted key's replica there is recorded, with tombstones on
// the other volumes, and a PUT of the key meanwhile writes a new generation that the
// sweeper leaves alone. When the volume is back, the sweeper removes the old replica
// and the tombstones, and writes the missing unlink marker.
func TestDeleteWithVolumeDown(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Grace, cfg.MinReplicas = 100*time.Millisecond, 2 })
	c.Put("/del", []byte("old"))
	c.Put("/unl", []byte("kept"))
	oldGen, unlRec := c.Record("/del").Gen, c.Record("/unl")
	down, up := c.Vols[0], []string{c.Vols[1].Addr, c.Vols[2].Addr}
	slices.Sort(up)
	down.Stop()
	for _, tt := range []struct{ method, key string }{{http.MethodDelete, "/del"}, {"UNLINK", "/unl"}} {
		start := time.Now()
		if resp := c.Do(tt.method, tt.key, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s with a volume down: %d, want 204", tt.method, resp.StatusCode)
		}
		if took := time.Since(start); took > c.Config.VolTimeout+2*time.Second {
			t.Fatalf("%s took %v", tt.method, took)
		}
		if status, _ := c.Get(tt.key); status != http.StatusNotFound {
			t.Fatalf("GET after %s: %d, want 404", tt.method, status)
		}
	}
	rec := c.Record("/del")
	want := index.Record{State: index.StateDeleting, Sub: rec.Sub, Owner: c.Master.index.Owner(), Gen: oldGen, Stale: []index.StaleGen{{Gen: oldGen, Volumes: []string{down.Addr}}}, Tombstones: []index.StaleGen{{Gen: oldGen, Volumes: up}}}
	slices.Sort(rec.Tombstones[0].Volumes)
	rec.Tombstones[0].Time, rec.Time, rec.Rev = 0, 0, 0
	if fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Fatalf("record of the deleted key: %+v\nwant %+v", rec, want)
	}
	if on := c.VolumeFiles(layout.TombstonePath("/del", rec.Sub, oldGen)); !slices.Equal(on, up) {
		t.Fatalf("tombstones on %v, want %v", on, up)
	}
	if on := c.VolumeFiles(layout.GenPath("/del", rec.Sub, oldGen)); !slices.Equal(on, []string{down.Addr}) {
		t.Fatalf("replicas of the deleted key on %v, want only the stopped volume", on)
	}
	if rec := c.Record("/unl"); rec.State != index.StateUnlinked || !slices.Equal(rec.Unmarked, []string{down.Addr}) {
		t.Fatalf("record of the unlinked key: %+v", rec)
	}

	// A new value while the old one's replica waits: a generation of its own.
	c.Put("/del", []byte("new"))
	if status, got := c.Get("/del"); status != http.StatusOK || string(got) != "new" {
		t.Fatalf("GET of the new value: %d %q", status, got)
	}
	newGen := c.Record("/del").Gen
	if rec := c.Record("/del"); rec.Gen <= oldGen || len(rec.Tombstones) != 1 {
		t.Fatalf("record of the new value: %+v", rec)
	}
	time.Sleep(2 * c.Config.Grace)

	if err := down.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the sweeper did not finish after the volume came back", func() bool {
		del, unl := c.Record("/del"), c.Record("/unl")
		return !del.Pending() && !unl.Pending()
	})
	sub := c.Record("/del").Sub
	for path, want := range map[string][]string{
		layout.GenPath("/del", sub, oldGen):       nil,
		layout.TombstonePath("/del", sub, oldGen): nil,
		layout.GenPath("/del", sub, newGen):       up,
		unlRec.MarkerPath("/unl"):                 c.Config.Volumes,
	} {
		want = slices.Sorted(slices.Values(want))
		if on := c.VolumeFiles(path); !slices.Equal(on, want) {
			t.Errorf("%s on %v, want %v", path, on, want)
		}
	}
	if status, got := c.Get("/del"); status != http.StatusOK || string(got) != "new" {
		t.Fatalf("GET of the new value after the sweep: %d %q", status, got)
	}
	for _, key := range []string{"/del", "/unl"} {
		if resp := c.Do(http.MethodDelete, key, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d", key, resp.StatusCode)
		}
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Fatalf("files left: %s", strings.Join(files, " "))
	}
}

// TestDeleteAnswersOnce: a value is deleted once, and only one DELETE says so. With
// one of its volumes frozen (SIGSTOP), a DELETE answers 204 and leaves the frozen
// volume's replica to the sweeper; every DELETE after it answers 404 (S3's
// DeleteObject 204, as S3 answers for a missing key), while the volume is frozen and
// once it is back, and never a second 204 or an error for a delete already done.
func TestDeleteAnswersOnce(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys, cfg.MinReplicas = testS3Keys, 2 })
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	ctx := context.Background()
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("once")}); err != nil {
		t.Fatal(err)
	}
	c.Put("/once/native", []byte("native"))
	c.Put("/once/s3", []byte("s3"))
	s3Delete := func(key string) {
		t.Helper()
		if _, err := s.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("once"), Key: aws.String(key)}); err != nil {
			t.Fatalf("S3 DeleteObject %s: %v", key, err)
		}
	}
	deleteOnce := func(when string, want int) {
		t.Helper()
		resp := c.Do(http.MethodDelete, "/once/native", nil)
		if body := readAll(t, resp.Body); resp.StatusCode != want {
			t.Fatalf("DELETE %s: %d %s, want %d", when, resp.StatusCode, body, want)
		}
		if status, _ := c.Get("/once/native"); status != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", when, status)
		}
	}

	frozen := c.Vols[0]
	frozen.Pause()
	defer frozen.Resume()
	deleteOnce("with a volume frozen", http.StatusNoContent) // waits for the volume's timeout
	s3Delete("s3")
	testenv.Eventually(t, 5*time.Second, "the frozen volume counts as up", func() bool { return !c.Master.health.Up(frozen.Addr) })
	if rec := c.Record("/once/native"); rec.State != index.StateDeleting || len(rec.Stale) != 1 || !slices.Equal(rec.Stale[0].Volumes, []string{frozen.Addr}) {
		t.Fatalf("record of the deleted key: %+v, want deleting, a replica left on %s", rec, frozen.Addr)
	}
	deleteOnce("again, the volume frozen and known down", http.StatusNotFound)
	s3Delete("s3")

	frozen.Resume()
	testenv.Eventually(t, 5*time.Second, "the volume thawed counts as down", func() bool { return c.Master.health.Up(frozen.Addr) })
	deleteOnce("again, the volume back", http.StatusNotFound)
	s3Delete("s3")
	testenv.Eventually(t, 10*time.Second, "the sweeper did not finish the deletes", func() bool {
		return len(c.AllFiles()) == 0 && !slices.ContainsFunc([]string{"/once/native", "/once/s3"}, func(key string) bool {
			_, err := c.Master.index.Get(key)
			return !errors.Is(err, index.ErrNotFound)
		})
	})
	deleteOnce("once the sweeper is done", http.StatusNotFound)
}

// dropPackets makes the volume on port unreachable as a dead host or a cut cable
// would: nftables drops every packet sent to it, so connections and requests hang
// instead of being refused. The returned function (also run at cleanup) lets them
// through again.
func dropPackets(t *testing.T, port int) (restore func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dropping packets with nftables needs root (CI runs as root)")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatal("nft is not installed: run the tests with 'make test', which installs nftables")
	}
	table := fmt.Sprintf("davkv_test_%d", port)
	rules := fmt.Sprintf("table inet %s {\n\tchain out {\n\t\ttype filter hook output priority 0; policy accept;\n\t\tip daddr 127.0.0.0/8 tcp dport %d drop\n\t}\n}\n", table, port)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot drop packets with nftables here: %v: %s", err, out)
	}
	dropped := true
	restore = func() {
		if dropped {
			dropped = false
			if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
				t.Errorf("nft delete table: %v: %s", err, out)
			}
		}
	}
	t.Cleanup(restore)
	return restore
}

// TestVolumeUnreachable drops every packet to one of five volumes. Every DELETE, PUT,
// GET and UNLINK goes on, each within -voltimeout plus 2 s: the first request to notice waits
// for the timeout, and the volume is skipped after that. When packets flow again, the
// sweeper removes every replica the deletes left there and writes the unlink markers
// the unlinks could not. Then the same again with the
// master stopped before the volume is back and the index rebuilt from the volumes:
// the tombstones keep the deleted keys deleted, and the master started on the rebuilt
// index removes what is left. Verify finds the data whole, with no orphans.
func TestVolumeUnreachable(t *testing.T) {
	c := startCluster(t, 5, nil)
	x := c.Vols[0]
	onX := func(key string) bool { return slices.Contains(c.Record(key).Volumes, x.Addr) }
	// Keys until 80 have a replica on x (three in five do).
	values := map[string][]byte{}
	var keys []string
	for i := 0; len(keys) < 80; i++ {
		key := fmt.Sprintf("/old/%d", i)
		values[key] = testenv.RandomBytes(10 << 10)
		c.Put(key, values[key])
		if onX(key) {
			keys = append(keys, key)
		}
	}
	limit := c.Config.VolTimeout + 2*time.Second
	var slowest [4]time.Duration
	var requests, acked int
	timed := func(i int, want int, method, key string, body []byte) []byte {
		t.Helper()
		requests++
		start := time.Now()
		resp := c.Fetch(method, key, bytes.NewReader(body))
		got := readAll(t, resp.Body)
		took := time.Since(start)
		slowest[i] = max(slowest[i], took)
		if resp.StatusCode != want || took > limit {
			t.Fatalf("%s %s with a volume unreachable: %d after %v, want %d within %v: %s", method, key, resp.StatusCode, took, want, limit, got)
		}
		acked++
		return []byte(got)
	}
	deleted, unlinked := map[string]bool{}, map[string]bool{}
	deleteKeys := func(keys []string) {
		for _, key := range keys {
			timed(0, http.StatusNoContent, http.MethodDelete, key, nil)
			deleted[key] = true
		}
	}
	noneLeft := func() bool {
		for key := range unlinked {
			if c.Record(key).Pending() {
				return false
			}
		}
		for key := range deleted {
			if _, err := c.Master.index.Get(key); !errors.Is(err, index.ErrNotFound) {
				return false
			}
			if files := keyFiles(c, key); len(files) > 0 {
				return false
			}
		}
		return true
	}

	restore := dropPackets(t, x.Port)
	for i := range 30 {
		deleteKeys(keys[i : i+1]) // the first waits for the volume's timeout
		key := fmt.Sprintf("/new/%d", i)
		values[key] = testenv.RandomBytes([]int{20 << 10, 1 << 20}[i%2])
		timed(1, http.StatusCreated, http.MethodPut, key, values[key])
		if key := keys[40+i]; !bytes.Equal(timed(2, http.StatusOK, http.MethodGet, key, nil), values[key]) {
			t.Fatalf("GET %s: wrong value", key)
		}
		if i < 10 {
			timed(3, http.StatusNoContent, "UNLINK", keys[70+i], nil)
			unlinked[keys[70+i]] = true
		}
	}
	t.Logf("volume unreachable: %d requests, %d acknowledged in time; slowest DELETE %v, PUT %v, GET %v, UNLINK %v (limit %v)", requests, acked,
		slowest[0].Round(time.Millisecond), slowest[1].Round(time.Millisecond), slowest[2].Round(time.Millisecond), slowest[3].Round(time.Millisecond), limit)
	if c.Master.health.Up(x.Addr) {
		t.Fatal("the unreachable volume counts as up")
	}
	restore()
	testenv.Eventually(t, 20*time.Second, "replicas of deleted keys left after the volume came back", noneLeft)

	// Once more, with the master stopped before the volume is back, and a rebuild.
	restore = dropPackets(t, x.Port)
	testenv.Eventually(t, 5*time.Second, "the unreachable volume counts as up", func() bool { return !c.Master.health.Up(x.Addr) })
	deleteKeys(keys[30:40])
	c.StopMaster()
	restore()
	db := filepath.Join(t.TempDir(), "rebuilt")
	var out bytes.Buffer
	if err := runRebuild(context.Background(), rebuildConfig(c, db), &out, testLogger(t)); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "10 keys deleted while a volume was away") {
		t.Fatalf("rebuild summary:\n%s", out.String())
	}
	c.Config.DB = db
	c.startMaster()
	for key, value := range values {
		status, got := c.Get(key)
		if want := http.StatusOK; deleted[key] || unlinked[key] {
			if status != http.StatusNotFound {
				t.Fatalf("GET %s, deleted or unlinked, after rebuild: %d", key, status)
			}
		} else if status != want || !bytes.Equal(got, value) {
			t.Fatalf("GET %s after rebuild: %d", key, status)
		}
	}
	testenv.Eventually(t, 20*time.Second, "replicas of deleted keys left after the rebuilt index's recovery", noneLeft)
	cfg := VerifyConfig{Master: c.URL, CheckOptions: CheckOptions{Deep: true}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
	out.Reset()
	if err := runVerify(context.Background(), cfg, &out, testLogger(t)); err != nil || !strings.Contains(out.String(), "the data is whole") {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	for key := range unlinked {
		if rec := c.Record(key); rec.State != index.StateUnlinked {
			t.Fatalf("%s, unlinked, rebuilt as %s", key, rec.State)
		}
	}
	t.Logf("%d keys deleted with the volume unreachable, none left behind; %d unlinked, still unlinked after the rebuild; %d kept, read back whole (0 lost)",
		len(deleted), len(unlinked), len(values)-len(deleted)-len(unlinked))
}
