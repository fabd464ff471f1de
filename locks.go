package main

// The master's per-key locks: one PUT, DELETE, UNLINK, REBALANCE or VERIFY of a key at
// a time in this process.

import "sync"

// keyLocks holds the keys that have a PUT, DELETE or UNLINK in flight. A second writer
// is refused at once rather than queued: a client that races itself should hear so.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]struct{}
}

// tryLock locks key and returns its unlock, or false if key is already locked.
func (l *keyLocks) tryLock(key string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[key]; busy {
		return nil, false
	}
	if l.held == nil {
		l.held = make(map[string]struct{})
	}
	l.held[key] = struct{}{}
	return func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
	}, true
}
