package main

// The master's write side: PUT, DELETE and UNLINK, and how each moves a key's record
// through its states so that a crash at any point leaves a trace to clean up.

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"davkv/internal/index"
)

// put stores the body of a native PUT (see store): a new key only, never empty, its
// MD5 checked if the client sent one.
func (m *Master) put(w http.ResponseWriter, r *http.Request, key string) error {
	if r.ContentLength == 0 {
		return ErrEmptyBody
	}
	want, err := parseContentMD5(r.Header.Get("Content-Md5"))
	if err != nil {
		return err
	}
	if _, err := m.store(r.Context(), http.NewResponseController(w), key, r.Body, r.ContentLength, putOptions{MD5: want}); err != nil {
		return err
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

// delete removes the value from every replica, then the key from the index (see
// deleteKey).
func (m *Master) delete(w http.ResponseWriter, r *http.Request, key string) error {
	if err := m.deleteKey(r.Context(), key, false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteKey is DELETE's work on key, which the S3 API shares; wait waits for a write of
// the key in flight, as S3 clients expect, instead of ErrLocked. The key is deleted
// once its record says deleting: that one index write is the DELETE, and from then on
// the answer is a success whatever the volumes say. Its files are removed from the
// volumes that answer, and what a volume that is down or does not answer holds is
// left to the sweeper, recorded with tombstones (see FinishDelete). A key that is
// deleting already is gone for clients: ErrNotFound, as for a second DELETE of any
// key, and the sweeper finishes removing its files.
func (m *Master) deleteKey(ctx context.Context, key string, wait bool) error {
	return m.deleteKeyIf(ctx, key, wait, nil)
}

// deleteKeyIf is deleteKey of a key whose record, read under its lock, still passes
// check (nil: any record); a check that fails ends it with the check's error, and
// nothing changed.
func (m *Master) deleteKeyIf(ctx context.Context, key string, wait bool, check func(index.Record) error) error {
	rec, unlock, err := m.lockRecordWait(ctx, key, wait)
	if err != nil {
		return err
	}
	defer unlock()
	if check != nil {
		if err := check(rec); err != nil {
			return err
		}
	}
	switch {
	case rec.State == index.StateDeleting:
		m.sweepSoon(key)
		return index.ErrNotFound
	case rec.State == index.StateWriting:
		return index.ErrNotFound
	case rec.State == index.StateLive && m.cfg.Protect:
		return ErrProtected
	}
	markers := rec.State != index.StateLive
	rec.State = index.StateDeleting
	if err := m.index.Put(key, &rec); err != nil {
		if errors.Is(err, index.ErrIndexDown) {
			m.sweepSoon(key) // the record may say deleting: the sweeper finishes it
		}
		return err
	}
	// Deleted. What is left is the sweeper's work, never the client's: a volume that
	// did not answer, or another master that wrote the key anew meanwhile (its record
	// changed, ErrConflict: the files this delete names are gone or the sweeper's).
	err = m.rebalancer.FinishDelete(ctx, key, rec, markers)
	switch {
	case err == nil:
	case errors.Is(err, index.ErrConflict):
	case errors.Is(err, ErrDeletePending):
		m.sweepSoon(key)
		m.log.Info("deleted; some files wait for their volume", "key", key, "err", err)
	default:
		m.sweepSoon(key)
		m.log.Warn("deleted; its files are not all removed yet, the sweeper retries", "key", key, "err", err)
	}
	return nil
}

// unlink hides a live key but keeps its files, until a DELETE. The unlink markers go
// to the key's volumes that answer; the sweeper writes the others' when they do.
func (m *Master) unlink(w http.ResponseWriter, r *http.Request, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	switch rec.State {
	case index.StateLive:
		// The markers first: if no volume takes one, the key stays live, and a stray
		// marker only makes a rebuild treat it as unlinked.
		pending, err := m.markUnlinked(r.Context(), key, &rec, rec.Volumes)
		if err != nil {
			return err
		}
		if pending {
			m.sweepSoon(key)
		}
	case index.StateUnlinked:
	default:
		return index.ErrNotFound
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeReplicas rolls back a write that never finished (a writing record): it deletes
// the files rec names (see removeRecordFiles). Files already gone are fine; any other
// failure is returned, and the caller keeps the index record as a trace.
func (m *Master) removeReplicas(ctx context.Context, key string, rec index.Record) error {
	err := removeRecordFiles(ctx, m.client, key, rec)
	m.health.Failed(err)
	return err
}
