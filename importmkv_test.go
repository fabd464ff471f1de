package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/mkv"
	"davkv/internal/testenv"
)

// mkvCluster is a minikeyvalue cluster as minikeyvalue 451d248 leaves it, written
// directly: its LevelDB index and its files on the volumes of c.
type mkvCluster struct {
	db         string
	live       map[string][]byte // keys with a live record, and their values
	unlinked   map[string][]byte // keys with a DELETED record
	orphans    []string          // files without a record (hard-deleted keys), volume/path
	refused    []string          // keys davkv does not take, left in place
	replicas   int
	subvolumes int
}

// writeMKV builds a minikeyvalue cluster of n keys on c's volumes: 3 replicas on 5
// volumes with 10 subvolumes, records with and without HASH, DELETED records, keys
// whose base64 holds '/', a key that is not UTF-8, and files without a record.
func writeMKV(t testing.TB, c *testCluster, n, maxSize int) *mkvCluster {
	t.Helper()
	m := &mkvCluster{db: filepath.Join(t.TempDir(), "mkv-index"), live: map[string][]byte{}, unlinked: map[string][]byte{}, replicas: 3, subvolumes: 10}
	db, err := leveldb.OpenFile(m.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dirs := map[string]string{}
	var vols []string
	for _, v := range c.Vols {
		dirs[v.Addr] = v.Dir
		vols = append(vols, v.Addr)
	}
	// put writes key's files where minikeyvalue's key2volume and key2path put them,
	// on the first `on` of its volumes, and returns the record's volumes.
	put := func(key string, value []byte, on int) []string {
		chosen := mkv.Choose(key, vols, m.replicas, m.subvolumes)
		for _, v := range chosen[:on] {
			addr, subdir, err := mkv.SplitVolume(v)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dirs[addr], subdir, mkv.DiskPath(key))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, value, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return chosen
	}
	record := func(key, rec string) {
		if err := db.Put([]byte(key), []byte(rec), nil); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"/hello", "/a/b/c", "/???", "/ÿ?", "/camera/2024-01-01/frame-000001.jpg", "/ünï key with spaces", "/" + strings.Repeat("long", 40)}
	for i := range n {
		keys = append(keys, fmt.Sprintf("/data/%05d", i))
	}
	for i, key := range keys {
		value := testenv.RandomBytes(1 + i*997%maxSize)
		chosen := put(key, value, m.replicas)
		hash := ""
		if i%2 == 0 {
			hash = fmt.Sprintf("HASH%x", md5.Sum(value))
		}
		switch {
		case i%7 == 3:
			record(key, "DELETED"+hash+strings.Join(chosen, ","))
			m.unlinked[key] = value
		default:
			record(key, hash+strings.Join(chosen, ","))
			m.live[key] = value
		}
	}
	// A hard-deleted key: its files, no record.
	for _, v := range put("/orphan", []byte("deleted"), m.replicas) {
		addr, subdir, _ := mkv.SplitVolume(v)
		m.orphans = append(m.orphans, addr+"/"+subdir+"/"+mkv.DiskPath("/orphan"))
	}
	// A key that is not UTF-8, which davkv does not take.
	bad := "/\xff\xfe\xfd"
	record(bad, strings.Join(put(bad, []byte("binary key"), m.replicas), ","))
	m.refused = append(m.refused, bad)
	return m
}

// startMKV starts five volumes with a minikeyvalue cluster of 27 keys on them (see
// writeMKV), and a master for later, stopped; it returns them with the inodes of
// their files.
func startMKV(t *testing.T) (*testCluster, *mkvCluster, map[string][]uint64) {
	t.Helper()
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Ranking = layout.RankMKV })
	m := writeMKV(t, c, 20, 20000)
	before := inodes(t, c)
	c.StopMaster()
	return c, m, before
}

// inodes returns the inode of every file under each volume's directory, by volume.
func inodes(t testing.TB, c *testCluster) map[string][]uint64 {
	t.Helper()
	out := map[string][]uint64{}
	for _, v := range c.Vols {
		err := filepath.Walk(v.Dir, func(path string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if info.IsDir() && info.Name() == ".nginx" {
				return filepath.SkipDir
			}
			if !info.IsDir() && info.Size() > 0 {
				out[v.Addr] = append(out[v.Addr], info.Sys().(*syscall.Stat_t).Ino)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestImportMKV: a minikeyvalue cluster adopted in place reads back through a davkv
// master bit-exact, with no file copied; DELETED keys are unlinked, hard-deleted ones
// 404 with their files left as orphans; a second run does nothing; and verify -deep
// finds nothing else.
func TestImportMKV(t *testing.T) {
	c, m, before := startMKV(t)
	cfg := ImportConfig{ClusterConfig: c.Config.ClusterConfig, BatchConfig: BatchConfig{Workers: 4, VolTimeout: 10 * time.Second}, To: c.Config.DB}
	cfg.DB = m.db

	t.Run("minikeyvalue still running", func(t *testing.T) {
		held, err := leveldb.OpenFile(m.db, nil) // as minikeyvalue's master holds it
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		err = runImportMKV(context.Background(), cfg, io.Discard, testLogger(t))
		if !errors.Is(err, mkv.ErrInUse) {
			t.Fatalf("import with minikeyvalue's index held: %v, want ErrInUse", err)
		}
	})

	t.Run("volume without MOVE", func(t *testing.T) {
		// minikeyvalue's volume script allows PUT and DELETE only: nginx answers 405.
		noMove := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}))
		defer noMove.Close()
		addr := strings.TrimPrefix(noMove.URL, "http://")
		err := checkMove(context.Background(), NewVolumeClient(time.Second, ""), []string{c.Vols[0].Addr, addr})
		if err == nil || !strings.Contains(err.Error(), "volume "+addr+" refuses WebDAV MOVE") {
			t.Fatalf("checkMove: %v", err)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		dry := cfg
		dry.DryRun = true
		var out bytes.Buffer
		if err := runImportMKV(context.Background(), dry, &out, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("would adopt (dry run: nothing moved or written) %d keys (%d unlinked)", len(m.live)+len(m.unlinked), len(m.unlinked)); !strings.Contains(out.String(), want) {
			t.Fatalf("summary %q, want %q", out.String(), want)
		}
		if after := inodes(t, c); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("a dry run changed the volumes")
		}
	})

	var out bytes.Buffer
	withMD5 := cfg
	withMD5.MD5 = true
	if err := runImportMKV(context.Background(), withMD5, &out, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	keys := len(m.live) + len(m.unlinked)
	var adopted, unlinked, moved, inPlace int
	if _, err := fmt.Sscanf(afterField(out.String(), "import-mkv: adopted "), "%d keys (%d unlinked), %d files moved, 0 keys imported before", &adopted, &unlinked, &moved); err != nil ||
		adopted != keys || unlinked != len(m.unlinked) {
		t.Fatalf("summary %q (%v), want %d keys, %d unlinked", out.String(), err, keys, len(m.unlinked))
	}
	fmt.Sscanf(afterField(out.String(), "ms, "), "%d", new(int)) // the rate
	if line := afterField(out.String(), "\nimport-mkv: "); strings.Contains(line, "where davkv keeps them already") {
		fmt.Sscanf(line, "%d", &inPlace)
	}
	if moved+inPlace != 3*keys || inPlace == 0 {
		t.Fatalf("%d files moved and %d in place, want %d in all, some in place (names alike): %s", moved, inPlace, 3*keys, out.String())
	}
	if want := fmt.Sprintf("import-mkv: %d MD5s computed (-md5)", keys/2); !strings.Contains(out.String(), want) {
		t.Fatalf("summary %q, want %q (the records without HASH)", out.String(), want)
	}
	if !strings.Contains(out.String(), "1 keys davkv does not take (see checkKey), left as they are") {
		t.Fatalf("summary %q: the key that is not UTF-8 is not reported", out.String())
	}
	// No byte copied: every file is the one minikeyvalue wrote, renamed.
	if after := inodes(t, c); fmt.Sprint(sortedInodes(after)) != fmt.Sprint(sortedInodes(before)) {
		t.Fatalf("inodes changed: before %v, after %v", before, after)
	}

	c.startMaster()
	for key, value := range m.live {
		if status, got := c.Get(escapeKey(key)); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %.40q: %d, %d bytes; want %d", key, status, len(got), len(value))
		}
		// From HASH, or with -md5 read for records without it.
		if rec := c.Record(key); rec.MD5 != fmt.Sprintf("%x", md5.Sum(value)) || rec.Size != int64(len(value)) {
			t.Fatalf("%.40q: size %d, MD5 %q; want %d, %x", key, rec.Size, rec.MD5, len(value), md5.Sum(value))
		}
	}
	for key := range m.unlinked {
		if status, _ := c.Get(escapeKey(key)); status != http.StatusNotFound {
			t.Fatalf("GET of DELETED %.40q: %d, want 404", key, status)
		}
		if rec := c.Record(key); rec.State != index.StateUnlinked {
			t.Fatalf("%.40q: %v, want unlinked", key, rec.State)
		}
	}
	if status, _ := c.Get("/orphan"); status != http.StatusNotFound {
		t.Fatalf("GET of a key without a record: %d, want 404", status)
	}
	// Unlinked keys come back with DELETE of the unlinked, as minikeyvalue's do.
	if got := listKeys(t, c, "/?unlinked").Keys; len(got) != len(m.unlinked) {
		t.Fatalf("?unlinked lists %d keys, want %d", len(got), len(m.unlinked))
	}

	t.Run("again", func(t *testing.T) {
		c.StopMaster()
		defer c.startMaster()
		var out bytes.Buffer
		if err := runImportMKV(context.Background(), cfg, &out, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("adopted 0 keys (0 unlinked), 0 files moved, %d keys imported before", keys); !strings.Contains(out.String(), want) {
			t.Fatalf("summary %q, want %q", out.String(), want)
		}
	})

	t.Run("verify", func(t *testing.T) {
		var out bytes.Buffer
		err := runVerify(context.Background(), VerifyConfig{Master: c.URL, CheckOptions: CheckOptions{Deep: true}, BatchConfig: BatchConfig{Workers: 4, VolTimeout: time.Second}}, &out, testLogger(t))
		t.Log(out.String())
		if err != nil && !errors.Is(err, ErrNotWhole) {
			t.Fatal(err)
		}
		// The files of the key without a record and of the key davkv does not take
		// are orphans, and nothing else is wrong.
		orphans := len(m.orphans) + m.replicas*len(m.refused)
		for line := range strings.SplitSeq(out.String(), "\n") {
			if strings.Contains(line, " found ") && !strings.Contains(line, fmt.Sprintf("orphan files (no key owns them)                         %d found", orphans)) {
				t.Errorf("verify found: %s", line)
			}
		}
		if !strings.Contains(out.String(), "orphan files") {
			t.Errorf("verify found no orphans, want %d", orphans)
		}
	})
}

// TestImportMKVKilled: an import SIGKILLed half-way and run again ends as one that
// ran through: every key adopted, every file renamed once.
func TestImportMKVKilled(t *testing.T) {
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Ranking = layout.RankMKV })
	m := writeMKV(t, c, 400, 20000)
	c.StopMaster()
	args := []string{"import-mkv", "-db", m.db, "-to", c.Config.DB, "-volumes", strings.Join(c.Config.Volumes, ","), "-replicas", "3", "-subvolumes", "10", "-workers", "1", "-progress", "5ms"}
	cmd := exec.Command(davkvBinary, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed once it has adopted some keys, not all.
	scanner := bufio.NewScanner(stderr)
	for scanner.Scan() {
		var n int
		if _, err := fmt.Sscanf(afterField(scanner.Text(), "keys="), "%d", &n); err == nil && n >= 50 {
			break
		}
	}
	cmd.Process.Kill()
	go io.Copy(io.Discard, stderr)
	cmd.Wait()
	if strings.Contains(stdout.String(), "adopted") {
		t.Fatalf("the import finished before it was killed: %s", stdout.String())
	}
	keys := len(m.live) + len(m.unlinked)
	again := exec.Command(davkvBinary, args[:len(args)-2]...)
	out, err := again.CombinedOutput()
	if err != nil {
		t.Fatalf("import-mkv again: %v: %s", err, out)
	}
	t.Logf("%s", out)
	var adopted, moved, before int
	if _, err := fmt.Sscanf(afterField(string(out), "import-mkv: adopted "), "%d keys (%d unlinked), %d files moved, %d keys imported before", &adopted, new(int), &moved, &before); err != nil ||
		before < 50 || adopted+before != keys || moved > 3*adopted {
		t.Fatalf("second run: %d adopted, %d before, %d files moved (%v); want %d keys in all, at least 50 before, a key's files moved at most once", adopted, before, moved, err, keys)
	}
	c.startMaster()
	n, err := index.CountKeys(c.Master.index)
	if err != nil || n != int64(keys) {
		t.Fatalf("%d keys in the index, %v; want %d", n, err, keys)
	}
	for key, value := range m.live {
		if status, got := c.Get(escapeKey(key)); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %.40q: %d, %d bytes; want %d", key, status, len(got), len(value))
		}
	}
	for key := range m.unlinked {
		if rec := c.Record(key); rec.State != index.StateUnlinked {
			t.Fatalf("%.40q: %v, want unlinked", key, rec.State)
		}
	}
}

// afterField returns what follows name in a log line, or "".
func afterField(line, name string) string {
	_, after, _ := strings.Cut(line, name)
	return after
}

// escapeKey is key as a client sends it in a URL.
func escapeKey(key string) string { return (&url.URL{Path: key}).EscapedPath() }

func sortedInodes(m map[string][]uint64) map[string][]uint64 {
	out := map[string][]uint64{}
	for k, v := range m {
		out[k] = slices.Sorted(slices.Values(v))
	}
	return out
}

// TestRebuildMKV: without minikeyvalue's index, rebuild -mkv adopts its files alone,
// in place: every key with files reads back bit-exact (those minikeyvalue had
// DELETED, and the files of a hard-deleted key, come back live, as with its own
// rebuild), no file is copied, and a second rebuild finds them in davkv's layout.
func TestRebuildMKV(t *testing.T) {
	c, m, before := startMKV(t)
	cfg := rebuildConfig(c, c.Config.DB)
	cfg.MKV, cfg.Force = true, true
	var out bytes.Buffer
	if err := runRebuild(context.Background(), cfg, &out, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	keys := len(m.live) + len(m.unlinked) + 1 // and the hard-deleted one
	if want := fmt.Sprintf("rebuild: %d keys (0 unlinked)", keys); !strings.Contains(out.String(), want) {
		t.Fatalf("summary %q, want %q", out.String(), want)
	}
	var renamed, there int
	if _, err := fmt.Sscanf(afterField(out.String(), "\nrebuild: "), "%d of minikeyvalue's files renamed in place to davkv's layout; %d found there already", &renamed, &there); err != nil ||
		renamed > 3*keys || renamed+there < 3*keys {
		t.Fatalf("summary %q (%v): want at most %d renamed, and at least that many in all", out.String(), err, 3*keys)
	}
	if after := inodes(t, c); fmt.Sprint(sortedInodes(after)) != fmt.Sprint(sortedInodes(before)) {
		t.Fatalf("inodes changed: before %v, after %v", before, after)
	}
	c.startMaster()
	for _, values := range []map[string][]byte{m.live, m.unlinked} {
		for key, value := range values {
			if rec := c.Record(key); len(rec.Volumes) != 3 {
				t.Fatalf("%.40q on %q, want 3 volumes", key, rec.Volumes)
			}
			if status, got := c.Get(escapeKey(key)); status != http.StatusOK || !bytes.Equal(got, value) {
				t.Fatalf("GET %.40q: %d, %d bytes; want %d", key, status, len(got), len(value))
			}
		}
	}
	c.StopMaster()
	out.Reset()
	if err := runRebuild(context.Background(), cfg, &out, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("rebuild: %d keys (0 unlinked)", keys); !strings.Contains(out.String(), want) || strings.Contains(out.String(), "renamed in place") && !strings.Contains(out.String(), "rebuild: 0 of minikeyvalue's files renamed") {
		t.Fatalf("second rebuild %q, want %q and nothing renamed", out.String(), want)
	}
	c.startMaster()
}

// TestImportMKVScale times import-mkv of DAVKV_MKV_SCALE keys (of at most 1 KiB; 3
// replicas on 5 volumes, 10 subvolumes) against a rebuild of the same cluster
// afterwards and a rebuild -mkv of a second one: the figures in the README. Skipped
// unless DAVKV_MKV_SCALE is set.
func TestImportMKVScale(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("DAVKV_MKV_SCALE"))
	if err != nil {
		t.Skip("set DAVKV_MKV_SCALE to a number of keys")
	}
	measure := func(name string, run func() error) {
		start := time.Now()
		if err := run(); err != nil {
			t.Fatal(err)
		}
		d := time.Since(start)
		t.Logf("%s: %d keys in %v, %.1f s per 100,000 keys", name, n, d.Round(time.Millisecond), d.Seconds()*100000/float64(n))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Ranking = layout.RankMKV })
	m := writeMKV(t, c, n, 1024)
	c.StopMaster()
	cfg := ImportConfig{ClusterConfig: c.Config.ClusterConfig, BatchConfig: BatchConfig{Workers: 16, VolTimeout: time.Minute}, To: c.Config.DB}
	cfg.DB = m.db
	measure("import-mkv", func() error { return runImportMKV(context.Background(), cfg, io.Discard, quiet) })
	rb := rebuildConfig(c, filepath.Join(t.TempDir(), "rebuilt"))
	rb.MD5, rb.Workers = false, 16
	measure("rebuild of the imported cluster", func() error { return runRebuild(context.Background(), rb, io.Discard, quiet) })

	c2 := startCluster(t, 5, func(cfg *ServerConfig) { cfg.Ranking = layout.RankMKV })
	writeMKV(t, c2, n, 1024)
	c2.StopMaster()
	rb2 := rebuildConfig(c2, c2.Config.DB)
	rb2.MD5, rb2.Workers, rb2.MKV, rb2.Force = false, 16, true, true
	measure("rebuild -mkv", func() error { return runRebuild(context.Background(), rb2, io.Discard, quiet) })
	c.startMaster()
	c2.startMaster()
}
