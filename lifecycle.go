package main

// The buckets' lifecycle rules applied (see internal/lifecycle): every so often one
// master, of several the one whose owner ID is smallest among those alive, passes over
// the buckets that have rules, deletes the keys whose time has come as DELETE does (so
// that rebuild never brings them back), and aborts the uploads whose time has come.

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"davkv/internal/index"
	"davkv/internal/lifecycle"
)

// lifecycleBatch is how many due keys a pass collects from the index before it deletes
// them, and then goes on scanning; lifecycleWorkers delete them at once, as many
// clients would.
const (
	lifecycleBatch   = 1000
	lifecycleWorkers = 16
)

// errNotExpired says a key's record, read again under its lock, is no longer due: it
// was written again, or its tags changed, since the pass looked.
var errNotExpired = errors.New("the key is no longer due to expire")

// lifecycleDay is how long a lifecycle day lasts (see ServerConfig.LifecycleDay).
func (m *Master) lifecycleDay() time.Duration { return cmp.Or(m.cfg.LifecycleDay, 24*time.Hour) }

// lifecycleEvery is how often a pass begins: 24 times a lifecycle day, at most hourly.
func (m *Master) lifecycleEvery() time.Duration {
	return min(max(m.lifecycleDay()/24, 100*time.Millisecond), time.Hour)
}

// runLifecycle makes a lifecycle pass every lifecycleEvery, while this master is the
// one of those alive that makes them, until ctx ends.
func (m *Master) runLifecycle(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.lifecycleEvery()):
		}
		if owners, err := m.index.Owners(); err != nil || len(owners) == 0 || slices.Min(owners) != m.index.Owner() {
			continue
		}
		if err := m.lifecyclePass(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.log.Warn("a lifecycle pass stopped; the next one goes on", "err", err)
		}
	}
}

// lifecyclePass applies every bucket's rules once, as of now.
func (m *Master) lifecyclePass(ctx context.Context, now time.Time) error {
	rules := map[string][]index.LifecycleRule{}
	err := m.index.Entries(index.BucketSpace, "", func(name string, value []byte, _ int64) (bool, error) {
		var b index.Bucket
		if err := b.UnmarshalBinary(value); err != nil {
			return false, err
		}
		if len(b.Lifecycle) > 0 {
			rules[name] = b.Lifecycle
		}
		return ctx.Err() == nil, nil
	})
	if err != nil {
		return err
	}
	var scanned, expired, aborted int
	for bucket, bucketRules := range rules {
		s, e, err := m.expireBucket(ctx, bucket, bucketRules, now)
		scanned, expired = scanned+s, expired+e
		if err != nil {
			return err
		}
	}
	aborted, err = m.abortUploads(ctx, rules, now)
	m.metrics.lifecycle(scanned, expired, aborted, time.Now())
	if expired+aborted > 0 {
		m.log.Info("lifecycle pass", "keys expired", expired, "uploads aborted", aborted, "keys scanned", scanned, "took", time.Since(now))
	}
	return err
}

// due reports whether rules expire key's record rec of bucket by now.
func (m *Master) due(bucket string, rules []index.LifecycleRule, key string, rec index.Record, now time.Time) bool {
	if rec.State != index.StateLive {
		return false
	}
	at, _, ok := lifecycle.Expiry(rules, strings.TrimPrefix(key, "/"+bucket+"/"), rec, m.lifecycleDay())
	return ok && at <= now.UnixNano()
}

// expireBucket deletes bucket's keys that rules expire by now, in batches, each as
// DELETE does and only if it is still due under its lock; a key a request holds is
// left for the next pass.
func (m *Master) expireBucket(ctx context.Context, bucket string, rules []index.LifecycleRule, now time.Time) (scanned, expired int, err error) {
	root, start := "/"+bucket+"/", ""
	for {
		var due []string
		next := ""
		err := m.index.Scan(root, start, func(key string, rec index.Record) (bool, error) {
			if len(due) == lifecycleBatch {
				next = key
				return false, nil
			}
			scanned++
			if m.due(bucket, rules, key, rec, now) {
				due = append(due, key)
			}
			return ctx.Err() == nil, nil
		})
		if err != nil {
			return scanned, expired, err
		}
		expired += m.expireKeys(ctx, bucket, rules, due, now)
		if next == "" || ctx.Err() != nil {
			return scanned, expired, ctx.Err()
		}
		start = next
	}
}

// expireKeys deletes keys of bucket, lifecycleWorkers at a time, each as DELETE does and
// only if rules still expire it by now under its lock, and returns how many it deleted.
func (m *Master) expireKeys(ctx context.Context, bucket string, rules []index.LifecycleRule, keys []string, now time.Time) int {
	var expired atomic.Int64
	work := make(chan string)
	var workers sync.WaitGroup
	for range min(lifecycleWorkers, len(keys)) {
		workers.Go(func() {
			for key := range work {
				err := m.deleteKeyIf(ctx, key, false, func(rec index.Record) error {
					if !m.due(bucket, rules, key, rec, now) {
						return errNotExpired
					}
					return nil
				})
				switch {
				case err == nil:
					expired.Add(1)
				case errors.Is(err, errNotExpired), errors.Is(err, ErrLocked), errors.Is(err, index.ErrNotFound), errors.Is(err, index.ErrConflict):
				case errors.Is(err, ErrProtected):
					m.log.Info("lifecycle: a protected key is not expired; UNLINK it first", "key", key)
				default:
					m.log.Warn("lifecycle: an expired key was not deleted; the next pass tries again", "key", key, "err", err)
				}
			}
		})
	}
	for _, key := range keys {
		work <- key
	}
	close(work)
	workers.Wait()
	return int(expired.Load())
}

// abortUploads removes the multipart uploads that the rules of their bucket abort by
// now, parts and all.
func (m *Master) abortUploads(ctx context.Context, rules map[string][]index.LifecycleRule, now time.Time) (int, error) {
	var due []string
	err := m.index.Entries(index.UploadSpace, "", func(id string, value []byte, _ int64) (bool, error) {
		var u index.MultipartUpload
		if err := u.UnmarshalBinary(value); err != nil {
			return false, err
		}
		for _, r := range rules[u.Bucket] {
			if at, ok := lifecycle.UploadDue(r, u.Key, u.Created, m.lifecycleDay()); ok && at <= now.UnixNano() && !u.Completing {
				due = append(due, id)
				break
			}
		}
		return ctx.Err() == nil, nil
	})
	aborted := 0
	for _, id := range due {
		if err := removeUpload(ctx, m.index, m.client, id); err != nil {
			m.log.Warn("lifecycle: an upload due to be aborted was not removed; the next pass tries again", "upload", id, "err", err)
			continue
		}
		aborted++
	}
	return aborted, err
}
