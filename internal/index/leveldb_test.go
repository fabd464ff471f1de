package index

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"davkv/internal/testenv"
)

// forEachIndex runs test on a new index of every backend: LevelDB, and a prefix of a
// real etcd cluster.
func forEachIndex(t *testing.T, test func(t *testing.T, index Index)) {
	t.Run("leveldb", func(t *testing.T) { test(t, openTestIndex(t)) })
	t.Run("etcd", func(t *testing.T) {
		index, err := Open(testenv.StartEtcd(t, 3).DB("/davkv"), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { index.Close() })
		test(t, index)
	})
}

func openTestIndex(t *testing.T) Index {
	t.Helper()
	index, err := Open(filepath.Join(t.TempDir(), "index"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { index.Close() })
	return index
}

// pendingKeys lists the keys with a pending entry.
func pendingKeys(t *testing.T, index Index) []string {
	t.Helper()
	var keys []string
	if err := index.Pending(func(key string) (bool, error) { keys = append(keys, key); return true, nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestIndexConditionalWrites: a write lands only on the revision it read, so that of two
// writers only one wins, and the pending entry goes with the record's state.
func TestIndexConditionalWrites(t *testing.T) { forEachIndex(t, testIndexConditionalWrites) }

func testIndexConditionalWrites(t *testing.T, index Index) {
	rec := Record{State: StateWriting, Volumes: []string{"a:1"}}
	if err := index.Put("/k", &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Rev == 0 || rec.Time == 0 {
		t.Fatalf("after a put: Rev %d, Time %d; want both set", rec.Rev, rec.Time)
	}
	written := rec.Rev
	if got := pendingKeys(t, index); !slices.Equal(got, []string{"/k"}) {
		t.Fatalf("pending after a write began: %q", got)
	}
	stale := rec
	stale.Rev = 0

	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"create over an existing record", func() error { r := stale; return index.Put("/k", &r) }, ErrConflict},
		{"update at an old revision", func() error { r := rec; r.Rev--; return index.Put("/k", &r) }, ErrConflict},
		{"update of a key that has no record", func() error { r := rec; return index.Put("/none", &r) }, ErrConflict},
		{"delete at an old revision", func() error { return index.Delete("/k", rec.Rev-1) }, ErrConflict},
		{"delete of a key that has no record", func() error { return index.Delete("/none", 0) }, nil},
		{"update at the revision read", func() error { rec.State = StateLive; return index.Put("/k", &rec) }, nil},
		{"update at the revision the last put returned", func() error { rec.Size = 5; return index.Put("/k", &rec) }, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := s.do(); !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, s.want)
			}
		})
	}
	got, err := index.Get("/k")
	if err != nil || got.Rev != rec.Rev || got.Size != 5 || got.State != StateLive {
		t.Fatalf("Get: %+v, %v; want the last put's %+v", got, err, rec)
	}
	if rec.Rev <= written {
		t.Fatalf("revision went from %d to %d: must grow with every write", written, rec.Rev)
	}
	if keys := pendingKeys(t, index); len(keys) != 0 {
		t.Fatalf("pending after the write finished: %q", keys)
	}
	if err := index.Delete("/k", rec.Rev); err != nil {
		t.Fatal(err)
	}
	if _, err := index.Get("/k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
}

// TestIndexOneWriterWins: writers that read the same record race to change it; exactly
// one of them succeeds.
func TestIndexOneWriterWins(t *testing.T) { forEachIndex(t, testIndexOneWriterWins) }

func testIndexOneWriterWins(t *testing.T, index Index) {
	for round := range 20 {
		key := fmt.Sprintf("/race/%d", round)
		var base Record
		if round%2 == 1 { // half the rounds race to update, half to create
			base = Record{State: StateLive}
			if err := index.Put(key, &base); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for w := range 8 {
			wg.Go(func() {
				rec := base
				rec.Size = int64(w)
				err := index.Put(key, &rec)
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, ErrConflict):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins)
		}
	}
}

func TestIndexScan(t *testing.T) { forEachIndex(t, testIndexScan) }

func testIndexScan(t *testing.T, index Index) {
	for _, key := range []string{"/a", "/a/b", "/ab", "/b", "/a/c"} {
		rec := Record{State: StateLive}
		if err := index.Put(key, &rec); err != nil {
			t.Fatal(err)
		}
	}
	deleting := Record{State: StateDeleting}
	if err := index.Put("/a/d", &deleting); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix, start string
		limit         int
		want          []string
	}{
		{"", "", 0, []string{"/a", "/a/b", "/a/c", "/a/d", "/ab", "/b"}},
		{"/", "", 0, []string{"/a", "/a/b", "/a/c", "/a/d", "/ab", "/b"}},
		{"a", "", 0, []string{"/a", "/a/b", "/a/c", "/a/d", "/ab"}},
		{"/a/", "", 0, []string{"/a/b", "/a/c", "/a/d"}},
		{"/a/", "/a/c", 0, []string{"/a/c", "/a/d"}},
		{"/a/", "/", 0, []string{"/a/b", "/a/c", "/a/d"}},
		{"/a", "", 2, []string{"/a", "/a/b"}},
		{"/z", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s from %s", tt.prefix, tt.start), func(t *testing.T) {
			var got []string
			err := index.Scan(tt.prefix, tt.start, func(key string, rec Record) (bool, error) {
				if r, err := index.Get(key); err != nil || r.Rev != rec.Rev || rec.Rev == 0 {
					return false, fmt.Errorf("%s: scanned Rev %d, Get %d, %v", key, rec.Rev, r.Rev, err)
				}
				got = append(got, key)
				return tt.limit == 0 || len(got) < tt.limit, nil
			})
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Scan = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if got := pendingKeys(t, index); !slices.Equal(got, []string{"/a/d"}) {
		t.Fatalf("pending: %q, want only the key being deleted", got)
	}
}

// TestIndexRevisionsOnDisk: revisions compare the same whether the index remembers
// the last write (LevelIndex keeps a few) or reads the record back: after many keys,
// and after the index is opened again.
func TestIndexRevisionsOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index")
	index, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]int64{}
	for i := range 5000 { // far more than LevelIndex remembers
		key := fmt.Sprintf("/k/%d", i)
		rec := Record{State: StateLive}
		if err := index.Put(key, &rec); err != nil {
			t.Fatal(err)
		}
		revs[key] = rec.Rev
	}
	for round, open := range []func() Index{
		func() Index { return index },
		func() Index {
			if err := index.Close(); err != nil {
				t.Fatal(err)
			}
			if index, err = Open(path, false); err != nil {
				t.Fatal(err)
			}
			return index
		},
	} {
		ix := open()
		for _, key := range []string{"/k/0", "/k/2500", "/k/4999"} {
			stale := Record{State: StateUnlinked, Rev: revs[key] - 1}
			if err := ix.Put(key, &stale); !errors.Is(err, ErrConflict) {
				t.Fatalf("round %d: put %s at an old revision: %v, want ErrConflict", round, key, err)
			}
			if err := ix.Delete(key, 0); !errors.Is(err, ErrConflict) {
				t.Fatalf("round %d: delete %s as if it had no record: %v, want ErrConflict", round, key, err)
			}
			rec, err := ix.Get(key)
			if err != nil || rec.Rev != revs[key] {
				t.Fatalf("round %d: %s read at revision %d, %v; written at %d", round, key, rec.Rev, err, revs[key])
			}
			if err := ix.Put(key, &rec); err != nil {
				t.Fatalf("round %d: put %s at the revision read: %v", round, key, err)
			}
			revs[key] = rec.Rev
		}
	}
	index.Close()
}

// TestIndexEntries: entries have conditional writes like records, list in name order
// within their space, and never show among the keys.
func TestIndexEntries(t *testing.T) { forEachIndex(t, testIndexEntries) }

func testIndexEntries(t *testing.T, index Index) {
	rev, err := index.PutEntry("bucket", "b", []byte("one"), 0)
	if err != nil || rev == 0 {
		t.Fatalf("PutEntry: %d, %v", rev, err)
	}
	for _, name := range []string{"a", "c"} {
		if _, err := index.PutEntry("bucket", name, []byte(name), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := index.PutEntry("upload", "a", []byte("other space"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := index.PutEntry("bucket", "b", []byte("two"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create over an entry: %v, want ErrConflict", err)
	}
	rev2, err := index.PutEntry("bucket", "b", []byte("two"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("update at the revision: %d, %v (was %d)", rev2, err, rev)
	}
	if v, r, err := index.GetEntry("bucket", "b"); err != nil || string(v) != "two" || r != rev2 {
		t.Fatalf("GetEntry: %q %d %v", v, r, err)
	}
	if err := index.DeleteEntry("bucket", "b", rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete at an old revision: %v, want ErrConflict", err)
	}
	var names []string
	err = index.Entries("bucket", "b", func(name string, value []byte, rev int64) (bool, error) {
		names = append(names, name+"="+string(value))
		return true, nil
	})
	if err != nil || !slices.Equal(names, []string{"b=two", "c=c"}) {
		t.Fatalf("Entries from b: %q, %v", names, err)
	}
	if err := index.DeleteEntry("bucket", "b", rev2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := index.GetEntry("bucket", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetEntry after DeleteEntry: %v", err)
	}
	if n, err := CountKeys(index); n != 0 || err != nil {
		t.Fatalf("entries scanned as keys: %d, %v", n, err)
	}
}

// TestIndexStats: the keys and bytes by state follow every write, survive a reopen, and
// an index written before they were kept is counted once when it is opened.
func TestIndexStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index")
	index, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	final := checkIndexStats(t, index)
	index.Close()
	if index, err = Open(path, false); err != nil {
		t.Fatal(err)
	}
	if got := indexStats(t, index); got != final {
		t.Fatalf("after reopening: %+v, want %+v", got, final)
	}
	// An index from before the statistics: they are counted when it is opened.
	db := index.(*LevelIndex).db
	for _, k := range [][]byte{[]byte(statsReady), []byte(statsPrefix + "\x00")} {
		if err := db.Delete(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 256 {
		db.Delete(append([]byte(statsPrefix), byte(i)), nil)
	}
	index.Close()
	if index, err = Open(path, false); err != nil {
		t.Fatal(err)
	}
	defer index.Close()
	if got := indexStats(t, index); got != final {
		t.Fatalf("counted at open: %+v, want %+v", got, final)
	}
	var s Stats
	s.Keys[StateLive], s.Bytes[StateLive], s.Keys[StateDeleting] = 3, -40, 1<<40
	if enc := string(encodeStats(s)); enc != "\x01\x00\x00\x06\x4f\x00\x00\x80\x80\x80\x80\x80\x40\x00" {
		t.Fatalf("encodeStats = %q", enc)
	}
	if got, err := decodeStats(encodeStats(s)); err != nil || got != s {
		t.Fatalf("decodeStats = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "\x02", "\x01\x00", "\x01\x00\x00\x06\x4f\x00\x00\x80\x80\x80\x80\x80\x40\x00\x00"} {
		if _, err := decodeStats([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("decodeStats(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}

// checkIndexStats writes records through every state and checks index's statistics
// after each write; it returns the last.
func checkIndexStats(t *testing.T, index Index) Stats {
	t.Helper()
	want := func(writing, live, liveBytes, unlinked, unlinkedBytes, deleting, deletingBytes int64) Stats {
		var s Stats
		s.Keys[StateWriting], s.Keys[StateLive], s.Keys[StateUnlinked], s.Keys[StateDeleting] = writing, live, unlinked, deleting
		s.Bytes[StateLive], s.Bytes[StateUnlinked], s.Bytes[StateDeleting] = liveBytes, unlinkedBytes, deletingBytes
		return s
	}
	a := Record{State: StateWriting}
	b := Record{State: StateLive, Size: 5}
	steps := []struct {
		name string
		do   func() error
		want Stats
	}{
		{"a writing", func() error { return index.Put("/a", &a) }, want(1, 0, 0, 0, 0, 0, 0)},
		{"a live", func() error { a.State, a.Size = StateLive, 10; return index.Put("/a", &a) }, want(0, 1, 10, 0, 0, 0, 0)},
		{"b live", func() error { return index.Put("/b", &b) }, want(0, 2, 15, 0, 0, 0, 0)},
		{"a overwritten", func() error { a.Size = 7; return index.Put("/a", &a) }, want(0, 2, 12, 0, 0, 0, 0)},
		{"a unlinked", func() error { a.State = StateUnlinked; return index.Put("/a", &a) }, want(0, 1, 5, 1, 7, 0, 0)},
		{"b deleting", func() error { b.State = StateDeleting; return index.Put("/b", &b) }, want(0, 0, 0, 1, 7, 1, 5)},
		{"b deleted", func() error { return index.Delete("/b", b.Rev) }, want(0, 0, 0, 1, 7, 0, 0)},
		{"conflict changes nothing", func() error {
			stale := a
			stale.Rev--
			if err := index.Put("/a", &stale); !errors.Is(err, ErrConflict) {
				return fmt.Errorf("stale put: %v", err)
			}
			return nil
		}, want(0, 0, 0, 1, 7, 0, 0)},
		{"c live", func() error { return index.Put("/c", &Record{State: StateLive, Size: 100}) }, want(0, 1, 100, 1, 7, 0, 0)},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := indexStats(t, index); got != step.want {
			t.Fatalf("%s: stats %+v, want %+v", step.name, got, step.want)
		}
	}
	return steps[len(steps)-1].want
}

// indexStats reads index's statistics.
func indexStats(t *testing.T, index Index) Stats {
	t.Helper()
	s, err := index.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
