package main

// The embedded LevelDB index: records in key order, pending entries beside them, and
// conditional writes under striped locks.

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// LevelIndex is the Index in an embedded LevelDB directory, which one process at a
// time may open. Keys are stored as they are, so LevelDB's order is key order and a
// prefix is a range. Every key starts with '/'; the pending entries (pendingPrefix +
// key) sort before them.
//
// A record's revision is its Time: Put makes it grow with every write of a key (the
// clock, or one more than the last write's if the clock has not moved on), so that
// comparing it tells whether the record changed since it was read. LevelDB has no
// compare-and-set, so Put and Delete compare under a lock of the key's stripe.
type LevelIndex struct {
	db      *leveldb.DB
	sync    bool
	seed    maphash.Seed
	stripes [256]levelStripe
}

// levelStripe serialises the conditional writes of the keys that hash to it.
type levelStripe struct {
	mu sync.Mutex
	// written holds the revisions this process last wrote for a few of the stripe's
	// keys (0: deleted), so that the next write of a key, which usually follows at
	// once (a PUT's second write, a DELETE's), compares without reading the record
	// back. Only this process writes the database, under the stripe's lock, so an
	// entry is always the record's revision; a key without one is read.
	written map[string]int64
}

// stripeMemory bounds each stripe's written revisions.
const stripeMemory = 16

// pendingPrefix starts the index's entries for unfinished writes and deletes.
const pendingPrefix = "\x00pending"

// OpenLevelIndex opens or creates the LevelDB index at path; see OpenIndex.
func OpenLevelIndex(path string, sync bool) (*LevelIndex, error) {
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	return &LevelIndex{db: db, sync: sync, seed: maphash.MakeSeed()}, nil
}

// levelIndexExists reports whether path holds a LevelDB database.
func levelIndexExists(path string) (bool, error) {
	_, err := os.Stat(filepath.Join(path, "CURRENT"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("index %s: %w", path, err)
	}
	return true, nil
}

func removeLevelIndex(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove index %s: %w", path, err)
	}
	return nil
}

// Close closes the database.
func (ix *LevelIndex) Close() error { return ix.db.Close() }

// Get returns key's record.
func (ix *LevelIndex) Get(key string) (Record, error) {
	var rec Record
	b, err := ix.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	if err := rec.UnmarshalBinary(b); err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	rec.Rev = rec.Time
	return rec, nil
}

// lock locks key's stripe and returns it, to be unlocked.
func (ix *LevelIndex) lock(key string) *levelStripe {
	s := &ix.stripes[maphash.String(ix.seed, key)%uint64(len(ix.stripes))]
	s.mu.Lock()
	return s
}

// check returns an error wrapping ErrConflict unless key's record is at rev. The
// caller holds s, key's stripe.
func (ix *LevelIndex) check(s *levelStripe, op, key string, rev int64) error {
	cur, known := s.written[key]
	if !known {
		b, err := ix.db.Get([]byte(key), nil)
		switch {
		case errors.Is(err, leveldb.ErrNotFound):
		case err != nil:
			return fmt.Errorf("index %s: %w", op, err)
		default:
			if cur, err = recordTime(b); err != nil {
				return fmt.Errorf("index %s: %w", op, err)
			}
		}
	}
	if cur != rev {
		return fmt.Errorf("index %s %q: %w", op, key, ErrConflict)
	}
	return nil
}

// wrote remembers that key's record is now at rev. The caller holds s.
func (s *levelStripe) wrote(key string, rev int64) {
	if _, ok := s.written[key]; !ok && len(s.written) >= stripeMemory {
		for k := range s.written { // forget any one
			delete(s.written, k)
			break
		}
	}
	if s.written == nil {
		s.written = make(map[string]int64, stripeMemory)
	}
	s.written[key] = rev
}

// Put stores *rec for key if its record is still at rec.Rev.
func (ix *LevelIndex) Put(key string, rec *Record) error {
	s := ix.lock(key)
	defer s.mu.Unlock()
	if err := ix.check(s, "put", key, rec.Rev); err != nil {
		return err
	}
	stored := *rec
	stored.Time = max(time.Now().UnixNano(), rec.Rev+1)
	b, err := stored.MarshalBinary()
	if err != nil {
		return err
	}
	batch := new(leveldb.Batch)
	batch.Put([]byte(key), b)
	if rec.State == StateWriting || rec.State == StateDeleting {
		batch.Put([]byte(pendingPrefix+key), nil)
	} else {
		batch.Delete([]byte(pendingPrefix + key))
	}
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key) // the write may have landed or not: read it next time
		return fmt.Errorf("index put: %w", err)
	}
	s.wrote(key, stored.Time)
	rec.Time, rec.Rev = stored.Time, stored.Time
	return nil
}

// Delete removes key if its record is still at rev.
func (ix *LevelIndex) Delete(key string, rev int64) error {
	s := ix.lock(key)
	defer s.mu.Unlock()
	if err := ix.check(s, "delete", key, rev); err != nil || rev == 0 {
		return err
	}
	batch := new(leveldb.Batch)
	batch.Delete([]byte(key))
	batch.Delete([]byte(pendingPrefix + key))
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key)
		return fmt.Errorf("index delete: %w", err)
	}
	s.wrote(key, 0)
	return nil
}

// Pending calls fn for every key with a pending entry.
func (ix *LevelIndex) Pending(fn func(key string) (bool, error)) error {
	it := ix.db.NewIterator(util.BytesPrefix([]byte(pendingPrefix)), nil)
	defer it.Release()
	for it.Next() {
		more, err := fn(string(it.Key()[len(pendingPrefix):]))
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index pending: %w", err)
	}
	return nil
}

// Scan calls fn for every key with prefix, from start on, from one snapshot of the
// database.
func (ix *LevelIndex) Scan(prefix, start string, fn func(key string, rec Record) (bool, error)) error {
	prefix = scanPrefix(prefix)
	it := ix.db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	ok := it.First()
	if start > prefix {
		ok = it.Seek([]byte(start))
	}
	for ; ok; ok = it.Next() {
		var rec Record
		if err := rec.UnmarshalBinary(it.Value()); err != nil {
			return fmt.Errorf("index scan at %q: %w", it.Key(), err)
		}
		rec.Rev = rec.Time
		more, err := fn(string(it.Key()), rec)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index scan: %w", err)
	}
	return nil
}
