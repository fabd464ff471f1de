package main

// Storing a value under a key with a native PUT, and what every write shares (the
// volumes chosen, the replicas written, the record of a new value); S3's writes are in
// overwrite.go. Every write has files of its own generation (see index.NewGen). A new
// key is recorded as writing, then live; the write of a deleted key, whose files wait
// for a volume, switches the record to the new generation only once every replica
// has it.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
)

// putOptions say how a write stores a value. The zero value is a native PUT's (see
// store): a new, non-empty key; S3's writes (see overwrite) set the rest.
type putOptions struct {
	// Empty allows an empty value (S3 objects may be empty); without it an empty body
	// is ErrEmptyBody.
	Empty bool
	// MD5 is the MD5 the value must have (ErrBadDigest if not), or nil.
	MD5 []byte
	// Check, if set, is the write's precondition on the key's value (live says it has
	// a live value), checked under the key's lock when the write begins, before
	// anything is written, and again when it commits (see overwrite).
	Check func(old index.Record, live bool) error
	// Meta, ETag, Parts and Tags go into the record (see Record).
	Meta  []index.MetaHeader
	ETag  string
	Parts []index.Part
	Tags  []index.Tag
	// Checksum, if set, gives the value's S3 checksum once its body is read whole.
	Checksum func() index.Checksum
}

// store writes body (size bytes, or -1 if unknown) to key's volumes, all at once and
// streaming, and makes it the key's value only when enough of them have it: a native
// PUT, of a key that has no value, holding the key while it writes (another write of
// it is ErrLocked). On any failure it removes what it wrote, and the key keeps the
// value it had. It returns the new record.
func (m *Master) store(ctx context.Context, rc *http.ResponseController, key string, body io.Reader, size int64, opt putOptions) (index.Record, error) {
	unlock, err := m.lockKey(ctx, key, false)
	if err != nil {
		return index.Record{}, err
	}
	defer unlock()

	old, err := m.readRecord(ctx, key, false)
	if err == nil && len(old.Writes) > 0 && m.dropDeadWrites(key, &old) {
		if err := m.index.Put(key, &old); err != nil {
			return index.Record{}, err
		}
	}
	overwrite := false
	switch {
	case errors.Is(err, index.ErrNotFound):
	case err != nil:
		return index.Record{}, err
	case len(old.Writes) > 0 && old.State != index.StateLive && old.State != index.StateUnlinked:
		// S3 writes of a key with no value are in flight (see overwrite): a PUT,
		// which creates the key, races them, and is refused as a second PUT is.
		// (Were it to win, a write in flight that began before it would have to
		// take effect before it, and then this PUT would find the key there.)
		return index.Record{}, ErrLocked
	case old.State == index.StateWriting:
		// A write that died before finishing, not busy: an index of an earlier
		// version's. We hold the lock, so it is not in flight. Roll it back before
		// writing anew.
		if err := m.removeReplicas(ctx, key, old); err != nil {
			return index.Record{}, err
		}
		old = index.Record{Rev: old.Rev}
	case old.State == index.StateDeleting:
		// A deleted key whose files wait for a volume that is away is written like
		// an overwrite: a new generation, which the files left, kept as stale, and
		// their tombstones can never touch.
		overwrite = true
	default:
		return index.Record{}, ErrExists
	}

	// Until the write commits, the record names every volume it may touch, fallbacks
	// included, for the cleanup of a crash: a new key as writing, an overwrite as a
	// stale generation of the live key. It is busy: other masters leave the key alone
	// while this one lives.
	// The write's files are its own (see index.NewGen): a writer that outlives its trace
	// never touches another write's.
	var trace index.Record
	gen := index.NewGen(old, time.Now())
	res, up, traced, err := m.writeReplicas(ctx, rc, key, body, size, opt.Empty, opt.MD5, m.cfg.MD5Sum, func(vols, spares []string) (string, error) {
		trace = index.Record{State: index.StateWriting, Volumes: vols, Leftovers: spares, Sub: m.placement.Subvolume(key), Gen: gen, Writes: old.Writes, Rev: old.Rev}
		if overwrite {
			trace = old
			trace.Stale = append(slices.Clone(old.Stale), index.StaleGen{Gen: gen, Time: time.Now().UnixNano(), Volumes: append(slices.Clone(vols), spares...)})
		}
		trace.Busy = true
		if err := m.index.Put(key, &trace); err != nil {
			if errors.Is(err, index.ErrIndexDown) {
				m.sweepSoon(key) // the trace may have been written
			}
			return "", err
		}
		return layout.GenPath(key, trace.Sub, gen), nil
	})
	if err != nil {
		if traced {
			m.undoStore(ctx, key, trace, gen, append(res.written, res.mayHold...), overwrite, old)
		}
		return index.Record{}, err
	}

	rec := newValue(gen, trace.Sub, res, up, opt)
	rec.Writes, rec.Rev = old.Writes, trace.Rev
	if overwrite {
		replaceValue(&rec, old)
	}
	if err := m.index.Put(key, &rec); errors.Is(err, index.ErrConflict) {
		// Another master rolled this write back, thinking this one gone (paused past
		// its lease, cut off): the files are this write's own, which no record names
		// any more.
		if err := m.removeWrite(ctx, key, rec.Sub, gen, append(res.written, res.mayHold...)); err != nil {
			m.log.Warn("the files of a write rolled back by another master are left for verify -fix", "key", key, "err", err)
		}
		return index.Record{}, err
	} else if err != nil {
		// Whether the record was written may be unknown (the index went away): the
		// sweeper reads it again later, and rolls the write back if it was not.
		m.sweepSoon(key)
		return index.Record{}, err
	}
	m.committed(key, rec)
	return rec, nil
}

// newValue is the record of a write of key, generation gen, that stored res (up are the
// volumes that were up, in key's rank order): live, with the volumes written in that
// order and those that may hold it as leftovers, and the headers opt gives.
func newValue(gen uint64, sub int, res replicaResult, up []string, opt putOptions) index.Record {
	var sum index.Checksum
	if opt.Checksum != nil {
		sum = opt.Checksum()
	}
	return index.Record{
		Checksum: sum,
		State:    index.StateLive, Gen: gen, Sub: sub, Size: res.size, MD5: res.sum, Meta: opt.Meta, ETag: opt.ETag, Parts: opt.Parts, Tags: opt.Tags,
		Modified:  time.Now().UnixNano(),
		Volumes:   slices.DeleteFunc(slices.Clone(up), func(v string) bool { return !slices.Contains(res.written, v) }),
		Leftovers: res.mayHold,
	}
}

// replaceValue makes rec, a new value of a key, keep what old, the key's record, has
// still to delete: its stale generations and tombstones, and its own value's files,
// stale from now on until redirects already sent to them have landed (a deleted
// value's have no readers left and are due at once).
func replaceValue(rec *index.Record, old index.Record) {
	rec.Stale, rec.Tombstones = slices.Clone(old.Stale), old.Tombstones
	if vols := append(slices.Clone(old.Volumes), old.Leftovers...); len(vols) > 0 {
		since := time.Now().UnixNano()
		if old.State == index.StateDeleting {
			since = 0
		}
		rec.Stale = index.AddStale(rec.Stale, old.Gen, vols...)
		rec.Stale[slices.IndexFunc(rec.Stale, func(sg index.StaleGen) bool { return sg.Gen == old.Gen })].Time = since
	}
}

// committed does what follows a write's commit of rec: old files it left are queued
// for deletion after the grace (a volume that did not answer may still store the
// value when it comes back; a replaced value is still there), and too few replicas
// are logged.
func (m *Master) committed(key string, rec index.Record) {
	if len(rec.Leftovers) > 0 || len(rec.Stale) > 0 || len(rec.Tombstones) > 0 {
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	if len(rec.Volumes) < m.cfg.Replicas {
		m.log.Warn("under-replicated: fewer volumes are up than -replicas", "key", key, "volumes", strings.Join(rec.Volumes, ","))
	}
}

// writeReplicas writes body (size bytes, or -1 if unknown) to the volumes that
// chooseVolumes picks for key: what store and storePart share. It reads the first
// chunk before touching any volume, so that an empty body is refused without a trace
// (ErrEmptyBody, unless empty) and a value that fits in one chunk goes as plain
// requests; then trace records the volumes the write may touch and says the path to
// write; then the body is streamed to every replica (checked against want, an MD5, if
// not nil; summed with sum), and too few written is ErrNoVolumes. traced says whether
// trace succeeded: only then may volumes hold something to clean up. up are the
// volumes that were up, in key's rank order.
func (m *Master) writeReplicas(ctx context.Context, rc *http.ResponseController, key string, body io.Reader, size int64, empty bool, want []byte, sum bool,
	trace func(vols, spares []string) (path string, err error)) (res replicaResult, up []string, traced bool, err error) {
	bufp := m.buffers.Get().(*[]byte)
	defer m.buffers.Put(bufp)
	first, eof, err := fill(body, *bufp, rc)
	if err != nil {
		return res, nil, false, err
	}
	if len(first) == 0 && !empty {
		return res, nil, false, ErrEmptyBody
	}
	up, vols, spares, minOK, err := m.chooseVolumes(key)
	if err != nil {
		return res, nil, false, err
	}
	path, err := trace(vols, spares)
	if err != nil {
		return res, nil, false, err
	}
	res, err = m.replicate(ctx, rc, body, first, eof, size, vols, spares, path, want, sum)
	if err == nil && len(res.written) < minOK {
		err = fmt.Errorf("%w: %d replicas written, %d needed", ErrNoVolumes, len(res.written), minOK)
	}
	return res, up, true, err
}

// chooseVolumes picks where a write for key goes: the volumes that are up and have
// room, in key's rendezvous order (its first choices if they can take it, the next
// ones if not), the replicas' volumes and a few spares among them, and how many
// replicas must be written. Too few is ErrNoRoom if full volumes are why, else
// ErrNoVolumes.
func (m *Master) chooseVolumes(key string) (up, vols, spares []string, minOK int, err error) {
	var down, full []string
	for _, v := range m.placement.Rank(key) {
		switch {
		case !m.health.Up(v):
			down = append(down, v)
		case m.health.Full(v):
			full = append(full, v)
		default:
			up = append(up, v)
		}
	}
	minOK = cmp.Or(m.cfg.MinReplicas, m.cfg.Replicas)
	switch {
	case len(up) >= minOK:
	case len(full) > 0:
		return nil, nil, nil, 0, fmt.Errorf("%w: %d of %d volumes are up and have room (full: %s; down: %s), %d replicas needed",
			ErrNoRoom, len(up), len(m.cfg.Volumes), strings.Join(full, ", "), strings.Join(down, ", "), minOK)
	default:
		return nil, nil, nil, 0, fmt.Errorf("%w: %d of %d volumes are up (down: %s), %d replicas needed",
			ErrNoVolumes, len(up), len(m.cfg.Volumes), strings.Join(down, ", "), minOK)
	}
	// A few spares (as many as replicas) are enough to ride out volumes dying during
	// the write; the record, and a crash's cleanup, stay small however many volumes
	// there are.
	n := min(m.cfg.Replicas, len(up))
	return up, up[:n], up[n:min(2*n, len(up))], minOK, nil
}

// undoStore removes what a failed store wrote (generation gen on vols) and takes its
// trace out of the index: a new key's record goes, an overwritten key gets its old
// record back. It does so even when the client is gone, with a context of its own.
// What it cannot remove stays traced: a new key's for recovery or verify -fix, an
// overwrite's as a stale generation that the sweeper deletes when it can.
func (m *Master) undoStore(ctx context.Context, key string, trace index.Record, gen uint64, vols []string, overwrite bool, old index.Record) {
	err := m.removeWrite(ctx, key, trace.Sub, gen, vols)
	switch {
	case err != nil:
	case overwrite:
		old.Rev = trace.Rev
		err = m.index.Put(key, &old)
	default:
		err = removeRecord(m.index, key, trace)
	}
	if err != nil {
		// The trace stays busy, with this master as its owner: the sweeper, or the
		// next request for the key, rolls it back (see readRecord).
		m.log.Error("cleanup after failed put left a trace", "key", key, "err", err)
		m.sweepSoon(key)
	}
}

// removeWrite deletes generation gen of key's value from vols: the files of a write
// that failed. It does so even when the client is gone, with a context of its own.
func (m *Master) removeWrite(ctx context.Context, key string, sub int, gen uint64, vols []string) error {
	ctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	err := removeFiles(ctx, m.client, key, sub, gen, vols, false)
	m.health.Failed(err)
	return err
}

// removeRecord removes key's record rec once nothing it names is left: the record
// goes, unless S3 writes of the key are in flight (see overwrite), which it keeps, in a
// record of no value.
func removeRecord(idx index.Index, key string, rec index.Record) error {
	if len(rec.Writes) == 0 {
		return idx.Delete(key, rec.Rev)
	}
	return idx.Put(key, &index.Record{State: index.StateWriting, Sub: rec.Sub, Writes: rec.Writes, Rev: rec.Rev})
}
