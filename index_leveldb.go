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
	stripes [256]sync.Mutex
}

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
func (ix *LevelIndex) lock(key string) *sync.Mutex {
	mu := &ix.stripes[maphash.String(ix.seed, key)%uint64(len(ix.stripes))]
	mu.Lock()
	return mu
}

// check returns an error wrapping ErrConflict unless key's record is at rev. The
// caller holds key's stripe.
func (ix *LevelIndex) check(op, key string, rev int64) error {
	cur := int64(0)
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
	if cur != rev {
		return fmt.Errorf("index %s %q: %w", op, key, ErrConflict)
	}
	return nil
}

// Put stores *rec for key if its record is still at rec.Rev.
func (ix *LevelIndex) Put(key string, rec *Record) error {
	mu := ix.lock(key)
	defer mu.Unlock()
	if err := ix.check("put", key, rec.Rev); err != nil {
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
		return fmt.Errorf("index put: %w", err)
	}
	rec.Time, rec.Rev = stored.Time, stored.Time
	return nil
}

// Delete removes key if its record is still at rev.
func (ix *LevelIndex) Delete(key string, rev int64) error {
	mu := ix.lock(key)
	defer mu.Unlock()
	if err := ix.check("delete", key, rev); err != nil || rev == 0 {
		return err
	}
	batch := new(leveldb.Batch)
	batch.Delete([]byte(key))
	batch.Delete([]byte(pendingPrefix + key))
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		return fmt.Errorf("index delete: %w", err)
	}
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
