package main

// The embedded LevelDB index: records in key order, pending entries beside them, and
// conditional writes under striped locks.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
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

// pendingPrefix starts the index's entries for unfinished writes and deletes;
// entryPrefix the entries of Index.PutEntry, as entryPrefix + space + "\x00" + name,
// their value the entry's revision (8 bytes, big-endian) and then its own.
const (
	pendingPrefix = "\x00pending"
	entryPrefix   = "\x01"
)

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

// check returns an error wrapping ErrConflict unless what is stored at key is at
// rev, which revOf reads from the stored bytes. The caller holds s, key's stripe.
func (ix *LevelIndex) check(s *levelStripe, op, key string, rev int64, revOf func([]byte) (int64, error)) error {
	cur, known := s.written[key]
	if !known {
		b, err := ix.db.Get([]byte(key), nil)
		switch {
		case errors.Is(err, leveldb.ErrNotFound):
		case err != nil:
			return fmt.Errorf("index %s: %w", op, err)
		default:
			if cur, err = revOf(b); err != nil {
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
	if err := ix.check(s, "put", key, rec.Rev, recordTime); err != nil {
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
	if rec.Pending() {
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
	if err := ix.check(s, "delete", key, rev, recordTime); err != nil || rev == 0 {
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

// entryKey is where name of space is stored.
func entryKey(space, name string) string { return entryPrefix + space + "\x00" + name }

// GetEntry returns name's value in space.
func (ix *LevelIndex) GetEntry(space, name string) ([]byte, int64, error) {
	b, err := ix.db.Get([]byte(entryKey(space, name)), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("index get %s entry: %w", space, err)
	}
	return decodeEntry(b)
}

// entryRev reads only an entry's revision.
func entryRev(b []byte) (int64, error) {
	_, rev, err := decodeEntry(b)
	return rev, err
}

// decodeEntry splits a stored entry into its value and revision.
func decodeEntry(b []byte) ([]byte, int64, error) {
	if len(b) < 8 {
		return nil, 0, fmt.Errorf("%w: entry of %d bytes", ErrBadRecord, len(b))
	}
	return b[8:], int64(binary.BigEndian.Uint64(b)), nil
}

// PutEntry stores value as name in space if the entry is still at rev.
func (ix *LevelIndex) PutEntry(space, name string, value []byte, rev int64) (int64, error) {
	key := entryKey(space, name)
	s := ix.lock(key)
	defer s.mu.Unlock()
	if err := ix.check(s, "put entry", key, rev, entryRev); err != nil {
		return 0, err
	}
	next := max(time.Now().UnixNano(), rev+1)
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), uint64(next))
	if err := ix.db.Put([]byte(key), append(b, value...), &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key)
		return 0, fmt.Errorf("index put %s entry: %w", space, err)
	}
	s.wrote(key, next)
	return next, nil
}

// DeleteEntry removes name from space if the entry is still at rev.
func (ix *LevelIndex) DeleteEntry(space, name string, rev int64) error {
	key := entryKey(space, name)
	s := ix.lock(key)
	defer s.mu.Unlock()
	if err := ix.check(s, "delete entry", key, rev, entryRev); err != nil || rev == 0 {
		return err
	}
	if err := ix.db.Delete([]byte(key), &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key)
		return fmt.Errorf("index delete %s entry: %w", space, err)
	}
	s.wrote(key, 0)
	return nil
}

// Entries calls fn for every entry of space from start on.
func (ix *LevelIndex) Entries(space, start string, fn func(name string, value []byte, rev int64) (bool, error)) error {
	prefix := entryKey(space, "")
	it := ix.db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	for ok := it.Seek([]byte(prefix + start)); ok; ok = it.Next() {
		value, rev, err := decodeEntry(it.Value())
		if err != nil {
			return err
		}
		more, err := fn(string(it.Key()[len(prefix):]), slices.Clone(value), rev)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index %s entries: %w", space, err)
	}
	return nil
}
