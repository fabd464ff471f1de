package main

// The master's write side: PUT, DELETE and UNLINK, and how each moves a key's record
// through its states so that a crash at any point leaves a trace to clean up.

import (
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// put stores the body on every chosen volume at once, streaming, and makes the key
// live only when all of them have it. On any failure it removes what was written.
func (m *Master) put(w http.ResponseWriter, r *http.Request, key string) error {
	if r.ContentLength == 0 {
		return ErrEmptyBody
	}
	want, err := parseContentMD5(r.Header.Get("Content-Md5"))
	if err != nil {
		return err
	}
	unlock, ok := m.locks.tryLock(key)
	if !ok {
		return ErrLocked
	}
	defer unlock()

	old, err := m.index.Get(key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case old.State == StateWriting:
		// A write that died before finishing (we hold the lock, so it is not in flight):
		// clear its leftovers before writing anew.
		if err := m.removeReplicas(r.Context(), key, old, false); err != nil {
			return err
		}
	default:
		return ErrExists
	}

	// Read the first chunk before touching any volume: an empty chunked body is refused
	// without a trace, and a value that fits in one chunk is sent as plain requests.
	bufp := m.buffers.Get().(*[]byte)
	defer m.buffers.Put(bufp)
	rc := http.NewResponseController(w)
	first, eof, err := fill(r.Body, *bufp, rc)
	if err != nil {
		return err
	}
	if len(first) == 0 {
		return ErrEmptyBody
	}

	// The key's volumes in rendezvous order, skipping those known to be down: its
	// first choices if they are up, the next ones in its order if not.
	var up, down []string
	for _, v := range m.placement.Rank(key) {
		if m.health.Up(v) {
			up = append(up, v)
		} else {
			down = append(down, v)
		}
	}
	minOK := cmp.Or(m.cfg.MinReplicas, m.cfg.Replicas)
	if len(up) < minOK {
		return fmt.Errorf("%w: %d of %d volumes are up (down: %s), %d replicas needed",
			ErrNoVolumes, len(up), len(m.cfg.Volumes), strings.Join(down, ", "), minOK)
	}
	// A few fallbacks (as many as replicas) are enough to ride out volumes dying
	// during the write; the record, and a crash's cleanup, stay small however many
	// volumes there are.
	n := min(m.cfg.Replicas, len(up))
	vols, spares := up[:n], up[n:min(2*n, len(up))]
	// Until the write commits, the record names every volume it may touch, fallbacks
	// included, for the cleanup of a crash.
	rec := Record{State: StateWriting, Volumes: vols, Leftovers: spares, Sub: m.placement.Subvolume(key), Rev: old.Rev}
	if err := m.index.Put(key, &rec); err != nil {
		return err
	}
	res, err := m.replicate(r.Context(), rc, r.Body, first, eof, r.ContentLength, vols, spares, KeyPath(key, rec.Sub), want)
	if err == nil && len(res.written) < minOK {
		err = fmt.Errorf("%w: %d replicas written, %d needed", ErrNoVolumes, len(res.written), minOK)
	}
	if err != nil {
		// Clean up even when the client is gone: use a context of our own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 4*m.cfg.VolTimeout)
		defer cancel()
		written := rec
		written.Volumes, written.Leftovers = append(res.written, res.mayHold...), nil
		if cerr := m.removeReplicas(ctx, key, written, false); cerr != nil {
			m.log.Error("cleanup after failed put left a trace", "key", key, "err", cerr)
		} else if cerr := m.index.Delete(key, rec.Rev); cerr != nil {
			m.log.Error("cleanup after failed put left a trace", "key", key, "err", cerr)
		}
		return err
	}
	rec.State, rec.Size, rec.MD5 = StateLive, res.size, res.sum
	// up is in the key's rank order: keep the volumes written, in that order.
	rec.Volumes = slices.DeleteFunc(slices.Clone(up), func(v string) bool { return !slices.Contains(res.written, v) })
	rec.Leftovers = res.mayHold
	if err := m.index.Put(key, &rec); err != nil {
		return err
	}
	if len(rec.Leftovers) > 0 {
		// A volume that did not answer may still store the value when it comes
		// back: delete it there once it does.
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	if len(rec.Volumes) < m.cfg.Replicas {
		m.log.Warn("under-replicated: fewer volumes are up than -replicas", "key", key, "volumes", strings.Join(rec.Volumes, ","))
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// parseContentMD5 decodes a Content-MD5 header, base64 as RFC 1864 has it or hex. It
// returns nil for an empty header.
func parseContentMD5(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == md5.Size {
		return b, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == md5.Size {
		return b, nil
	}
	return nil, fmt.Errorf("%w: Content-MD5 is neither base64 nor hex of 16 bytes", ErrBadRequest)
}

// delete removes the value from every replica, then the key from the index. If a
// volume fails, the key stays hidden in StateDeleting and a repeated DELETE finishes.
func (m *Master) delete(w http.ResponseWriter, r *http.Request, key string) error {
	if err := m.deleteKey(r.Context(), key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteKey is DELETE's work on key, which the S3 API shares.
func (m *Master) deleteKey(ctx context.Context, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	switch {
	case rec.State == StateWriting:
		return ErrNotFound
	case rec.State == StateLive && m.cfg.Protect:
		return ErrProtected
	}
	markers := rec.State != StateLive
	if rec.State != StateDeleting {
		rec.State = StateDeleting
		if err := m.index.Put(key, &rec); err != nil {
			return err
		}
	}
	if err := m.removeReplicas(ctx, key, rec, markers); err != nil {
		return err
	}
	return m.index.Delete(key, rec.Rev)
}

// unlink hides a live key but keeps its files, until a DELETE.
func (m *Master) unlink(w http.ResponseWriter, r *http.Request, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	switch rec.State {
	case StateLive:
		// The markers first: if this fails halfway, the key is still live, and its
		// stray markers only make a rebuild treat it as unlinked.
		marker := MarkerPath(key, rec.Sub)
		errs := m.client.PutAll(r.Context(), rec.Volumes, marker, nil)
		for _, err := range errs {
			m.health.Failed(err)
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		rec.State = StateUnlinked
		if err := m.index.Put(key, &rec); err != nil {
			return err
		}
	case StateUnlinked:
	default:
		return ErrNotFound
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeReplicas deletes key's value from every volume rec names, leftovers included,
// and if markers its unlink markers (see removeFiles). Only a key that was unlinked, or
// whose deletion was interrupted, needs the markers removed: a live key has some only
// where an UNLINK failed halfway, and rebuild ignores a marker without a value, so
// sparing the requests is safe. Files already gone are fine; any other failure is
// returned, and the caller keeps the index record as a trace.
func (m *Master) removeReplicas(ctx context.Context, key string, rec Record, markers bool) error {
	vols := append(slices.Clone(rec.Volumes), rec.Leftovers...)
	err := removeFiles(ctx, m.client, key, rec.Sub, vols, markers)
	m.health.Failed(err)
	return err
}
