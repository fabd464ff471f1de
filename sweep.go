package main

// The sweeper: deletes old replicas (after rebalancing, or what a volume that gave up
// on a PUT may hold) once their grace period is over, retrying while a volume is down.

import (
	"context"
	"errors"
	"time"
)

// pendingSweep is a key whose old replicas may be deleted from due on.
type pendingSweep struct {
	key      string
	due      time.Time
	attempts int
}

// sweepRetries and sweepRetryDelay bound how long the sweeper keeps trying a volume
// that is down; after that, the next rebalance or verify -fix deletes the replicas.
const (
	sweepRetries    = 20
	sweepRetryDelay = 5 * time.Second
)

// deleteLeftoversLater queues key's old replicas for deletion once after has passed.
func (m *Master) deleteLeftoversLater(key string, after time.Duration) {
	m.queueSweep(pendingSweep{key: key, due: time.Now().Add(after)})
}

func (m *Master) queueSweep(p pendingSweep) {
	m.sweepMu.Lock()
	m.sweepQueue = append(m.sweepQueue, p)
	m.sweepMu.Unlock()
	select {
	case m.sweepWake <- struct{}{}:
	default:
	}
}

// sweepLeftovers deletes queued old replicas as they fall due, under each key's lock,
// until ctx ends, trying again while a volume is down. Every key gets the same grace,
// so the queue is in due order but for retries, which only come late. A master that stops first leaves the rest recorded in
// the index, for the next rebalance of the key to delete.
func (m *Master) sweepLeftovers(ctx context.Context) {
	for {
		m.sweepMu.Lock()
		var next pendingSweep
		if len(m.sweepQueue) > 0 {
			next = m.sweepQueue[0]
		}
		m.sweepMu.Unlock()
		var wait <-chan time.Time
		if next.key != "" {
			if d := time.Until(next.due); d > 0 {
				wait = time.After(d)
			}
		}
		if next.key == "" || wait != nil {
			select {
			case <-ctx.Done():
				return
			case <-m.sweepWake:
			case <-wait:
			}
			continue
		}
		m.sweepMu.Lock()
		m.sweepQueue = m.sweepQueue[1:]
		m.sweepMu.Unlock()
		err := m.sweep(ctx, next.key)
		switch {
		case errors.Is(err, ErrLocked):
			m.deleteLeftoversLater(next.key, time.Second)
		case err != nil && next.attempts < sweepRetries:
			m.queueSweep(pendingSweep{key: next.key, due: time.Now().Add(sweepRetryDelay), attempts: next.attempts + 1})
		case err != nil:
			m.log.Warn("old replicas not deleted; the next rebalance or verify -fix will", "key", next.key, "err", err)
		}
	}
}

func (m *Master) sweep(ctx context.Context, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, 4*m.cfg.VolTimeout)
	defer cancel()
	return m.rebalancer.DeleteLeftovers(ctx, key, rec)
}
