package indextest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"davkv/internal/index"
)

// PendingKeys lists the keys with a pending entry.
func PendingKeys(t *testing.T, ix index.Index) []string {
	t.Helper()
	var keys []string
	if err := ix.Pending(func(key string) (bool, error) { keys = append(keys, key); return true, nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

// conditionalWrites: a write lands only on the revision it read, so that of two
// writers only one wins, and the pending entry goes with the record's state.
func conditionalWrites(t *testing.T, ix index.Index) {
	rec := index.Record{State: index.StateWriting, Volumes: []string{"a:1"}}
	if err := ix.Put("/k", &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Rev == 0 || rec.Time == 0 {
		t.Fatalf("after a put: Rev %d, Time %d; want both set", rec.Rev, rec.Time)
	}
	written := rec.Rev
	if got := PendingKeys(t, ix); !slices.Equal(got, []string{"/k"}) {
		t.Fatalf("pending after a write began: %q", got)
	}
	stale := rec
	stale.Rev = 0

	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"create over an existing record", func() error { r := stale; return ix.Put("/k", &r) }, index.ErrConflict},
		{"update at an old revision", func() error { r := rec; r.Rev--; return ix.Put("/k", &r) }, index.ErrConflict},
		{"update of a key that has no record", func() error { r := rec; return ix.Put("/none", &r) }, index.ErrConflict},
		{"delete at an old revision", func() error { return ix.Delete("/k", rec.Rev-1) }, index.ErrConflict},
		{"delete of a key that has no record", func() error { return ix.Delete("/none", 0) }, nil},
		{"update at the revision read", func() error { rec.State = index.StateLive; return ix.Put("/k", &rec) }, nil},
		{"update at the revision the last put returned", func() error { rec.Size = 5; return ix.Put("/k", &rec) }, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := s.do(); !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, s.want)
			}
		})
	}
	got, err := ix.Get("/k")
	if err != nil || got.Rev != rec.Rev || got.Size != 5 || got.State != index.StateLive {
		t.Fatalf("Get: %+v, %v; want the last put's %+v", got, err, rec)
	}
	if rec.Rev <= written {
		t.Fatalf("revision went from %d to %d: must grow with every write", written, rec.Rev)
	}
	if keys := PendingKeys(t, ix); len(keys) != 0 {
		t.Fatalf("pending after the write finished: %q", keys)
	}
	if err := ix.Delete("/k", rec.Rev); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Get("/k"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
}

// oneWriterWins: writers that read the same record race to change it; exactly
// one of them succeeds.
func oneWriterWins(t *testing.T, ix index.Index) {
	for round := range 20 {
		key := fmt.Sprintf("/race/%d", round)
		var base index.Record
		if round%2 == 1 { // half the rounds race to update, half to create
			base = index.Record{State: index.StateLive}
			if err := ix.Put(key, &base); err != nil {
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
				err := ix.Put(key, &rec)
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, index.ErrConflict):
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

func scan(t *testing.T, ix index.Index) {
	for _, key := range []string{"/a", "/a/b", "/ab", "/b", "/a/c"} {
		rec := index.Record{State: index.StateLive}
		if err := ix.Put(key, &rec); err != nil {
			t.Fatal(err)
		}
	}
	deleting := index.Record{State: index.StateDeleting}
	if err := ix.Put("/a/d", &deleting); err != nil {
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
			err := ix.Scan(tt.prefix, tt.start, func(key string, rec index.Record) (bool, error) {
				if r, err := ix.Get(key); err != nil || r.Rev != rec.Rev || rec.Rev == 0 {
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
	if got := PendingKeys(t, ix); !slices.Equal(got, []string{"/a/d"}) {
		t.Fatalf("pending: %q, want only the key being deleted", got)
	}
}

// entries: entries have conditional writes like records, list in name order
// within their space, and never show among the keys.
func entries(t *testing.T, ix index.Index) {
	rev, err := ix.PutEntry("bucket", "b", []byte("one"), 0)
	if err != nil || rev == 0 {
		t.Fatalf("PutEntry: %d, %v", rev, err)
	}
	for _, name := range []string{"a", "c"} {
		if _, err := ix.PutEntry("bucket", name, []byte(name), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ix.PutEntry("upload", "a", []byte("other space"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.PutEntry("bucket", "b", []byte("two"), 0); !errors.Is(err, index.ErrConflict) {
		t.Fatalf("create over an entry: %v, want ErrConflict", err)
	}
	rev2, err := ix.PutEntry("bucket", "b", []byte("two"), rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("update at the revision: %d, %v (was %d)", rev2, err, rev)
	}
	if v, r, err := ix.GetEntry("bucket", "b"); err != nil || string(v) != "two" || r != rev2 {
		t.Fatalf("GetEntry: %q %d %v", v, r, err)
	}
	if err := ix.DeleteEntry("bucket", "b", rev); !errors.Is(err, index.ErrConflict) {
		t.Fatalf("delete at an old revision: %v, want ErrConflict", err)
	}
	var names []string
	err = ix.Entries("bucket", "b", func(name string, value []byte, rev int64) (bool, error) {
		names = append(names, name+"="+string(value))
		return true, nil
	})
	if err != nil || !slices.Equal(names, []string{"b=two", "c=c"}) {
		t.Fatalf("Entries from b: %q, %v", names, err)
	}
	if err := ix.DeleteEntry("bucket", "b", rev2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ix.GetEntry("bucket", "b"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("GetEntry after DeleteEntry: %v", err)
	}
	if n, err := index.CountKeys(ix); n != 0 || err != nil {
		t.Fatalf("entries scanned as keys: %d, %v", n, err)
	}
}

// CheckStats writes records through every state and checks ix's statistics
// after each write; it returns the last.
func CheckStats(t *testing.T, ix index.Index) index.Stats {
	t.Helper()
	want := func(writing, live, liveBytes, unlinked, unlinkedBytes, deleting, deletingBytes int64) index.Stats {
		var s index.Stats
		s.Keys[index.StateWriting], s.Keys[index.StateLive], s.Keys[index.StateUnlinked], s.Keys[index.StateDeleting] = writing, live, unlinked, deleting
		s.Bytes[index.StateLive], s.Bytes[index.StateUnlinked], s.Bytes[index.StateDeleting] = liveBytes, unlinkedBytes, deletingBytes
		return s
	}
	a := index.Record{State: index.StateWriting}
	b := index.Record{State: index.StateLive, Size: 5}
	steps := []struct {
		name string
		do   func() error
		want index.Stats
	}{
		{"a writing", func() error { return ix.Put("/a", &a) }, want(1, 0, 0, 0, 0, 0, 0)},
		{"a live", func() error { a.State, a.Size = index.StateLive, 10; return ix.Put("/a", &a) }, want(0, 1, 10, 0, 0, 0, 0)},
		{"b live", func() error { return ix.Put("/b", &b) }, want(0, 2, 15, 0, 0, 0, 0)},
		{"a overwritten", func() error { a.Size = 7; return ix.Put("/a", &a) }, want(0, 2, 12, 0, 0, 0, 0)},
		{"a unlinked", func() error { a.State = index.StateUnlinked; return ix.Put("/a", &a) }, want(0, 1, 5, 1, 7, 0, 0)},
		{"b deleting", func() error { b.State = index.StateDeleting; return ix.Put("/b", &b) }, want(0, 0, 0, 1, 7, 1, 5)},
		{"b deleted", func() error { return ix.Delete("/b", b.Rev) }, want(0, 0, 0, 1, 7, 0, 0)},
		{"conflict changes nothing", func() error {
			stale := a
			stale.Rev--
			if err := ix.Put("/a", &stale); !errors.Is(err, index.ErrConflict) {
				return fmt.Errorf("stale put: %v", err)
			}
			return nil
		}, want(0, 0, 0, 1, 7, 0, 0)},
		{"c live", func() error { return ix.Put("/c", &index.Record{State: index.StateLive, Size: 100}) }, want(0, 1, 100, 1, 7, 0, 0)},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := ReadStats(t, ix); got != step.want {
			t.Fatalf("%s: stats %+v, want %+v", step.name, got, step.want)
		}
	}
	return steps[len(steps)-1].want
}

// StatsTwoWriters runs CheckStats on a, then has a and b, two processes' indexes of
// one store, each write n keys at once, contending for the statistics' shards, and
// checks that both read the statistics exact.
func StatsTwoWriters(t *testing.T, a, b index.Index, n int) {
	t.Helper()
	final := CheckStats(t, a)
	var wg sync.WaitGroup
	for w, ix := range []index.Index{a, b} {
		wg.Go(func() {
			for i := range n {
				key := fmt.Sprintf("/many/%d/%d", w, i)
				rec := index.Record{State: index.StateWriting, Size: 10}
				if err := ix.Put(key, &rec); err != nil {
					t.Error(err)
					return
				}
				rec.State = index.StateLive
				if err := ix.Put(key, &rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	final.Keys[index.StateLive] += 2 * int64(n)
	final.Bytes[index.StateLive] += 20 * int64(n)
	for _, ix := range []index.Index{a, b} {
		if got := ReadStats(t, ix); got != final {
			t.Fatalf("after two writers: %+v, want %+v", got, final)
		}
	}
}

// ReadStats reads ix's statistics.
func ReadStats(t *testing.T, ix index.Index) index.Stats {
	t.Helper()
	s, err := ix.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Run runs the suite every backend passes, each test on a new, empty index that open
// returns: conditional writes, one writer of two winning, scans, entries, and the
// statistics following every write.
func Run(t *testing.T, open func(t *testing.T) index.Index) {
	tests := []struct {
		name string
		test func(*testing.T, index.Index)
	}{
		{"ConditionalWrites", conditionalWrites},
		{"OneWriterWins", oneWriterWins},
		{"Scan", scan},
		{"Entries", entries},
		{"Stats", func(t *testing.T, ix index.Index) { CheckStats(t, ix) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}
