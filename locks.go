package main

// The master's per-key locks: one PUT, DELETE, UNLINK, REBALANCE or VERIFY of a key at
// a time in this process, or one piece of background work (the sweeper, adoption);
// and reading a key's record under its lock, rolling back an unfinished write found
// there.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"davkv/internal/index"
)

// keyLocks holds the keys that have a PUT, DELETE or UNLINK in flight, or background
// work. A second native writer is refused at once rather than queued (see lock): a
// client that races itself should hear so. S3 clients expect writes to one key to
// follow each other, the last one winning, so S3 writes wait. Background work is no
// client's race: a client waits for it either way, and background work never waits,
// it tries again later (tryBackground).
type keyLocks struct {
	mu   sync.Mutex
	held map[string]keyHold
}

// keyHold is one locked key.
type keyHold struct {
	// unlocked is closed when the key is unlocked.
	unlocked chan struct{}
	// background says background work holds it, not a client's request.
	background bool
}

// lock locks key for a client's request and returns its unlock. While another
// client's request holds it, it answers ErrLocked at once, or with wait waits until
// ctx ends (then ErrLocked); while background work holds it, it waits.
func (l *keyLocks) lock(ctx context.Context, key string, wait bool) (func(), error) {
	for {
		l.mu.Lock()
		h, busy := l.held[key]
		if !busy {
			defer l.mu.Unlock()
			return l.take(key, false), nil
		}
		l.mu.Unlock()
		if !wait && !h.background {
			return nil, ErrLocked
		}
		select {
		case <-h.unlocked:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrLocked, ctx.Err())
		}
	}
}

// tryBackground locks key for background work and returns its unlock, or false if
// anything holds it.
func (l *keyLocks) tryBackground(key string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[key]; busy {
		return nil, false
	}
	return l.take(key, true), true
}

// take marks key locked and returns its unlock; l.mu is held.
func (l *keyLocks) take(key string, background bool) func() {
	if l.held == nil {
		l.held = make(map[string]keyHold)
	}
	h := keyHold{unlocked: make(chan struct{}), background: background}
	l.held[key] = h
	return func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
		close(h.unlocked)
	}
}

// readRecord reads key's record for a caller that holds the key's lock in this
// master. A busy record (see Record.Busy) is the lock of another master's write in
// flight: ErrLocked, or with wait, a wait for it to end until ctx does. A busy record
// of this master's, or of a master that is gone, is a write that will never finish,
// which readRecord rolls back first (see rollBack).
func (m *Master) readRecord(ctx context.Context, key string, wait bool) (index.Record, error) {
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		rec, err := m.index.Get(key)
		if err != nil || !rec.Busy {
			return rec, err
		}
		if rec.Owner != m.index.Owner() {
			alive, err := m.index.Alive(rec.Owner)
			switch {
			case err != nil:
				return rec, err
			case alive && !wait:
				return rec, ErrLocked
			case alive:
				select {
				case <-ctx.Done():
					return rec, fmt.Errorf("%w: %w", ErrLocked, ctx.Err())
				case <-time.After(delay):
				}
				continue
			}
		}
		return m.rollBack(ctx, key, rec)
	}
}

// rollBack ends busy, a write that will never finish: a new key's record goes with the
// files it may have written (ErrNotFound), an overwrite leaves the key's value as it
// was, with the new generation's files stale, for the sweeper. A new key's record is
// taken first, so that its writer, if it still runs without knowing that it is
// thought gone, cannot commit it once the files are going.
func (m *Master) rollBack(ctx context.Context, key string, busy index.Record) (index.Record, error) {
	rec := busy
	if rec.State != index.StateWriting {
		rec.Busy = false
		if err := m.index.Put(key, &rec); err != nil {
			return busy, err
		}
		m.deleteLeftoversLater(key, m.cfg.Grace)
		return rec, nil
	}
	rec.Busy = true // taken: the sweeper rolls it back if this cannot finish
	if err := m.index.Put(key, &rec); err != nil {
		return busy, err
	}
	m.sweepSoon(key) // unless it is all done below
	rctx, cancel := m.cleanupContext(ctx)
	defer cancel()
	if err := m.removeReplicas(rctx, key, rec); err != nil {
		return rec, fmt.Errorf("roll back an unfinished write of %s: %w", key, err)
	}
	if err := removeRecord(m.index, key, rec); err != nil {
		return rec, err
	}
	m.log.Info("rolled back a write its master left unfinished", "key", key)
	return index.Record{}, index.ErrNotFound
}

// writesInFlight are the S3 writes this master streams right now (see overwrite), by
// key and generation: the sweeper drops a write of this master's that the index still
// names only once it is no longer here, its request gone without clearing it.
type writesInFlight struct {
	mu   sync.Mutex
	gens map[writeID]struct{}
}

type writeID struct {
	key string
	gen uint64
}

func (f *writesInFlight) add(key string, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gens == nil {
		f.gens = make(map[writeID]struct{})
	}
	f.gens[writeID{key, gen}] = struct{}{}
}

func (f *writesInFlight) done(key string, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.gens, writeID{key, gen})
}

func (f *writesInFlight) has(key string, gen uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.gens[writeID{key, gen}]
	return ok
}
