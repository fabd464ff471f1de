package index

// The Index interface that every index backend implements, and the choice of backend.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Index is where the master keeps every key's Record, in key order. Package leveldb is
// the embedded backend, packages etcd and postgres ones that several masters share;
// all pass the suite of package indextest.
//
// Writes are conditional, so that a backend needs no lock held in one process to be
// safe: a Record read from the index carries its revision (Rev), and Put and Delete fail
// with ErrConflict when the key's record is no longer at that revision, so that of two
// writers who read the same record only one can win. A record with work pending (see
// Record.Pending: a write or delete unfinished, files to delete) also has a pending
// entry, written atomically with it, so that the work a crash interrupted is found
// without reading the whole index.
type Index interface {
	// Get returns key's record, with Rev set, or an error wrapping ErrNotFound.
	Get(key string) (Record, error)
	// Put stores *rec as key's record if the stored one is still at rec.Rev (zero: the
	// key has no record), with the key's pending entry if rec.Pending() and without it
	// otherwise, in one atomic write. It stamps rec.Time with the time of the write and
	// rec.Owner with Owner() if the record is pending (zero if not), and sets rec.Rev to
	// the new revision, so that the caller can write the record again. Else it changes
	// nothing and returns an error wrapping ErrConflict.
	Put(key string, rec *Record) error
	// Delete removes key's record and pending entry if the record is still at rev (zero:
	// there is none, and Delete does nothing), else returns an error wrapping
	// ErrConflict.
	Delete(key string, rev int64) error
	// Scan calls fn for every key that starts with prefix, with its record (Rev set),
	// from start on if start sorts after prefix, in key order, until fn returns false
	// or an error, which Scan returns. Every key starts with '/', and an empty prefix
	// means "/". A backend may read a page at a time: fn sees every key that was there
	// for the whole scan, and no key twice.
	Scan(prefix, start string, fn func(key string, rec Record) (bool, error)) error
	// Pending calls fn for every key that has a pending entry, in key order, until fn
	// returns false or an error, which Pending returns.
	Pending(fn func(key string) (bool, error)) error
	// Stats returns how many keys the index holds in each state, and their bytes.
	Stats() (Stats, error)

	// Entries are the index's small records beside the keys' (S3 buckets, say), each
	// a name in a space, its value opaque to the index, with conditional writes as
	// records have.

	// GetEntry returns name's value in space and its revision, or an error wrapping
	// ErrNotFound.
	GetEntry(space, name string) (value []byte, rev int64, err error)
	// PutEntry stores value as name in space if the entry is still at rev (zero: there
	// is none) and returns its new revision, else an error wrapping ErrConflict.
	PutEntry(space, name string, value []byte, rev int64) (int64, error)
	// DeleteEntry removes name from space if the entry is still at rev, else returns
	// an error wrapping ErrConflict.
	DeleteEntry(space, name string, rev int64) error
	// Entries calls fn for every entry of space, in name order, from start on, until
	// fn returns false or an error, which Entries returns.
	Entries(space, start string, fn func(name string, value []byte, rev int64) (bool, error)) error

	// Owners are the masters (and offline commands) that have the index open. Each
	// is known by an owner ID, which Put stamps on the pending records it writes (see
	// Record.Owner) and which stays alive for as long as the owner has the index open
	// and can reach it. A dead owner never comes back to life, so once Alive says
	// false, its pending records may be adopted by another.

	// Owner returns this process's owner ID, never zero. It may change, if the
	// backend lost touch with its cluster for too long and had to start again.
	Owner() int64
	// Alive reports whether owner still has the index open.
	Alive(owner int64) (bool, error)
	// Owners lists the owners alive.
	Owners() ([]int64, error)

	// Close releases the index; nothing may use it afterwards.
	Close() error
}

// Errors every Index returns, wrapped with what it was doing.
var (
	// ErrNotFound says the key has no record.
	ErrNotFound = errors.New("key not found")
	// ErrConflict says a conditional write lost: the record changed since it was read.
	ErrConflict = errors.New("the key changed meanwhile; try again")
	// ErrIndexDown says the index cannot be reached, or cannot write: an etcd cluster
	// that lost its quorum, say. Whether a write that fails with it took effect is
	// unknown: the index may have applied it and lost the answer.
	ErrIndexDown = errors.New("the index is unavailable")
)

// Stamped returns rec as a shared backend's Put stores it, stamped with the time of the
// write (by this process's clock) and its owner (see StampOwner), and its encoding.
func Stamped(rec Record, owner int64) (Record, []byte, error) {
	rec.Time = time.Now().UnixNano()
	StampOwner(&rec, owner)
	b, err := rec.MarshalBinary()
	return rec, b, err
}

// stampOwner sets rec.Owner as Put stores it: owner if rec is pending, else zero.
func StampOwner(rec *Record, owner int64) {
	rec.Owner = 0
	if rec.Pending() {
		rec.Owner = owner
	}
}

// Stats are what an index holds, by record state (indexed by RecordState): how
// many keys, and the bytes of their values (one copy each). A backend keeps them as it
// writes records, so that reading them costs no scan.
type Stats struct {
	Keys, Bytes [StateDeleting + 1]int64
}

// add adds to s one record, in state st of size bytes, or with n = -1 takes it away.
func (s *Stats) Add(st RecordState, size int64, n int64) {
	if st > 0 && int(st) < len(s.Keys) {
		s.Keys[st] += n
		s.Bytes[st] += n * size
	}
}

// replace takes old's record out of s and puts new's in: a write of the record.
func (s *Stats) Replace(old, new Head) {
	s.Add(old.State, old.Size, -1)
	s.Add(new.State, new.Size, 1)
}

// addAll adds o to s: a backend's shares summed.
func (s *Stats) AddAll(o Stats) {
	for st := range s.Keys {
		s.Keys[st] += o.Keys[st]
		s.Bytes[st] += o.Bytes[st]
	}
}

// statsVersion is the first byte of EncodeStats' encoding.
const statsVersion = 1

// EncodeStats encodes s: its version byte, then for each state from writing to
// deleting its keys and its bytes as varints.
func EncodeStats(s Stats) []byte {
	b := []byte{statsVersion}
	for st := StateWriting; st <= StateDeleting; st++ {
		b = binary.AppendVarint(b, s.Keys[st])
		b = binary.AppendVarint(b, s.Bytes[st])
	}
	return b
}

// DecodeStats decodes what EncodeStats wrote.
func DecodeStats(b []byte) (Stats, error) {
	var s Stats
	if len(b) < 1 || b[0] != statsVersion {
		return s, fmt.Errorf("%w: statistics of unknown version", ErrBadRecord)
	}
	d := Decoder{b: b[1:]}
	for st := StateWriting; st <= StateDeleting; st++ {
		s.Keys[st], s.Bytes[st] = d.Varint(), d.Varint()
	}
	if d.err || len(d.b) != 0 {
		return s, fmt.Errorf("%w: statistics truncated or with trailing bytes", ErrBadRecord)
	}
	return s, nil
}

// scanPrefix is the range an Index scans for prefix: keys start with '/', so that the
// index's own entries (pending ones) are never scanned.
func ScanPrefix(prefix string) string { return "/" + strings.TrimPrefix(prefix, "/") }

// CountKeys counts the records in index.
func CountKeys(index Index) (int64, error) {
	var n int64
	err := index.Scan("", "", func(string, Record) (bool, error) { n++; return true, nil })
	return n, err
}

// PrefixEnd returns the first string after every string that starts with p, or "" if
// there is none (p is all 0xff bytes).
func PrefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}
