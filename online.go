package main

// The master's REBALANCE and VERIFY methods: rebalance and verify run online, key by
// key, under the master's key locks, with the same code as offline (move.go, check.go).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"davkv/internal/index"
)

// rebalance moves key to where the master's volumes place it, under the key's lock, and
// answers with the KeyMove as JSON; with ?dry-run it only says what would move. Old
// replicas stay for the grace period, so redirects already sent still land.
func (m *Master) rebalance(w http.ResponseWriter, r *http.Request, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	if rec.State != index.StateLive && rec.State != index.StateUnlinked {
		return index.ErrNotFound
	}
	if r.URL.Query().Has("dry-run") {
		return writeJSON(w, m.rebalancer.Plan(key, rec))
	}
	mv, err := m.rebalancer.Move(r.Context(), key, rec)
	m.metrics.rebalance(err == nil && mv.Moves())
	if err != nil {
		return err
	}
	if mv.Moves() {
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	return writeJSON(w, mv)
}

// verifier returns a verifier over the master's index for one VERIFY request, set by
// its query: deep, fix, grace.
func (m *Master) verifier(q url.Values) (*verifier, error) {
	opts := CheckOptions{Deep: q.Has("deep"), Fix: q.Has("fix"), Grace: time.Hour}
	if g := get1(q, "grace"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: grace must be a duration", ErrBadRequest)
		}
		opts.Grace = d
	}
	return newVerifier(opts, m.rebalancer, m.log), nil
}

// verifyKey checks key against its replicas under its lock, repairs it with ?fix, and
// answers the findings as JSON. Old replicas a repair moved away from are deleted after
// the grace period, as after REBALANCE.
func (m *Master) verifyKey(w http.ResponseWriter, r *http.Request, key string, q url.Values) error {
	v, err := m.verifier(q)
	if err != nil {
		return err
	}
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	v.checkKey(r.Context(), key, rec)
	m.metrics.verify(len(v.report.findings))
	if after, err := m.index.Get(key); err == nil && (len(after.Leftovers) > 0 || len(after.Stale) > 0) {
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	return writeJSON(w, v.report.findings)
}

// verifyFile checks that a file found on a volume (?file=volume/path, with its
// ?mtime as nginx lists it) belongs to a key, deletes it with ?fix if not and older
// than the grace period, and answers the findings as JSON.
func (m *Master) verifyFile(w http.ResponseWriter, q url.Values) error {
	v, err := m.verifier(q)
	if err != nil {
		return err
	}
	volume, path, ok := strings.Cut(get1(q, "file"), "/")
	if !ok {
		return fmt.Errorf("%w: file must be volume/path", ErrBadRequest)
	}
	v.checkFile(context.Background(), volume, path, DirEntry{Name: path, Type: "file", MTime: get1(q, "mtime")})
	m.metrics.verify(len(v.report.findings))
	return writeJSON(w, v.report.findings)
}
