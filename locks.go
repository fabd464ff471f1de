package main

// The master's per-key locks: one PUT, DELETE, UNLINK, REBALANCE or VERIFY of a key at
// a time in this process, or one piece of background work (the sweeper, adoption).

import (
	"context"
	"fmt"
	"sync"
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
