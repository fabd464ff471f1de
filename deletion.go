package main

// Deleting a key when not every volume answers: its files are removed from the
// volumes that do, tombstones there tell a rebuild that the key is gone, and its
// record keeps what is left for the sweeper to remove when the others answer again.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
)

// ErrDeletePending says that a key is deleted for clients but some of its files are
// on volumes that could not be reached: its record (deleting, hidden from clients)
// lists them for the sweeper, and tombstones on the volumes that were reached keep a
// rebuild from bringing the key back.
var ErrDeletePending = errors.New("deleted; files on volumes that did not answer are removed when they do")

// errVolumeDown is the failure of a volume that Health says is down, which is not
// tried: one that does not answer would hold up every request for its timeout.
var errVolumeDown = errors.New("volume is down")

// recordGens lists every generation of files that rec names, with the volumes that
// may hold each: its own on Volumes and Leftovers, then the stale ones.
func recordGens(rec index.Record) []index.StaleGen {
	gens := make([]index.StaleGen, 0, 1+len(rec.Stale))
	if vols := append(slices.Clone(rec.Volumes), rec.Leftovers...); len(vols) > 0 {
		gens = append(gens, index.StaleGen{Gen: rec.Gen, Volumes: vols})
	}
	return append(gens, rec.Stale...)
}

// FinishDelete removes every file of key that rec, a deleting record, names, and then
// the record: its own generation's value (and, if markers, its unlink markers), every
// stale generation's value and markers, and last the tombstones. Only a key that was
// unlinked, or whose deletion was interrupted, needs its own markers removed: a live
// key has some only where an UNLINK failed halfway, and rebuild ignores a marker
// without a value, so sparing the requests is safe. Volumes that Health says are down
// are not tried. If some files cannot be removed, it records in the index what is
// left, as stale generations, and a tombstone on every volume that answered, then
// writes those tombstones, and returns ErrDeletePending.
func (rb *Rebalancer) FinishDelete(ctx context.Context, key string, rec index.Record, markers bool) error {
	gens := recordGens(rec)
	failed := map[string]error{}
	remove := func(vols []string, path string) {
		vols = slices.DeleteFunc(slices.Clone(vols), func(v string) bool {
			if _, ok := failed[v]; ok {
				return true
			}
			if !rb.Health.Up(v) {
				failed[v] = &VolumeError{Op: http.MethodDelete, Volume: v, Path: path, Err: errVolumeDown}
				return true
			}
			return false
		})
		for i, err := range rb.Client.DeleteAll(ctx, vols, path) {
			if err != nil {
				rb.Health.Failed(err)
				failed[vols[i]] = err
			}
		}
	}
	own := len(rec.Volumes)+len(rec.Leftovers) > 0 // gens[0] is rec's own generation
	for i, g := range gens {
		// Values first, then markers: an interruption never leaves a value without
		// its marker for a rebuild to bring back to life.
		remove(g.Volumes, layout.GenPath(key, rec.Sub, g.Gen))
		if markers || i > 0 || !own {
			remove(g.Volumes, layout.MarkerPath(key, rec.Sub, g.Gen))
		}
	}
	if len(failed) == 0 {
		for _, t := range rec.Tombstones {
			remove(t.Volumes, layout.TombstonePath(key, rec.Sub, t.Gen))
		}
		if len(failed) == 0 {
			return removeRecord(rb.Index, key, rec)
		}
	}

	// What is left: the files on the volumes that failed, and any tombstone.
	left := index.Record{State: index.StateDeleting, Sub: rec.Sub, Gen: rec.Gen, Tombstones: rec.Tombstones, Writes: rec.Writes, Rev: rec.Rev}
	var reached []string
	top := index.NextGen(rec) - 1
	for _, g := range gens {
		var still []string
		for _, v := range g.Volumes {
			if _, ok := failed[v]; ok {
				still = append(still, v)
			} else if !slices.Contains(reached, v) {
				reached = append(reached, v)
			}
		}
		if len(still) > 0 {
			// Due at once: a deleted value gets no grace.
			left.Stale = index.AddStale(left.Stale, g.Gen, still...)
		}
	}
	var errs []error
	tombstone := len(left.Stale) > 0 && len(reached) > 0
	if tombstone {
		// Tombstones where files were removed tell rebuild that every generation up
		// to top is gone. They are recorded before they are written, so that none
		// outlives the record: if another master wrote the key anew meanwhile, the
		// record changed, and none is written.
		left.Tombstones = index.AddStale(slices.Clone(left.Tombstones), top, reached...)
		left.Tombstones[slices.IndexFunc(left.Tombstones, func(t index.StaleGen) bool { return t.Gen == top })].Time = time.Now().UnixNano()
	} else if len(left.Stale) == 0 {
		// Only tombstones are left.
		left.Tombstones = nil
		for _, t := range rec.Tombstones {
			if vols := slices.DeleteFunc(slices.Clone(t.Volumes), func(v string) bool { _, ok := failed[v]; return !ok }); len(vols) > 0 {
				left.Tombstones = append(left.Tombstones, index.StaleGen{Gen: t.Gen, Time: t.Time, Volumes: vols})
			}
		}
	}
	if err := rb.Index.Put(key, &left); err != nil {
		return err
	}
	if tombstone {
		errs = rb.Client.PutAll(ctx, reached, layout.TombstonePath(key, rec.Sub, top), nil)
		for _, err := range errs {
			rb.Health.Failed(err)
		}
	}
	return fmt.Errorf("delete %s: %w: %w", key, ErrDeletePending, errors.Join(append(failures(failed), errs...)...))
}

// failures lists the errors of failed, for a message.
func failures(failed map[string]error) []error {
	errs := make([]error, 0, len(failed))
	for _, err := range failed {
		errs = append(errs, err)
	}
	return errs
}

// RemoveTombstones deletes rec's tombstones once no file they cover is left: once no
// stale generation as old as the newest of them remains, a rebuild has nothing to
// bring back. It returns rec as it should be recorded, without the tombstones it
// removed; the caller writes it.
func (rb *Rebalancer) RemoveTombstones(ctx context.Context, key string, rec index.Record) (index.Record, error) {
	if len(rec.Tombstones) == 0 || rec.State == index.StateDeleting {
		return rec, nil
	}
	var top uint64
	for _, t := range rec.Tombstones {
		top = max(top, t.Gen)
	}
	if slices.ContainsFunc(rec.Stale, func(sg index.StaleGen) bool { return sg.Gen <= top }) {
		return rec, nil
	}
	for _, t := range rec.Tombstones {
		if err := errors.Join(rb.Client.DeleteAll(ctx, t.Volumes, layout.TombstonePath(key, rec.Sub, t.Gen))...); err != nil {
			rb.Health.Failed(err)
			return rec, fmt.Errorf("delete tombstones of %s: %w", key, err)
		}
	}
	rec.Tombstones = nil
	return rec, nil
}
