package main

import (
	"bytes"
	"context"
	"errors"
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

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/testenv"
)

// fillCluster writes n keys of assorted sizes and shapes, unlinks every 7th and deletes
// every 11th, and returns the values of the keys that still exist.
func fillCluster(t *testing.T, c *testCluster, prefix string, n int) map[string][]byte {
	t.Helper()
	values := map[string][]byte{}
	odd := []string{"/" + strings.Repeat("long", 250), "/é/ü/ñ key with spaces", "/nest/a", "/nest/a/b", "/nest/a/b/c"}
	for i := range n {
		key := fmt.Sprintf("%s/%04d", prefix, i)
		if i < len(odd) {
			key = odd[i] + prefix
		}
		value := testenv.RandomBytes(1 + i*37%5000)
		c.Put(key, value)
		values[key] = value
	}
	i := 0
	for _, key := range slices.Sorted(maps.Keys(values)) {
		switch {
		case i%11 == 0:
			if resp := c.Do(http.MethodDelete, key, nil); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE %s: %d", key, resp.StatusCode)
			}
			delete(values, key)
		case i%7 == 0:
			if resp := c.Do("UNLINK", key, nil); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("UNLINK %s: %d", key, resp.StatusCode)
			}
		}
		i++
	}
	return values
}

func rebuildConfig(c *testCluster, db string) RebuildConfig {
	cluster := c.Config.ClusterConfig
	cluster.DB = db
	return RebuildConfig{ClusterConfig: cluster, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}, MD5: true}
}

// TestRebuildEquality writes keys through a master, rebuilds the index from the volumes
// into a second one, starts a master on it and compares both key by key.
func TestRebuildEquality(t *testing.T) {
	c := startCluster(t, 5, nil)
	values := fillCluster(t, c, "/rb", 150)
	db := filepath.Join(t.TempDir(), "rebuilt")
	var out bytes.Buffer
	if err := runRebuild(context.Background(), rebuildConfig(c, db), &out, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), fmt.Sprintf("rebuild: %d keys", len(values))) {
		t.Fatalf("summary: %s", out.String())
	}

	orig := c.Master
	second := &testCluster{t: t, Vols: c.Vols, Config: c.Config, client: c.client, raw: c.raw}
	second.Config.DB = db
	second.startMaster()

	for _, q := range []string{"/?list", "/?unlinked", "/nest?list"} {
		a, b := listKeys(t, c, q), listKeys(t, second, q)
		if !slices.Equal(a.Keys, b.Keys) || len(a.Keys) == 0 && q != "/nest?list" {
			t.Fatalf("%s: original %q, rebuilt %q", q, a.Keys, b.Keys)
		}
	}
	err := orig.index.Scan("", "", func(key string, want index.Record) (bool, error) {
		got, err := second.Master.index.Get(key)
		if err != nil {
			return false, fmt.Errorf("%.40q missing from the rebuilt index: %w", key, err)
		}
		if got.State != want.State || !slices.Equal(got.Volumes, want.Volumes) || got.Sub != want.Sub ||
			got.Size != want.Size || got.MD5 != want.MD5 {
			return false, fmt.Errorf("%.40q: rebuilt %+v, original %+v", key, got, want)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := index.CountKeys(second.Master.index); n != int64(len(values)) {
		t.Fatalf("rebuilt index has %d keys, want %d (deleted keys came back?)", n, len(values))
	}
	for key, value := range values {
		status, got := second.Get(key)
		if c.Record(key).State == index.StateUnlinked {
			if status != http.StatusNotFound {
				t.Fatalf("GET of unlinked %.40q through the rebuilt index: %d", key, status)
			}
		} else if status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %.40q through the rebuilt index: %d", key, status)
		}
	}
}

func TestRebuildRefusesExistingIndex(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/k", []byte("v"))
	cfg := rebuildConfig(c, c.Config.DB)
	c.StopMaster()
	if err := runRebuild(context.Background(), cfg, &bytes.Buffer{}, testLogger(t)); !errors.Is(err, ErrIndexExists) {
		t.Fatalf("rebuild over an index: %v, want ErrIndexExists", err)
	}
	cfg.Force, cfg.MD5 = true, false
	if err := runRebuild(context.Background(), cfg, &bytes.Buffer{}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	idx, err := openIndex(cfg.DB, false)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	rec, err := idx.Get("/k")
	if err != nil || rec.State != index.StateLive || rec.MD5 != "" || rec.Size != 1 {
		t.Fatalf("record without -md5: %+v, %v", rec, err)
	}
}

// TestRebuildReportsLeftovers: a value on fewer volumes than -replicas is kept and
// reported; files davkv did not write and markers without a value are ignored.
func TestRebuildReportsLeftovers(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/partial", []byte("x"))
	c.Put("/whole", []byte("y"))
	path := c.Record("/partial").Path("/partial")
	if err := os.Remove(filepath.Join(c.Vols[0].Dir, path)); err != nil {
		t.Fatal(err)
	}
	client := NewVolumeClient(time.Second, "")
	ctx := context.Background()
	if err := client.Put(ctx, c.Vols[1].Addr, "sv00/zz/zz/stray!", strings.NewReader("?"), 1); err != nil {
		t.Fatal(err)
	}
	if err := client.Put(ctx, c.Vols[1].Addr, layout.MarkerPath("/gone", 0, 0), http.NoBody, 0); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	db := filepath.Join(t.TempDir(), "rebuilt")
	if err := runRebuild(ctx, rebuildConfig(c, db), &out, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"rebuild: 2 keys", "1 keys have fewer replicas", "/partial (2)", "1 unlink markers without a value", "1 files that davkv did not write"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRebuildUnreachableVolume: a volume that cannot be listed makes rebuild fail
// rather than write an index that silently lacks its keys.
func TestRebuildUnreachableVolume(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/k", []byte("v"))
	c.Vols[2].Stop()
	err := runRebuild(context.Background(), rebuildConfig(c, filepath.Join(t.TempDir(), "db")), &bytes.Buffer{}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), c.Vols[2].Addr) {
		t.Fatalf("rebuild with a volume down: %v", err)
	}
}

// TestChooseGen: rebuild keeps the newest generation found on enough volumes, and
// records the others as stale.
func TestChooseGen(t *testing.T) {
	m := func(gen uint64) uint64 { return gen | markerGen }
	tests := []struct {
		name  string
		in    index.Record
		found bool
		want  index.Record
	}{
		{"one generation", index.Record{State: index.StateLive, Gen: 0, Volumes: []string{"a", "b", "c"}, Size: 5},
			true, index.Record{State: index.StateLive, Gen: 0, Volumes: []string{"a", "b", "c"}, Size: 5}},
		{"newest complete wins", index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a", "b", "c"}, Size: 5, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"b", "c", "d"}}}},
			true, index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a", "b", "c"}, Size: 5, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"b", "c", "d"}}}}},
		{"unfinished overwrite", index.Record{State: index.StateLive, Gen: 3, Volumes: []string{"a"}, Size: 5, Stale: []index.StaleGen{{Gen: 2, Volumes: []string{"a", "b", "c"}}, {Gen: 1, Volumes: []string{"d"}}}},
			true, index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a", "b", "c"}, Size: 99, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"d"}}, {Gen: 3, Volumes: []string{"a"}}}}},
		{"volumes missing: the best kept", index.Record{State: index.StateLive, Gen: 1, Volumes: []string{"a", "b"}, Size: 5, Stale: []index.StaleGen{{Gen: 0, Volumes: []string{"c", "d"}}}},
			true, index.Record{State: index.StateLive, Gen: 1, Volumes: []string{"a", "b"}, Size: 5, Stale: []index.StaleGen{{Gen: 0, Volumes: []string{"c", "d"}}}}},
		{"marker of its generation", index.Record{State: index.StateLive, Gen: 1, Volumes: []string{"a", "b", "c"}, Stale: []index.StaleGen{{Gen: m(1), Volumes: []string{"a", "b", "c"}}}},
			true, index.Record{State: index.StateUnlinked, Gen: 1, Volumes: []string{"a", "b", "c"}}},
		{"marker of an old generation", index.Record{State: index.StateLive, Gen: 1, Volumes: []string{"a", "b", "c"}, Stale: []index.StaleGen{{Gen: m(0), Volumes: []string{"d"}}, {Gen: 0, Volumes: []string{"a"}}}},
			true, index.Record{State: index.StateLive, Gen: 1, Volumes: []string{"a", "b", "c"}, Stale: []index.StaleGen{{Gen: 0, Volumes: []string{"d", "a"}}}}},
		{"markers only", index.Record{State: index.StateLive, Stale: []index.StaleGen{{Gen: m(0), Volumes: []string{"a"}}}}, false, index.Record{}},
		{"deleted while a volume was away", index.Record{State: index.StateLive, Gen: 0, Volumes: []string{"c"}, Size: 5, Stale: []index.StaleGen{{Gen: m(0), Volumes: []string{"c"}}}, Tombstones: []index.StaleGen{{Gen: 0, Volumes: []string{"a", "b"}}}},
			true, index.Record{State: index.StateDeleting, Gen: 0, Stale: []index.StaleGen{{Gen: 0, Volumes: []string{"c"}}}, Tombstones: []index.StaleGen{{Gen: 0, Volumes: []string{"a", "b"}}}}},
		{"deleted with old generations", index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"c"}, Size: 5, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"c", "d"}}}, Tombstones: []index.StaleGen{{Gen: 2, Volumes: []string{"a"}}, {Gen: 0, Volumes: []string{"b"}}}},
			true, index.Record{State: index.StateDeleting, Gen: 2, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"c", "d"}}, {Gen: 2, Volumes: []string{"c"}}}, Tombstones: []index.StaleGen{{Gen: 2, Volumes: []string{"a"}}, {Gen: 0, Volumes: []string{"b"}}}}},
		{"tombstones only", index.Record{State: index.StateLive, Tombstones: []index.StaleGen{{Gen: 3, Volumes: []string{"a"}}}},
			true, index.Record{State: index.StateDeleting, Stale: []index.StaleGen{}, Tombstones: []index.StaleGen{{Gen: 3, Volumes: []string{"a"}}}}},
		{"written again after a delete", index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a", "b", "c"}, Size: 5, Stale: []index.StaleGen{{Gen: 0, Volumes: []string{"d"}}}, Tombstones: []index.StaleGen{{Gen: 1, Volumes: []string{"a", "b"}}}},
			true, index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a", "b", "c"}, Size: 5, Stale: []index.StaleGen{{Gen: 0, Volumes: []string{"d"}}}, Tombstones: []index.StaleGen{{Gen: 1, Volumes: []string{"a", "b"}}}}},
		{"a deleted generation is never chosen", index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a"}, Size: 5, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"a", "b", "c"}}}, Tombstones: []index.StaleGen{{Gen: 1, Volumes: []string{"b", "c"}}}},
			true, index.Record{State: index.StateLive, Gen: 2, Volumes: []string{"a"}, Size: 5, Stale: []index.StaleGen{{Gen: 1, Volumes: []string{"a", "b", "c"}}}, Tombstones: []index.StaleGen{{Gen: 1, Volumes: []string{"b", "c"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.in
			found, err := chooseGen(&rec, 3, func(gen uint64, volume string) (int64, error) { return 99, nil })
			if err != nil || found != tt.found {
				t.Fatalf("chooseGen = %v, %v; want %v", found, err, tt.found)
			}
			if found && fmt.Sprint(rec) != fmt.Sprint(tt.want) {
				t.Fatalf("got %+v\nwant %+v", rec, tt.want)
			}
		})
	}
}

// TestRebuildGenerations: S3 overwrites leave older generations on the volumes for the
// grace period. Rebuild takes each key's newest complete generation as its value, the
// older ones (and an incomplete newer one) as stale; verify finds them owned, not
// orphans, and verify -fix deletes them.
func TestRebuildGenerations(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys = testS3Keys; cfg.Grace = time.Hour })
	s := s3Client(c, "davkvtest", "davkvtestsecret")
	ctx := context.Background()
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("gens")}); err != nil {
		t.Fatal(err)
	}
	values, gens := map[string][][]byte{}, map[string][]uint64{}
	for _, key := range []string{"whole", "cut"} {
		for i := range 3 {
			v := testenv.RandomBytes(100 + i)
			values[key] = append(values[key], v)
			if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("gens"), Key: aws.String(key), Body: bytes.NewReader(v)}); err != nil {
				t.Fatal(err)
			}
			gens[key] = append(gens[key], c.Record("/gens/"+key).Gen)
		}
	}
	// An overwrite that a crash cut short: its newest generation on one volume only.
	cut := c.Record("/gens/cut")
	for _, v := range cut.Volumes[1:] {
		if err := os.Remove(filepath.Join(volumeDir(c, v), cut.Path("/gens/cut"))); err != nil {
			t.Fatal(err)
		}
	}
	c.StopMaster()

	db := filepath.Join(t.TempDir(), "rebuilt")
	var out bytes.Buffer
	if err := runRebuild(ctx, rebuildConfig(c, db), &out, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if !strings.Contains(out.String(), "2 keys also have files of older or unfinished writes") ||
		!strings.Contains(out.String(), fmt.Sprintf("1 keys kept at a generation older than one found on fewer volumes (an overwrite that never finished, or one answered with fewer replicas under -minreplicas: the files cannot tell); the newer is recorded as stale, so look before verify -fix deletes it: /gens/cut (kept .g%x on 3 volumes; .g%x on 1)", gens["cut"][1], gens["cut"][2])) {
		t.Fatalf("summary: %s", out.String())
	}
	c.Config.DB = db
	tests := []struct {
		key   string
		gen   uint64
		value []byte
		stale []uint64
	}{
		{"/gens/whole", gens["whole"][2], values["whole"][2], gens["whole"][:2]},
		{"/gens/cut", gens["cut"][1], values["cut"][1], []uint64{gens["cut"][0], gens["cut"][2]}},
	}
	idx, err := openIndex(db, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		rec, err := idx.Get(tt.key)
		var stale []uint64
		for _, sg := range rec.Stale {
			stale = append(stale, sg.Gen)
		}
		if err != nil || rec.Gen != tt.gen || rec.Size != int64(len(tt.value)) || !slices.Equal(stale, tt.stale) || !rec.Pending() {
			t.Fatalf("%s rebuilt: %+v, %v; want generation %#x of %d bytes, stale %#x", tt.key, rec, err, tt.gen, len(tt.value), tt.stale)
		}
	}
	idx.Close()

	verify := func(fix bool) string {
		cfg := VerifyConfig{ClusterConfig: c.Config.ClusterConfig, CheckOptions: CheckOptions{Deep: true, Fix: fix}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
		var out bytes.Buffer
		if err := runVerify(ctx, cfg, &out, testLogger(t)); err != nil {
			t.Fatalf("verify -fix=%v: %v\n%s", fix, err, out.String())
		}
		return out.String()
	}
	if out := verify(false); strings.Contains(out, probOrphan) || !strings.Contains(out, probLeftovers) {
		t.Fatalf("verify of the rebuilt index:\n%s", out)
	}
	verify(true)
	if files := c.AllFiles(); len(files) != 6 {
		t.Fatalf("after verify -fix: %d files, want 3 replicas of each key:\n%q", len(files), files)
	}
	c.startMaster()
	for _, tt := range tests {
		if status, got := c.Get(tt.key); status != http.StatusOK || !bytes.Equal(got, tt.value) {
			t.Fatalf("GET %s through the rebuilt index: %d, %d bytes", tt.key, status, len(got))
		}
	}
}

// TestRebuildOldLayout: volumes written by davkv before every write had a generation
// of its own (a key written once at its plain name, generation 0; S3 overwrites at .g1,
// .g2, ...; unlink markers beside them) rebuild as they were, verify finds them whole,
// and the keys go on: deleted, written again in clock generations.
func TestRebuildOldLayout(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.StopMaster()
	p := c.Config.Placement()
	values := map[string][]byte{"/old/once": []byte("once"), "/old/over": []byte("second overwrite"), "/old/unl": []byte("unlinked")}
	files := map[string]uint64{"/old/once": 0, "/old/over": 2, "/old/unl": 0}
	for key, gen := range files {
		sub := p.Subvolume(key)
		for _, v := range p.Choose(key) {
			write := func(path string, b []byte) {
				full := filepath.Join(volumeDir(c, v), path)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(layout.GenPath(key, sub, gen), values[key])
			if key == "/old/unl" {
				write(layout.MarkerPath(key, sub, gen), nil)
			}
		}
	}
	for _, tt := range []struct{ key, path string }{
		{"/old/once", "sv08/d8/aa/L29sZC9vbmNl"},
		{"/old/over", "sv02/06/c8/L29sZC9vdmVy.g2"},
	} {
		if got := layout.GenPath(tt.key, p.Subvolume(tt.key), files[tt.key]); got != tt.path {
			t.Fatalf("%s written by an older davkv at %s, want %s", tt.key, got, tt.path)
		}
	}
	db := filepath.Join(t.TempDir(), "rebuilt")
	var out bytes.Buffer
	if err := runRebuild(context.Background(), rebuildConfig(c, db), &out, testLogger(t)); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out.String())
	}
	c.Config.DB = db
	cfg := VerifyConfig{ClusterConfig: c.Config.ClusterConfig, CheckOptions: CheckOptions{Deep: true}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}
	out.Reset()
	if err := runVerify(context.Background(), cfg, &out, testLogger(t)); err != nil || !strings.Contains(out.String(), "the data is whole") {
		t.Fatalf("verify of the old layout: %v\n%s", err, out.String())
	}
	c.startMaster()
	for key, gen := range files {
		rec := c.Record(key)
		if rec.Gen != gen || len(rec.Volumes) != 3 || (rec.State == index.StateUnlinked) != (key == "/old/unl") {
			t.Fatalf("%s rebuilt as %+v, want generation %d on 3 volumes", key, rec, gen)
		}
	}
	for _, key := range []string{"/old/once", "/old/over"} {
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, values[key]) {
			t.Fatalf("GET %s: %d %q", key, status, got)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if resp := c.Do(http.MethodDelete, key, nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d", key, resp.StatusCode)
		}
		c.Put(key, []byte("new"))
		if rec := c.Record(key); rec.Gen <= 2 {
			t.Fatalf("%s written anew in generation %d, want a clock one", key, rec.Gen)
		}
	}
	if n := len(c.AllFiles()); n != 9 {
		t.Fatalf("%d files on the volumes, want the 9 of the new values: %v", n, c.AllFiles())
	}
}
