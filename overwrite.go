package main

// S3's writes of a value (PutObject, CopyObject, CompleteMultipartUpload): each streams
// to files of its own generation without holding the key, so that two writes of one
// key go on side by side and none waits for the other's body, and is decided when it
// commits, under the key's lock for a moment. The write that finishes last wins, as in
// S3; but one that finishes after a delete of a value written after it began is done,
// and deleted at once, so that no tombstone a rebuild trusts ever covers a live value.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/s3proto"
)

// maxCommitTries bounds how often a commit reads the record again because another
// master changed it between its read and its write.
const maxCommitTries = 5

// overwrite stores body (size bytes) as key's value the way S3 writes do, replacing any
// value the key has, with opt's headers, and checks opt.Check when it begins and when
// it commits. It returns the value's record: the key's, or, for a write that an earlier
// one's later commit found replaced already, its own as it was for that moment.
//
// The write is recorded in the key's record (Record.Writes) before any file is written,
// without Busy: other writes of the key, reads, deletes and rebalances go on meanwhile.
// Its commit makes its generation the value if no later write, or delete, has taken
// effect, and in any case takes it out of the record's writes. If the write fails, its
// files are removed, or kept as a stale generation for the sweeper.
func (m *Master) overwrite(ctx context.Context, rc *http.ResponseController, key string, body io.Reader, size int64, opt putOptions) (index.Record, error) {
	var w index.Write
	var sub int
	res, up, traced, err := m.writeReplicas(ctx, rc, key, body, size, opt.Empty, opt.MD5, true, func(vols, spares []string) (string, error) {
		var err error
		w, sub, err = m.beginWrite(ctx, key, append(slices.Clone(vols), spares...), opt.Check)
		if err != nil {
			return "", err
		}
		return layout.GenPath(key, sub, w.Gen), nil
	})
	if !traced {
		return index.Record{}, err
	}
	defer m.writes.done(key, w.Gen)
	if err != nil {
		m.abandonWrite(ctx, key, w, sub)
		return index.Record{}, err
	}
	return m.commitWrite(ctx, key, w, sub, res, up, opt)
}

// beginWrite records a write of key to vols in its record, under the key's lock once
// check holds, and returns it and the subvolume its files go under.
func (m *Master) beginWrite(ctx context.Context, key string, vols []string, check func(index.Record, bool) error) (index.Write, int, error) {
	unlock, err := m.lockKey(ctx, key, true)
	if err != nil {
		return index.Write{}, 0, err
	}
	defer unlock()
	old, err := m.readRecord(ctx, key, true)
	switch {
	case errors.Is(err, index.ErrNotFound):
		old = index.Record{State: index.StateWriting, Sub: m.placement.Subvolume(key), Rev: old.Rev}
	case err != nil:
		return index.Write{}, 0, err
	case old.State == index.StateWriting && len(old.Writes) == 0:
		// A write that died before finishing, not busy: an index of an earlier
		// version's, which this master holds the lock of. Roll it back first.
		if err := m.removeReplicas(ctx, key, old); err != nil {
			return index.Write{}, 0, err
		}
		old = index.Record{State: index.StateWriting, Sub: m.placement.Subvolume(key), Rev: old.Rev}
	}
	if check != nil {
		if err := check(old, old.State == index.StateLive); err != nil {
			return index.Write{}, 0, err
		}
	}
	now := time.Now()
	w := index.Write{Gen: index.NewGen(old, now), Owner: m.index.Owner(), Time: now.UnixNano(), Volumes: vols}
	rec := old
	rec.Writes = append(slices.Clone(old.Writes), w)
	m.writes.add(key, w.Gen)
	if err := m.index.Put(key, &rec); err != nil {
		m.writes.done(key, w.Gen)
		if errors.Is(err, index.ErrIndexDown) {
			m.sweepSoon(key) // the write may be recorded: the sweeper drops it
		}
		return index.Write{}, 0, err
	}
	return w, rec.Sub, nil
}

// commitWrite decides write w of key, whose files are stored (res; up the volumes that
// were up, in key's rank order), under the key's lock: w becomes the value, replacing
// any, unless a delete of a value of a later generation took effect first, in which
// case w's files are stale at once. A precondition (opt.Check) that no longer holds is
// ConditionalRequestConflict, and w is dropped. If the record no longer names w,
// another master took this one for gone and dropped it: w's files are removed, and the
// answer is ErrConflict.
func (m *Master) commitWrite(ctx context.Context, key string, w index.Write, sub int, res replicaResult, up []string, opt putOptions) (index.Record, error) {
	ctx, cancel := m.cleanupContext(ctx) // the client may go once its body is in
	defer cancel()
	unlock, err := m.lockKey(ctx, key, true)
	if err != nil {
		m.abandonWrite(ctx, key, w, sub)
		return index.Record{}, err
	}
	defer unlock()
	files := append(slices.Clone(res.written), res.mayHold...)
	for try := 1; ; try++ {
		cur, err := m.readRecord(ctx, key, true)
		if err != nil && !errors.Is(err, index.ErrNotFound) {
			m.sweepWriteSoon(key, w.Gen) // the write stays recorded: the sweeper drops it
			return index.Record{}, err
		}
		i := cur.WriteAt(w.Gen)
		if err != nil || i < 0 {
			if err := m.removeWrite(ctx, key, sub, w.Gen, w.Volumes); err != nil {
				m.log.Warn("the files of a write dropped by another master are left for verify -fix", "key", key, "err", err)
			}
			return index.Record{}, fmt.Errorf("%w: the write of %s was dropped by another master", index.ErrConflict, key)
		}
		next := cur
		next.Writes = slices.Delete(slices.Clone(cur.Writes), i, i+1)
		var failed error
		if opt.Check != nil {
			failed = opt.Check(cur, cur.State == index.StateLive)
		}
		mine := newValue(w.Gen, sub, res, up, opt)
		won := failed == nil && w.Gen > deletedGen(cur)
		if won {
			mine.Writes, mine.Rev = next.Writes, cur.Rev
			if cur.State != index.StateWriting {
				replaceValue(&mine, cur)
			} else {
				mine.Stale, mine.Tombstones = slices.Clone(cur.Stale), cur.Tombstones
			}
			next = mine
		} else {
			// Replaced before it took effect, or refused: its files have no reader,
			// and are due at once.
			next.Stale = index.AddStale(slices.Clone(cur.Stale), w.Gen, files...)
		}
		err = m.index.Put(key, &next)
		if errors.Is(err, index.ErrConflict) && try < maxCommitTries {
			continue
		}
		if err != nil {
			m.sweepWriteSoon(key, w.Gen) // the write may stay recorded: the sweeper drops it
			return index.Record{}, err
		}
		m.committed(key, next)
		if failed != nil {
			return index.Record{}, &s3proto.Error{ErrorCode: s3proto.ErrConditionalConflict, Message: "Another write of the key took effect while this one was sent; try again.", Err: failed}
		}
		return mine, nil
	}
}

// deletedGen is the generation up to which rec's key was deleted: that of a value
// being deleted, or of its tombstones, which a rebuild trusts. A write in flight with a
// generation below it began before the value deleted was written, and is deleted as
// it commits, as if it had taken effect before that value. A write replacing a value
// of a later generation (one that began after it, and finished first) leaves that
// value's files stale, and until they are gone a rebuild, which keeps the newest
// generation, may take them for the value.
func deletedGen(rec index.Record) uint64 {
	var gen uint64
	if rec.State == index.StateDeleting {
		gen = rec.Gen
	}
	for _, t := range rec.Tombstones {
		gen = max(gen, t.Gen)
	}
	return gen
}

// abandonWrite drops write w of key, which failed: its files are removed, and it goes
// from the key's record; files that could not be removed stay recorded, as a stale
// generation due at once, for the sweeper. It does so even when the client is gone.
func (m *Master) abandonWrite(ctx context.Context, key string, w index.Write, sub int) {
	ctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	removed := m.removeWrite(ctx, key, sub, w.Gen, w.Volumes)
	err := func() error {
		unlock, err := m.lockKey(ctx, key, true)
		if err != nil {
			return err
		}
		defer unlock()
		rec, err := m.readRecord(ctx, key, true)
		if errors.Is(err, index.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		i := rec.WriteAt(w.Gen)
		if i < 0 {
			return nil // dropped already
		}
		rec.Writes = slices.Delete(slices.Clone(rec.Writes), i, i+1)
		if removed != nil {
			rec.Stale = index.AddStale(slices.Clone(rec.Stale), w.Gen, w.Volumes...)
		}
		if rec.State == index.StateWriting && !rec.Busy && len(rec.Writes) == 0 && len(rec.Stale) == 0 && len(rec.Volumes) == 0 {
			return removeRecord(m.index, key, rec) // a new key that no write made
		}
		return m.index.Put(key, &rec)
	}()
	if err != nil || removed != nil {
		m.log.Warn("a failed write's files are left to the sweeper", "key", key, "err", errors.Join(removed, err))
		m.sweepWriteSoon(key, w.Gen)
	}
}

// sweepWriteSoon queues key for the sweeper, which drops write gen of this master's
// from its record: the write is no longer in flight from now on.
func (m *Master) sweepWriteSoon(key string, gen uint64) {
	m.writes.done(key, gen)
	m.sweepSoon(key)
}

// dropDeadWrites drops from rec the writes whose master is gone, or that are this
// master's but no longer in flight (their request ended without clearing them): their
// files become a stale generation due at once. It reports whether it dropped any.
func (m *Master) dropDeadWrites(key string, rec *index.Record) bool {
	var kept []index.Write
	dropped := false
	for _, w := range rec.Writes {
		alive := m.writes.has(key, w.Gen)
		if w.Owner != m.index.Owner() {
			ok, err := m.index.Alive(w.Owner)
			alive = err != nil || ok // an index that cannot say counts as alive
		}
		if alive {
			kept = append(kept, w)
			continue
		}
		rec.Stale = index.AddStale(slices.Clone(rec.Stale), w.Gen, w.Volumes...)
		dropped = true
	}
	rec.Writes = kept
	return dropped
}
