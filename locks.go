package main

// The master's per-key locks: one PUT, DELETE, UNLINK, REBALANCE or VERIFY of a key at
// a time in this process.

import (
	"context"
	"fmt"
	"sync"
)

// keyLocks holds the keys that have a PUT, DELETE or UNLINK in flight. A second native
// writer is refused at once rather than queued (tryLock): a client that races itself
// should hear so. S3 clients expect writes to one key to follow each other, the last
// one winning, so S3 writes wait (lock).
type keyLocks struct {
	mu sync.Mutex
	// held maps each locked key to a channel closed when it is unlocked.
	held map[string]chan struct{}
}

// tryLock locks key and returns its unlock, or false if key is already locked.
func (l *keyLocks) tryLock(key string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[key]; busy {
		return nil, false
	}
	return l.take(key), true
}

// lock locks key, waiting while it is locked until ctx ends (then ErrLocked), and
// returns its unlock.
func (l *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	for {
		l.mu.Lock()
		unlocked, busy := l.held[key]
		if !busy {
			defer l.mu.Unlock()
			return l.take(key), nil
		}
		l.mu.Unlock()
		select {
		case <-unlocked:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrLocked, ctx.Err())
		}
	}
}

// take marks key locked and returns its unlock; l.mu is held.
func (l *keyLocks) take(key string) func() {
	if l.held == nil {
		l.held = make(map[string]chan struct{})
	}
	unlocked := make(chan struct{})
	l.held[key] = unlocked
	return func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
		close(unlocked)
	}
}
