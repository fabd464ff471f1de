package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
)

// TestVerify damages the volumes behind the master's back and shows verify finding each
// problem and verify -fix repairing it.
func TestVerify(t *testing.T) {
	c := startCluster(t, 3, nil)
	values := putAll(t, c, "/v", 20, 500)
	if resp := c.Do("UNLINK", "/v/3", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatal(resp.Status)
	}
	rec := func(key string) (index.Record, string) { r := c.Record(key); return r, r.Path(key) }
	// A replica removed, a replica corrupted (same size: only -deep sees it), an unlink
	// marker lost, orphans old and new, a write that never finished.
	r1, p1 := rec("/v/1")
	removed := filepath.Join(volumeDir(c, r1.Volumes[0]), p1)
	os.Remove(removed)
	r2, p2 := rec("/v/2")
	os.WriteFile(filepath.Join(volumeDir(c, r2.Volumes[1]), p2), bytes.Repeat([]byte{'!'}, int(r2.Size)), 0o644)
	r3, _ := rec("/v/3")
	os.Remove(filepath.Join(volumeDir(c, r3.Volumes[2]), r3.MarkerPath("/v/3")))
	oldOrphan := filepath.Join(c.Vols[0].Dir, layout.KeyPath("/nobody", 0))
	os.MkdirAll(filepath.Dir(oldOrphan), 0o755)
	os.WriteFile(oldOrphan, []byte("x"), 0o644)
	os.Chtimes(oldOrphan, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	youngOrphan := filepath.Join(c.Vols[1].Dir, layout.KeyPath("/newborn", 0))
	os.MkdirAll(filepath.Dir(youngOrphan), 0o755)
	os.WriteFile(youngOrphan, []byte("y"), 0o644)
	if err := c.Master.index.Put("/v/unfinished", &index.Record{State: index.StateWriting, Volumes: c.Config.Volumes}); err != nil {
		t.Fatal(err)
	}
	c.StopMaster()

	verify := func(deep, fix bool, grace time.Duration) (string, error) {
		cfg := VerifyConfig{ClusterConfig: c.Config.ClusterConfig, CheckOptions: CheckOptions{Deep: deep, Fix: fix, Grace: grace}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
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

// TestVerifyOnline does verify's work through a running master.
func TestVerifyOnline(t *testing.T) {
	c := startCluster(t, 3, nil)
	values := putAll(t, c, "/vo", 30, 300)
	r := c.Record("/vo/7")
	removed := filepath.Join(volumeDir(c, r.Volumes[1]), r.Path("/vo/7"))
	os.Remove(removed)
	orphan := filepath.Join(c.Vols[2].Dir, layout.KeyPath("/stray", 0))
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("x"), 0o644)
	os.Chtimes(orphan, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))

	verify := func(fix bool) (string, error) {
		var out bytes.Buffer
		err := runVerify(context.Background(), VerifyConfig{Master: c.URL, CheckOptions: CheckOptions{Fix: fix, Grace: time.Hour}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}, &out, testLogger(t))
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
