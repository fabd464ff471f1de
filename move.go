package main

// Moving one key's replicas to where placement wants them, without ever losing the
// last copy: what the rebalance command, the master's REBALANCE and verify -fix share.

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

// KeyMove is what rebalancing one key did, or with a dry run would do.
type KeyMove struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// From are the volumes that lose their replica, To those that gain one.
	From []string `json:"from,omitempty"`
	To   []string `json:"to,omitempty"`
}

// Moves reports whether the key's replicas are not all where placement wants them.
func (mv KeyMove) Moves() bool { return len(mv.To) > 0 || len(mv.From) > 0 }

// ErrNoReadableReplica says that no replica of a key could be copied.
var ErrNoReadableReplica = errors.New("no readable replica")

// Rebalancer moves one key at a time to where Placement wants it. The offline
// rebalance command, the master's REBALANCE method and verify -fix share it; the
// caller holds whatever keeps other writers off the key (the master's key lock).
type Rebalancer struct {
	// Client copies and deletes replicas.
	Client *VolumeClient
	// Placement says where keys belong.
	Placement layout.Placement
	// Index records where a key's replicas are; Move and DeleteLeftovers write to it.
	// Plan needs none.
	Index index.Index
	// Health, if set, says which volumes are down, which FinishDelete does not try,
	// and hears of the failures; nil tries every volume.
	Health *Health
	// Grace is how long old replicas are kept after the index stops naming them, so
	// that redirects already sent still land. Zero deletes them at once, for when no
	// client is reading (offline).
	Grace time.Duration
}

// Plan says what Move would do with key.
func (rb *Rebalancer) Plan(key string, rec index.Record) KeyMove {
	want := rb.Placement.Choose(key)
	mv := KeyMove{Key: key, Size: rec.Size}
	for _, v := range want {
		if !slices.Contains(rec.Volumes, v) {
			mv.To = append(mv.To, v)
		}
	}
	for _, v := range rec.Volumes {
		if !slices.Contains(want, v) {
			mv.From = append(mv.From, v)
		}
	}
	return mv
}

// Move copies key's value (and unlink marker) to every volume that placement wants it
// on and that lacks it, verifying each copy, then records the new placement in the
// index (if the record is still rec: see Index.Put), then deletes the old replicas: at once if Grace is zero, otherwise later, through
// DeleteLeftovers. Whatever is interrupted, the index names only complete replicas,
// and old ones stay recorded as Leftovers until they are gone: the last copy is
// never lost. On failure the record is left as it was.
func (rb *Rebalancer) Move(ctx context.Context, key string, rec index.Record) (KeyMove, error) {
	mv := rb.Plan(key, rec)
	want := rb.Placement.Choose(key)
	var copied []string
	for _, dst := range mv.To {
		if err := rb.copy(ctx, key, rec, dst); err != nil {
			// What this attempt copied is in no record: take it back.
			if cerr := removeFiles(ctx, rb.Client, key, rec.Sub, rec.Gen, copied, true); cerr != nil {
				err = errors.Join(err, cerr)
			}
			return mv, fmt.Errorf("rebalance %s: %w", key, err)
		}
		copied = append(copied, dst)
	}
	// An old replica on a volume placement wants again is the key's replica, not a
	// leftover.
	leftovers := slices.DeleteFunc(append(slices.Clone(rec.Leftovers), mv.From...), func(v string) bool {
		return slices.Contains(want, v)
	})
	slices.Sort(leftovers)
	leftovers = slices.Compact(leftovers)
	written := time.Unix(0, rec.Time) // before Put stamps it anew
	if !slices.Equal(rec.Volumes, want) || !slices.Equal(rec.Leftovers, leftovers) {
		rec.Volumes, rec.Leftovers = want, leftovers
		if len(leftovers) == 0 {
			rec.Leftovers = nil
		}
		if err := rb.Index.Put(key, &rec); err != nil {
			return mv, err
		}
	}
	if rb.Grace == 0 || time.Since(written) > rb.Grace && !mv.Moves() {
		return mv, rb.DeleteLeftovers(ctx, key, rec)
	}
	return mv, nil
}

// copy puts key's value on dst from the first replica that can be read and is whole.
func (rb *Rebalancer) copy(ctx context.Context, key string, rec index.Record, dst string) error {
	path := rec.Path(key)
	var errs []error
	for _, src := range rec.Volumes {
		err := rb.Client.Copy(ctx, src, dst, path, rec.Size, rec.MD5)
		if err == nil && rec.State == index.StateUnlinked {
			err = rb.Client.Put(ctx, dst, rec.MarkerPath(key), http.NoBody, 0)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %w", ErrNoReadableReplica, errors.Join(errs...))
}

// DeleteLeftovers deletes the old replicas rec records (Leftovers), the stale
// generations that have been stale for longer than Grace and then the tombstones no
// longer needed (see RemoveTombstones), then records that they are gone.
func (rb *Rebalancer) DeleteLeftovers(ctx context.Context, key string, rec index.Record) error {
	var due, kept []index.StaleGen
	for _, sg := range rec.Stale {
		if time.Since(time.Unix(0, sg.Time)) >= rb.Grace {
			due = append(due, sg)
		} else {
			kept = append(kept, sg)
		}
	}
	if len(rec.Leftovers) == 0 && len(due) == 0 && len(rec.Tombstones) == 0 {
		return nil
	}
	if err := removeFiles(ctx, rb.Client, key, rec.Sub, rec.Gen, rec.Leftovers, true); err != nil {
		rb.Health.Failed(err)
		return fmt.Errorf("delete old replicas of %s: %w", key, err)
	}
	if err := removeStale(ctx, rb.Client, key, rec.Sub, due); err != nil {
		rb.Health.Failed(err)
		return fmt.Errorf("delete old generations of %s: %w", key, err)
	}
	before := len(rec.Leftovers) + len(rec.Stale) + len(rec.Tombstones)
	rec.Leftovers, rec.Stale = nil, kept
	rec, err := rb.RemoveTombstones(ctx, key, rec)
	if before != len(rec.Stale)+len(rec.Tombstones) {
		err = errors.Join(err, rb.Index.Put(key, &rec))
	}
	return err
}

// removeFiles deletes generation gen of key's value and then, if markers, its unlink
// marker from each of vols. Values go first, so that an interruption never leaves a
// value without its marker for rebuild to bring back to life.
func removeFiles(ctx context.Context, client *VolumeClient, key string, sub int, gen uint64, vols []string, markers bool) error {
	if len(vols) == 0 {
		return nil
	}
	paths := []string{layout.GenPath(key, sub, gen)}
	if markers {
		paths = append(paths, layout.MarkerPath(key, sub, gen))
	}
	return deletePaths(ctx, client, vols, paths...)
}

// deletePaths deletes each of paths, in turn, from every volume of vols; files already
// gone are fine.
func deletePaths(ctx context.Context, client *VolumeClient, vols []string, paths ...string) error {
	if len(vols) == 0 {
		return nil
	}
	for _, path := range paths {
		if err := errors.Join(client.DeleteAll(ctx, vols, path)...); err != nil {
			return err
		}
	}
	return nil
}

// removeStale deletes the files, values and markers, of the stale generations gens.
func removeStale(ctx context.Context, client *VolumeClient, key string, sub int, gens []index.StaleGen) error {
	for _, sg := range gens {
		if err := removeFiles(ctx, client, key, sub, sg.Gen, sg.Volumes, true); err != nil {
			return err
		}
	}
	return nil
}

// removeRecordFiles deletes every file that a write of key that never finished (a
// writing record, rec) may have left: its generation on Volumes and Leftovers (no
// markers: a write makes none) and every stale generation.
func removeRecordFiles(ctx context.Context, client *VolumeClient, key string, rec index.Record) error {
	vols := append(slices.Clone(rec.Volumes), rec.Leftovers...)
	if err := removeFiles(ctx, client, key, rec.Sub, rec.Gen, vols, false); err != nil {
		return err
	}
	return removeStale(ctx, client, key, rec.Sub, rec.Stale)
}
