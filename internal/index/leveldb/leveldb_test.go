package leveldb

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"davkv/internal/index"
	"davkv/internal/index/indextest"
)

// TestIndexRevisionsOnDisk: revisions compare the same whether the index remembers
// the last write (LevelIndex keeps a few) or reads the record back: after many keys,
// and after the index is opened again.
func TestIndexRevisionsOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index")
	ix, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]int64{}
	for i := range 5000 { // far more than LevelIndex remembers
		key := fmt.Sprintf("/k/%d", i)
		rec := index.Record{State: index.StateLive}
		if err := ix.Put(key, &rec); err != nil {
			t.Fatal(err)
		}
		revs[key] = rec.Rev
	}
	for round, open := range []func() index.Index{
		func() index.Index { return ix },
		func() index.Index {
			if err := ix.Close(); err != nil {
				t.Fatal(err)
			}
			if ix, err = Open(path, false); err != nil {
				t.Fatal(err)
			}
			return ix
		},
	} {
		cur := open()
		for _, key := range []string{"/k/0", "/k/2500", "/k/4999"} {
			stale := index.Record{State: index.StateUnlinked, Rev: revs[key] - 1}
			if err := cur.Put(key, &stale); !errors.Is(err, index.ErrConflict) {
				t.Fatalf("round %d: put %s at an old revision: %v, want ErrConflict", round, key, err)
			}
			if err := cur.Delete(key, 0); !errors.Is(err, index.ErrConflict) {
				t.Fatalf("round %d: delete %s as if it had no record: %v, want ErrConflict", round, key, err)
			}
			rec, err := cur.Get(key)
			if err != nil || rec.Rev != revs[key] {
				t.Fatalf("round %d: %s read at revision %d, %v; written at %d", round, key, rec.Rev, err, revs[key])
			}
			if err := cur.Put(key, &rec); err != nil {
				t.Fatalf("round %d: put %s at the revision read: %v", round, key, err)
			}
			revs[key] = rec.Rev
		}
	}
	ix.Close()
}

// TestIndexStats: the keys and bytes by state follow every write, survive a reopen, and
// an index written before they were kept is counted once when it is opened.
func TestIndexStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index")
	ix, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	final := indextest.CheckStats(t, ix)
	ix.Close()
	if ix, err = Open(path, false); err != nil {
		t.Fatal(err)
	}
	if got := indextest.ReadStats(t, ix); got != final {
		t.Fatalf("after reopening: %+v, want %+v", got, final)
	}
	// An index from before the statistics: they are counted when it is opened.
	db := ix.db
	for _, k := range [][]byte{[]byte(statsReady), []byte(statsPrefix + "\x00")} {
		if err := db.Delete(k, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 256 {
		db.Delete(append([]byte(statsPrefix), byte(i)), nil)
	}
	ix.Close()
	if ix, err = Open(path, false); err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if got := indextest.ReadStats(t, ix); got != final {
		t.Fatalf("counted at open: %+v, want %+v", got, final)
	}
	var s index.Stats
	s.Keys[index.StateLive], s.Bytes[index.StateLive], s.Keys[index.StateDeleting] = 3, -40, 1<<40
	if enc := string(index.EncodeStats(s)); enc != "\x01\x00\x00\x06\x4f\x00\x00\x80\x80\x80\x80\x80\x40\x00" {
		t.Fatalf("EncodeStats = %q", enc)
	}
	if got, err := index.DecodeStats(index.EncodeStats(s)); err != nil || got != s {
		t.Fatalf("DecodeStats = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "\x02", "\x01\x00", "\x01\x00\x00\x06\x4f\x00\x00\x80\x80\x80\x80\x80\x40\x00\x00"} {
		if _, err := index.DecodeStats([]byte(bad)); !errors.Is(err, index.ErrBadRecord) {
			t.Errorf("DecodeStats(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}

// TestConformance runs the suite every backend passes on LevelDB.
func TestConformance(t *testing.T) {
	indextest.Run(t, func(t *testing.T) index.Index {
		ix, err := Open(filepath.Join(t.TempDir(), "index"), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.Close() })
		return ix
	})
}
