package main

// Adopting what masters that are gone left pending: at start, what the last master
// (or this one, before a crash) left, and later what any other master sharing the
// index leaves when it dies.

import (
	"context"
	"errors"
	"slices"
	"time"

	"davkv/internal/index"
)

// adoptEvery is how often a master looks for pending records of dead owners even if
// it saw no owner go: one that came and went between two looks.
const adoptEvery = 5 * time.Minute

// adopt finishes what dead owners left pending (see Record.Owner): a write that never
// got its 201 loses its replicas and its record, a delete is completed (or, with a
// volume away, left to the sweeper: see FinishDelete), and old files (leftovers, stale
// generations, tombstones) and missing unlink markers are queued for the sweeper,
// after the grace. A record is first written again as this master's, so that of two
// masters adopting it only one goes on. It runs beside the requests, under each key's
// lock; a key a request holds is that request's to finish (a PUT clears a dead write
// first, a DELETE completes a dead delete). A write is rolled back by rollBack, which a
// request that meets a dead write uses too; one that cannot be rolled back now, with
// a volume down, is left to the sweeper.
func (m *Master) adopt(ctx context.Context) {
	var writes, deletes, failed, old int
	err := m.index.Pending(func(key string) (bool, error) {
		// A first look without the key's lock: this master's own keys, which its
		// requests and sweeper work on, and live owners' are left alone.
		if _, ok, err := m.orphanAt(key); err != nil || !ok {
			return err == nil && ctx.Err() == nil, err
		}
		unlock, ok := m.locks.tryBackground(key)
		if !ok {
			return ctx.Err() == nil, nil // a request's: it finishes the key (or the sweeper's)
		}
		defer unlock()
		rec, ok, err := m.orphanAt(key) // again, under the lock: done or adopted meanwhile?
		if err != nil || !ok {
			return err == nil && ctx.Err() == nil, err
		}
		m.dropDeadWrites(key, &rec)
		if rec.Busy || rec.State == index.StateWriting && len(rec.Writes) == 0 {
			// rollBack takes the record first, as adopting does.
			switch _, err := m.rollBack(ctx, key, rec); {
			case err == nil, errors.Is(err, index.ErrNotFound):
				writes++
			case errors.Is(err, index.ErrConflict): // another master adopted it first
			default:
				failed++
				m.log.Warn("interrupted write not rolled back yet; it is tried again", "key", key, "err", err)
			}
			return ctx.Err() == nil, nil
		}
		if err := m.index.Put(key, &rec); errors.Is(err, index.ErrConflict) {
			return ctx.Err() == nil, nil // another master adopted it first
		} else if err != nil {
			return false, err
		}
		rctx, cancel := context.WithTimeout(ctx, 4*m.cfg.VolTimeout)
		defer cancel()
		switch rec.State {
		case index.StateDeleting:
			if err := m.rebalancer.FinishDelete(rctx, key, rec, true); err != nil {
				failed++
				m.sweepSoon(key)
				m.log.Warn("interrupted delete not finished; the sweeper retries", "key", key, "err", err)
				return ctx.Err() == nil, nil
			}
			deletes++
		default:
			old++
			m.deleteLeftoversLater(key, m.cfg.Grace)
		}
		return ctx.Err() == nil, nil
	})
	if err != nil && ctx.Err() == nil {
		m.log.Error("adopting unfinished work stopped", "err", err)
	}
	if writes+deletes+failed > 0 {
		m.log.Info("finished what a master left unfinished", "writes rolled back", writes, "deletes completed", deletes, "left pending", failed)
	}
	if old > 0 {
		m.log.Info("old files queued for deletion after the grace", "keys", old, "grace", m.cfg.Grace)
	}
}

// orphanAt reads key's record and reports whether it is an orphan; a key with no
// record is none.
func (m *Master) orphanAt(key string) (index.Record, bool, error) {
	rec, err := m.index.Get(key)
	if errors.Is(err, index.ErrNotFound) {
		return rec, false, nil
	}
	return rec, err == nil && m.orphan(rec), err
}

// orphan reports whether rec has work pending whose owner is gone, and not this
// master (an index that cannot say counts as not gone). A record that is not pending
// (any more, since the pending entries were listed) has no work to adopt.
func (m *Master) orphan(rec index.Record) bool {
	if !rec.Pending() {
		return false
	}
	for _, w := range rec.Writes {
		if w.Owner == m.index.Owner() {
			continue
		}
		if alive, err := m.index.Alive(w.Owner); err == nil && !alive {
			return true // an S3 write whose master is gone
		}
	}
	if rec.Owner == m.index.Owner() {
		return false
	}
	if rec.Owner == 0 {
		return true // written before records had owners
	}
	alive, err := m.index.Alive(rec.Owner)
	return err == nil && !alive
}

// watchOwners adopts the pending work of every owner that goes away, until ctx ends:
// it lists the owners alive every second (an etcd lease's TTL decides when a master
// is gone) and adopts when one has left, and every adoptEvery anyway.
func (m *Master) watchOwners(ctx context.Context) {
	known, _ := m.index.Owners()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		owners, err := m.index.Owners()
		if err != nil {
			continue // the index is away: the requests say so
		}
		gone := slices.ContainsFunc(known, func(o int64) bool { return !slices.Contains(owners, o) })
		known = owners
		if gone || time.Since(last) > adoptEvery {
			m.adopt(ctx)
			last = time.Now()
		}
	}
}
