package main

// Crash recovery: at start, the master rolls back writes and completes deletes that a
// crash left pending.

import (
	"context"
	"errors"
)

// recover finishes what the last master left pending: a write that never got its 201
// loses its replicas and its record, a delete is completed (or, with a volume away,
// left to the sweeper: see FinishDelete), and old files (leftovers, stale
// generations, tombstones) and missing unlink markers are queued for the sweeper,
// after the grace. It runs beside the requests, under each key's lock; a key a request
// holds is that request's to finish (a PUT clears a dead write first, a DELETE
// completes a dead delete). A write that cannot be rolled back now, with a volume
// down, stays pending for the next start or verify.
func (m *Master) recover(ctx context.Context) {
	defer m.ready.Store(true)
	var writes, deletes, failed, old int
	err := m.index.Pending(func(key string) (bool, error) {
		rec, unlock, err := m.lockRecord(key)
		if errors.Is(err, ErrLocked) {
			return ctx.Err() == nil, nil
		}
		if err != nil {
			return false, err
		}
		defer unlock()
		rctx, cancel := context.WithTimeout(ctx, 4*m.cfg.VolTimeout)
		defer cancel()
		switch rec.State {
		case StateWriting:
			if err := m.removeReplicas(rctx, key, rec); err != nil {
				failed++
				m.log.Warn("interrupted write not rolled back; verify -fix will", "key", key, "err", err)
				return ctx.Err() == nil, nil
			}
			writes++
			return ctx.Err() == nil, m.index.Delete(key, rec.Rev)
		case StateDeleting:
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
		m.log.Error("recovery stopped", "err", err)
	}
	if writes+deletes+failed > 0 {
		m.log.Info("recovered from an earlier crash", "writes rolled back", writes, "deletes completed", deletes, "left pending", failed)
	}
	if old > 0 {
		m.log.Info("old files queued for deletion after the grace", "keys", old, "grace", m.cfg.Grace)
	}
}
