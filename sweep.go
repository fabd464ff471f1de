package main

// The sweeper: deletes old replicas (after rebalancing, or what a volume that gave up
// on a PUT may hold) once their grace period is over, finishes deletes and unlinks
// that a volume was away for, retrying with back-off for as long as the record needs
// it, and at once when a volume comes back; and the hourly sweep of abandoned S3
// multipart uploads.

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"davkv/internal/index"
)

// pendingSweep is a key whose old replicas may be deleted from due on.
type pendingSweep struct {
	key      string
	due      time.Time
	attempts int
}

// sweepRetryDelay is the wait before the first retry of a key the sweeper could not
// finish, doubling with each failure up to sweepRetryMax. The sweeper never gives up
// while the key's record still names files: a volume away for days is retried every
// sweepRetryMax, and at once when Health sees it back.
const (
	sweepRetryDelay = time.Second
	sweepRetryMax   = 5 * time.Minute
)

// volumeSettle is how long after a volume comes back the sweeper waits, at most, to
// retry what waited for it (see volumeBack).
const volumeSettle = time.Second

// retryDelay is how long the sweeper waits after a key's attempts-th failure.
func retryDelay(attempts int) time.Duration {
	return min(sweepRetryDelay<<min(attempts, 20), sweepRetryMax)
}

// sweepQueue is the sweeper's keys, a heap by due time.
type sweepQueue []pendingSweep

func (q sweepQueue) Len() int           { return len(q) }
func (q sweepQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q sweepQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *sweepQueue) Push(x any)        { *q = append(*q, x.(pendingSweep)) }
func (q *sweepQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// deleteLeftoversLater queues key's old replicas for deletion once after has passed.
func (m *Master) deleteLeftoversLater(key string, after time.Duration) {
	m.queueSweep(pendingSweep{key: key, due: time.Now().Add(after)})
}

// sweepSoon queues key for the sweeper as one that failed once: a delete or unlink
// that could not reach a volume, retried with back-off.
func (m *Master) sweepSoon(key string) {
	m.queueSweep(pendingSweep{key: key, due: time.Now().Add(retryDelay(0)), attempts: 1})
}

func (m *Master) queueSweep(p pendingSweep) {
	m.sweepMu.Lock()
	heap.Push(&m.sweepQueue, p)
	m.sweepMu.Unlock()
	m.wakeSweeper()
}

func (m *Master) wakeSweeper() {
	select {
	case m.sweepWake <- struct{}{}:
	default:
	}
}

// volumeBack makes every retry that waits due soon: a volume answers again. Soon,
// not at once: a volume that was frozen (SIGSTOP, a stalled disk) may still store the
// PUTs that gave up on it as it thaws, and a delete that came first would find nothing
// and clear the leftover, leaving the late file an orphan.
func (m *Master) volumeBack(volume string) {
	m.sweepMu.Lock()
	due := time.Now().Add(min(m.cfg.Grace, volumeSettle))
	for i := range m.sweepQueue {
		if m.sweepQueue[i].attempts > 0 {
			m.sweepQueue[i].due = due
		}
	}
	heap.Init(&m.sweepQueue)
	m.sweepMu.Unlock()
	m.log.Info("volume is back; retrying what waited for it", "volume", volume)
	m.wakeSweeper()
}

// sweepLeftovers works through the queue as keys fall due, under each key's lock,
// until ctx ends, retrying with back-off what fails. A master that stops first leaves
// the rest recorded in the index, for the next one to queue (see recover).
func (m *Master) sweepLeftovers(ctx context.Context) {
	for {
		m.sweepMu.Lock()
		var next pendingSweep
		if len(m.sweepQueue) > 0 {
			next = m.sweepQueue[0]
		}
		var wait <-chan time.Time
		if next.key != "" {
			if d := time.Until(next.due); d > 0 {
				wait = time.After(d)
			} else {
				heap.Pop(&m.sweepQueue)
			}
		}
		m.sweepMu.Unlock()
		if next.key == "" || wait != nil {
			select {
			case <-ctx.Done():
				return
			case <-m.sweepWake:
			case <-wait:
			}
			continue
		}
		err := m.sweep(ctx, next.key)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, ErrLocked):
			m.deleteLeftoversLater(next.key, time.Second)
		default:
			if next.attempts%20 == 5 { // after about half a minute, then every 20 tries
				m.log.Warn("old files not deleted yet; retrying", "key", next.key, "attempts", next.attempts, "err", err)
			}
			m.queueSweep(pendingSweep{key: next.key, due: time.Now().Add(retryDelay(next.attempts)), attempts: next.attempts + 1})
		}
	}
}

// sweep does what key's record has left to do: finish its deletion, write the unlink
// markers an UNLINK could not, delete its old replicas and stale generations, and its
// tombstones. A volume it needs that is down fails it at once, for a retry.
func (m *Master) sweep(ctx context.Context, key string) error {
	rec, unlock, err := m.lockBackground(ctx, key)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	if len(rec.Writes) > 0 && m.dropDeadWrites(key, &rec) {
		if err := m.index.Put(key, &rec); err != nil {
			return err
		}
	}
	if rec.State == index.StateWriting && !rec.Busy && len(rec.Writes) == 0 {
		// A new key whose every write was dropped: nothing of it is left but files.
		_, err := m.rollBack(ctx, key, rec)
		if errors.Is(err, index.ErrNotFound) {
			err = nil
		}
		return err
	}
	if v, ok := m.downVolume(rec); ok {
		return fmt.Errorf("%w: %s", errVolumeDown, v)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*m.cfg.VolTimeout)
	defer cancel()
	switch {
	case rec.State == index.StateDeleting:
		return m.rebalancer.FinishDelete(ctx, key, rec, true)
	case rec.State == index.StateUnlinked && len(rec.Unmarked) > 0:
		pending, err := m.markUnlinked(ctx, key, &rec, rec.Unmarked)
		if err == nil && pending {
			err = fmt.Errorf("unlink markers of %s not written to %v", key, rec.Unmarked)
		}
		if err != nil {
			return err
		}
	}
	return m.rebalancer.DeleteLeftovers(ctx, key, rec)
}

// markUnlinked writes rec's unlink marker to those of vols that are rec's volumes and
// up, and makes rec unlinked in the index, with the volumes that failed or are down in
// rec.Unmarked, for the sweeper; pending says there are some. A live key stays live if
// no volume took its marker.
func (m *Master) markUnlinked(ctx context.Context, key string, rec *index.Record, vols []string) (pending bool, err error) {
	var up, unmarked []string
	for _, v := range vols {
		switch {
		case !slices.Contains(rec.Volumes, v):
		case m.health.Up(v):
			up = append(up, v)
		default:
			unmarked = append(unmarked, v)
		}
	}
	errs := m.client.PutAll(ctx, up, rec.MarkerPath(key), nil)
	for i, err := range errs {
		if err != nil {
			m.health.Failed(err)
			unmarked = append(unmarked, up[i])
		}
	}
	if rec.State == index.StateLive && len(unmarked) == len(rec.Volumes) {
		if err := errors.Join(errs...); err != nil {
			return false, err
		}
		return false, fmt.Errorf("%w: no volume of the key is up to take its unlink marker", ErrNoVolumes)
	}
	if rec.State != index.StateUnlinked || !slices.Equal(unmarked, rec.Unmarked) {
		rec.State, rec.Unmarked = index.StateUnlinked, unmarked
		if err := m.index.Put(key, rec); err != nil {
			return false, err
		}
	}
	return len(unmarked) > 0, nil
}

// downVolume returns a volume that sweeping rec needs and that Health says is down:
// one that holds a file to delete or lacks a marker.
func (m *Master) downVolume(rec index.Record) (string, bool) {
	gens := append(slices.Clone(rec.Stale), rec.Tombstones...)
	gens = append(gens, index.StaleGen{Volumes: rec.Leftovers}, index.StaleGen{Volumes: rec.Unmarked})
	if rec.State == index.StateDeleting {
		gens = append(gens, index.StaleGen{Volumes: rec.Volumes})
	}
	for _, g := range gens {
		if i := slices.IndexFunc(g.Volumes, func(v string) bool { return !m.health.Up(v) }); i >= 0 {
			return g.Volumes[i], true
		}
	}
	return "", false
}

// sweepUploads removes the uploads older than UploadGrace, now and every hour, until
// ctx ends.
func (m *Master) sweepUploads(ctx context.Context) {
	grace := m.cfg.UploadGrace
	if grace == 0 {
		grace = 7 * 24 * time.Hour
	}
	for {
		var old []string
		err := m.index.Entries(index.UploadSpace, "", func(id string, value []byte, _ int64) (bool, error) {
			var u index.MultipartUpload
			if err := u.UnmarshalBinary(value); err != nil {
				return false, err
			}
			if time.Since(time.Unix(0, u.Created)) > grace {
				old = append(old, id)
			}
			return ctx.Err() == nil, nil
		})
		if err != nil {
			m.log.Warn("listing multipart uploads failed", "err", err)
		}
		for _, id := range old {
			if err := removeUpload(ctx, m.index, m.client, id); err != nil {
				m.log.Warn("an abandoned multipart upload was not removed; the next sweep will try again", "upload", id, "err", err)
			} else {
				m.log.Info("removed an abandoned multipart upload", "upload", id, "older than", grace)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}
