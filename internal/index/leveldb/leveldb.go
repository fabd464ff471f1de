package leveldb

// The embedded LevelDB index: records in key order, pending entries beside them, and
// conditional writes under striped locks.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"davkv/internal/index"
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
//
// Each stripe also keeps, and stores with every write that changes them (in the same
// batch), its share of the index's statistics (see Stats): the sum over the
// stripes is exact however the process stops. Which keys a stripe holds changes from
// one process to the next (its hash seed does), which matters not: only the sum is
// read.
type Index struct {
	db      *leveldb.DB
	sync    bool
	seed    maphash.Seed
	stripes [256]levelStripe
	// owner is this process's owner ID: LevelDB lets one process at a time open the
	// index, so every other owner is dead.
	owner int64
}

// levelStripe serialises the conditional writes of the keys that hash to it.
type levelStripe struct {
	mu sync.Mutex
	id byte
	// written holds the heads (revision, state, size) this process last wrote for a
	// few of the stripe's keys (zero: deleted), so that the next write of a key, which
	// usually follows at once (a PUT's second write, a DELETE's), compares without
	// reading the record back. Only this process writes the database, under the
	// stripe's lock, so an entry is always the record's; a key without one is read.
	written map[string]index.Head
	// stats is the stripe's share of the statistics, as stored at statsPrefix + id.
	stats index.Stats
}

// stripeMemory bounds each stripe's written revisions.
const stripeMemory = 16

// pendingPrefix starts the index's entries for unfinished writes and deletes;
// entryPrefix the entries of Index.PutEntry, as entryPrefix + space + "\x00" + name,
// their value the entry's revision (8 bytes, big-endian) and then its own.
// statsPrefix + the stripe's number stores a stripe's statistics (see
// EncodeStats); statsReady says they are kept, which indexes written before they
// were lack.
const (
	pendingPrefix = "\x00pending"
	entryPrefix   = "\x01"
	statsPrefix   = "\x00stats/"
	statsReady    = "\x00stats-v1"
)

// OpenLevel opens or creates the LevelDB index at path; see Open.
func Open(path string, sync bool) (*Index, error) {
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	ix := &Index{db: db, sync: sync, seed: maphash.MakeSeed(), owner: rand.Int64N(math.MaxInt64) + 1}
	for i := range ix.stripes {
		ix.stripes[i].id = byte(i)
	}
	if err := ix.loadStats(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	return ix, nil
}

// loadStats reads every stripe's statistics. An index written before they were kept
// is counted once, here, with a scan of every record.
func (ix *Index) loadStats() error {
	if _, err := ix.db.Get([]byte(statsReady), nil); errors.Is(err, leveldb.ErrNotFound) {
		var total index.Stats
		err := ix.Scan("", "", func(_ string, rec index.Record) (bool, error) {
			total.Add(rec.State, rec.Size, 1)
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("count keys: %w", err)
		}
		batch := new(leveldb.Batch)
		it := ix.db.NewIterator(util.BytesPrefix([]byte(statsPrefix)), nil)
		for it.Next() { // shares without the marker are no count of this index: replaced
			batch.Delete(slices.Clone(it.Key()))
		}
		it.Release()
		batch.Put([]byte(statsPrefix+"\x00"), index.EncodeStats(total))
		batch.Put([]byte(statsReady), nil)
		if err := ix.db.Write(batch, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("store key counts: %w", err)
		}
	} else if err != nil {
		return err
	}
	it := ix.db.NewIterator(util.BytesPrefix([]byte(statsPrefix)), nil)
	defer it.Release()
	for it.Next() {
		k := it.Key()[len(statsPrefix):]
		st, err := index.DecodeStats(it.Value())
		if err != nil || len(k) != 1 {
			return fmt.Errorf("statistics %q: %w", it.Key(), errors.Join(err, index.ErrBadRecord))
		}
		ix.stripes[k[0]].stats = st
	}
	return it.Error()
}

// Stats sums the stripes' statistics.
func (ix *Index) Stats() (index.Stats, error) {
	var total index.Stats
	for i := range ix.stripes {
		s := &ix.stripes[i]
		s.mu.Lock()
		total.AddAll(s.stats)
		s.mu.Unlock()
	}
	return total, nil
}

// levelIndexExists reports whether path holds a LevelDB database.
func Exists(path string) (bool, error) {
	_, err := os.Stat(filepath.Join(path, "CURRENT"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("index %s: %w", path, err)
	}
	return true, nil
}

func Remove(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove index %s: %w", path, err)
	}
	return nil
}

// Close closes the database.
func (ix *Index) Close() error { return ix.db.Close() }

// Get returns key's record.
func (ix *Index) Get(key string) (index.Record, error) {
	var rec index.Record
	b, err := ix.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return rec, index.ErrNotFound
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
func (ix *Index) lock(key string) *levelStripe {
	s := &ix.stripes[maphash.String(ix.seed, key)%uint64(len(ix.stripes))]
	s.mu.Lock()
	return s
}

// check returns an error wrapping ErrConflict unless what is stored at key is at
// rev, which headOf reads from the stored bytes, with what else it reads. The caller
// holds s, key's stripe.
func (ix *Index) check(s *levelStripe, op, key string, rev int64, headOf func([]byte) (index.Head, error)) (index.Head, error) {
	cur, known := s.written[key]
	if !known {
		b, err := ix.db.Get([]byte(key), nil)
		switch {
		case errors.Is(err, leveldb.ErrNotFound):
		case err != nil:
			return cur, fmt.Errorf("index %s: %w", op, err)
		default:
			if cur, err = headOf(b); err != nil {
				return cur, fmt.Errorf("index %s: %w", op, err)
			}
		}
	}
	if cur.Time != rev {
		return cur, fmt.Errorf("index %s %q: %w", op, key, index.ErrConflict)
	}
	return cur, nil
}

// restat adds to batch the stripe's statistics with old's record replaced by new's,
// if that changes them, and returns them, for the caller to keep once the batch is
// written. The caller holds s.
func (s *levelStripe) restat(batch *leveldb.Batch, old, new index.Head) index.Stats {
	st := s.stats
	if old.State == new.State && old.Size == new.Size {
		return st
	}
	st.Replace(old, new)
	if st != s.stats {
		batch.Put(append([]byte(statsPrefix), s.id), index.EncodeStats(st))
	}
	return st
}

// wrote remembers that key's record is now at h (zero: deleted). The caller holds s.
func (s *levelStripe) wrote(key string, h index.Head) {
	if _, ok := s.written[key]; !ok && len(s.written) >= stripeMemory {
		for k := range s.written { // forget any one
			delete(s.written, k)
			break
		}
	}
	if s.written == nil {
		s.written = make(map[string]index.Head, stripeMemory)
	}
	s.written[key] = h
}

// Put stores *rec for key if its record is still at rec.Rev.
func (ix *Index) Put(key string, rec *index.Record) error {
	s := ix.lock(key)
	defer s.mu.Unlock()
	old, err := ix.check(s, "put", key, rec.Rev, index.ReadHead)
	if err != nil {
		return err
	}
	stored := *rec
	stored.Time = max(time.Now().UnixNano(), rec.Rev+1)
	index.StampOwner(&stored, ix.owner)
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
	head := index.Head{Time: stored.Time, State: rec.State, Size: rec.Size}
	stats := s.restat(batch, old, head)
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key) // the write may have landed or not: read it next time
		return fmt.Errorf("index put: %w", err)
	}
	s.stats = stats
	s.wrote(key, head)
	rec.Time, rec.Rev, rec.Owner = stored.Time, stored.Time, stored.Owner
	return nil
}

// Delete removes key if its record is still at rev.
func (ix *Index) Delete(key string, rev int64) error {
	s := ix.lock(key)
	defer s.mu.Unlock()
	old, err := ix.check(s, "delete", key, rev, index.ReadHead)
	if err != nil || rev == 0 {
		return err
	}
	batch := new(leveldb.Batch)
	batch.Delete([]byte(key))
	batch.Delete([]byte(pendingPrefix + key))
	stats := s.restat(batch, old, index.Head{})
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key)
		return fmt.Errorf("index delete: %w", err)
	}
	s.stats = stats
	s.wrote(key, index.Head{})
	return nil
}

// Pending calls fn for every key with a pending entry.
func (ix *Index) Pending(fn func(key string) (bool, error)) error {
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
func (ix *Index) Scan(prefix, start string, fn func(key string, rec index.Record) (bool, error)) error {
	prefix = index.ScanPrefix(prefix)
	it := ix.db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	ok := it.First()
	if start > prefix {
		ok = it.Seek([]byte(start))
	}
	for ; ok; ok = it.Next() {
		var rec index.Record
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
func (ix *Index) GetEntry(space, name string) ([]byte, int64, error) {
	b, err := ix.db.Get([]byte(entryKey(space, name)), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, 0, index.ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("index get %s entry: %w", space, err)
	}
	return decodeEntry(b)
}

// entryHead reads only an entry's revision.
func entryHead(b []byte) (index.Head, error) {
	_, rev, err := decodeEntry(b)
	return index.Head{Time: rev}, err
}

// decodeEntry splits a stored entry into its value and revision.
func decodeEntry(b []byte) ([]byte, int64, error) {
	if len(b) < 8 {
		return nil, 0, fmt.Errorf("%w: entry of %d bytes", index.ErrBadRecord, len(b))
	}
	return b[8:], int64(binary.BigEndian.Uint64(b)), nil
}

// Owner returns this process's owner ID.
func (ix *Index) Owner() int64 { return ix.owner }

// Alive reports whether owner is this process: no other can have the index open.
func (ix *Index) Alive(owner int64) (bool, error) { return owner == ix.owner, nil }

// Owners lists this process alone.
func (ix *Index) Owners() ([]int64, error) { return []int64{ix.owner}, nil }

// PutEntry stores value as name in space if the entry is still at rev.
func (ix *Index) PutEntry(space, name string, value []byte, rev int64) (int64, error) {
	key := entryKey(space, name)
	s := ix.lock(key)
	defer s.mu.Unlock()
	if _, err := ix.check(s, "put entry", key, rev, entryHead); err != nil {
		return 0, err
	}
	next := max(time.Now().UnixNano(), rev+1)
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), uint64(next))
	if err := ix.db.Put([]byte(key), append(b, value...), &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key)
		return 0, fmt.Errorf("index put %s entry: %w", space, err)
	}
	s.wrote(key, index.Head{Time: next})
	return next, nil
}

// DeleteEntry removes name from space if the entry is still at rev.
func (ix *Index) DeleteEntry(space, name string, rev int64) error {
	key := entryKey(space, name)
	s := ix.lock(key)
	defer s.mu.Unlock()
	if _, err := ix.check(s, "delete entry", key, rev, entryHead); err != nil || rev == 0 {
		return err
	}
	if err := ix.db.Delete([]byte(key), &opt.WriteOptions{Sync: ix.sync}); err != nil {
		delete(s.written, key)
		return fmt.Errorf("index delete %s entry: %w", space, err)
	}
	s.wrote(key, index.Head{})
	return nil
}

// Entries calls fn for every entry of space from start on.
func (ix *Index) Entries(space, start string, fn func(name string, value []byte, rev int64) (bool, error)) error {
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
