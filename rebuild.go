package main

// The rebuild command: recreate the index from what the volumes hold.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/mkv"
)

// RebuildConfig is the rebuild command's configuration, filled from flags.
type RebuildConfig struct {
	// ClusterConfig.DB is where the new index is written; it must not hold one
	// already unless Force.
	ClusterConfig
	// BatchConfig.Workers is how many directory listings (and, with MD5, value reads)
	// run at once.
	BatchConfig
	// MD5 reads every value to store its MD5; without it records carry none.
	MD5 bool
	// Force replaces an index already at DB.
	Force bool
	// MKV adopts minikeyvalue's files found on the volumes as import-mkv does, from
	// the files alone: each is renamed in place to davkv's layout and indexed. Its
	// unlinked keys come back live (the files cannot tell), as with minikeyvalue's
	// own rebuild.
	MKV bool
}

// Validate says what is wrong with c, if anything.
func (c RebuildConfig) Validate() error {
	return errors.Join(c.BatchConfig.Validate(), c.ClusterConfig.Validate())
}

// ErrIndexExists says rebuild would overwrite an index.
var ErrIndexExists = errors.New("an index already exists there; use -force to replace it")

// rebuilder walks the volumes and merges what it finds into a new index. Each file
// found is merged into its key's record in LevelDB at once, so memory does not grow with
// the number of keys; stripes serialise the merges of one key.
type rebuilder struct {
	cfg       RebuildConfig
	client    *VolumeClient
	placement layout.Placement
	index     index.Index
	log       *slog.Logger
	walker    *volumeWalker
	// mover renames minikeyvalue's files (MKV): a rename across disks copies the
	// file before the volume answers, so it waits longer than client.
	mover   *VolumeClient
	seed    maphash.Seed
	stripes [256]sync.Mutex

	keys, strays, parts atomic.Int64
	// mkvMoved and mkvInPlace count minikeyvalue's files renamed (with MKV), and
	// those already where davkv keeps them.
	mkvMoved, mkvInPlace atomic.Int64
}

// runRebuild recreates the index at cfg.DB from what the volumes hold.
func runRebuild(ctx context.Context, cfg RebuildConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	exists, err := clearIndex(cfg.DB, cfg.Force)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if exists {
		return fmt.Errorf("rebuild %s: %w", cfg.DB, ErrIndexExists)
	}
	idx, err := openIndex(cfg.DB, false)
	if err != nil {
		return err
	}
	defer idx.Close()
	client := cfg.VolumeClient(cfg.VolTimeout)
	rb := &rebuilder{
		cfg:       cfg,
		client:    client,
		placement: cfg.Placement(),
		index:     idx,
		log:       log,
		seed:      maphash.MakeSeed(),
	}
	if cfg.MKV {
		rb.mover = cfg.VolumeClient(max(cfg.VolTimeout, moveTimeout))
		defer rb.mover.CloseIdle()
		if err := checkMove(ctx, rb.mover, cfg.Volumes); err != nil {
			return fmt.Errorf("rebuild -mkv: %w", err)
		}
	}
	rb.walker = newVolumeWalker(rb.client, cfg.Workers, func(volume, path string, e DirEntry) error {
		return rb.merge(ctx, volume, path, e)
	})
	start := time.Now()
	stopProgress := startProgress(ctx, cfg.ProgressEvery(), func() { rb.progress(start) })
	err = rb.walker.Walk(ctx, cfg.Volumes)
	stopProgress()
	if err != nil {
		return fmt.Errorf("rebuild: the volumes could not all be read, the index at %s is incomplete: %w", cfg.DB, err)
	}
	sum, err := rb.finish(ctx)
	if err != nil {
		return err
	}
	sum.took, sum.files, sum.strays, sum.parts = time.Since(start), rb.walker.files.Load(), rb.strays.Load(), rb.parts.Load()
	sum.mkvMoved, sum.mkvInPlace = rb.mkvMoved.Load(), rb.mkvInPlace.Load()
	sum.write(stdout)
	return nil
}

// merge adds one file found on volume to its key's record.
func (rb *rebuilder) merge(ctx context.Context, volume, path string, e DirEntry) error {
	if _, _, _, ok := layout.ParsePartPath(path); ok {
		// A part of a multipart upload: uploads live only in the index, so a rebuilt
		// index has none, and verify -fix deletes their parts as orphans.
		rb.parts.Add(1)
		return nil
	}
	if rb.cfg.MKV {
		// First: the names of many of minikeyvalue's files are davkv's too.
		if key, _, err := mkv.ParsePath(path); err == nil && checkKey(key) == nil {
			return rb.adoptMKV(ctx, volume, path, key, e)
		}
	}
	f, err := layout.ParseVolumePath(path)
	if err != nil {
		rb.strays.Add(1)
		rb.log.Warn("not a davkv file, skipped", "volume", volume, "path", path)
		return nil
	}
	return rb.mergeFile(volume, f, e)
}

// adoptMKV renames minikeyvalue's file of key, at path on volume, to where davkv
// keeps it, in the subvolume import-mkv would choose, and merges it.
func (rb *rebuilder) adoptMKV(ctx context.Context, volume, path, key string, e DirEntry) error {
	cfg := rb.cfg.ClusterConfig
	sub := importSub(mkv.Choose(key, cfg.Volumes, cfg.Replicas, cfg.Subvolumes), cfg.Subvolumes, rb.placement.Subvolume(key))
	dst := layout.KeyPath(key, sub)
	if dst == path {
		rb.mkvInPlace.Add(1)
	} else {
		if err := rb.mover.Move(ctx, volume, path, dst); err != nil {
			return fmt.Errorf("adopt minikeyvalue's %s on %s: %w", path, volume, err)
		}
		rb.mkvMoved.Add(1)
	}
	return rb.mergeFile(volume, layout.VolumeFile{Key: key, Sub: sub}, e)
}

// mergeFile adds f, found on volume, to its key's record.
func (rb *rebuilder) mergeFile(volume string, f layout.VolumeFile, e DirEntry) error {
	mu := &rb.stripes[maphash.String(rb.seed, f.Key)%uint64(len(rb.stripes))]
	mu.Lock()
	defer mu.Unlock()
	rec, err := rb.index.Get(f.Key)
	if errors.Is(err, index.ErrNotFound) {
		rb.keys.Add(1)
	} else if err != nil {
		return err
	}
	rec.Sub = f.Sub
	if rec.State == 0 {
		rec.State = index.StateLive
	}
	// Every generation found is kept: the newest as the record's, the others as stale,
	// and every marker as a stale entry of its own until finish decides which
	// generation the key is (see chooseGen).
	switch {
	case f.Tombstone:
		rec.Tombstones = index.AddStale(rec.Tombstones, f.Gen, volume)
	case f.Marker:
		rec.Stale = index.AddStale(rec.Stale, f.Gen|markerGen, volume)
	case len(rec.Volumes) == 0 || f.Gen > rec.Gen:
		if len(rec.Volumes) > 0 {
			rec.Stale = index.AddStale(rec.Stale, rec.Gen, rec.Volumes...)
		}
		rec.Gen, rec.Size, rec.Volumes, rec.Modified = f.Gen, e.Size, []string{volume}, e.Modified().UnixNano()
	case f.Gen == rec.Gen && slices.Contains(rec.Volumes, volume):
		// Found twice: a file MKV renamed into a directory the walk had still to list.
		return nil
	case f.Gen == rec.Gen:
		rec.Volumes = append(rec.Volumes, volume)
		rank := rb.placement.Rank(f.Key)
		slices.SortFunc(rec.Volumes, func(a, b string) int { return slices.Index(rank, a) - slices.Index(rank, b) })
	default:
		rec.Stale = index.AddStale(rec.Stale, f.Gen, volume)
	}
	return rb.index.Put(f.Key, &rec)
}

// markerGen is set in the Gen of the stale entries that merge makes of unlink markers
// while rebuild walks; chooseGen takes them out. No generation comes near it.
const markerGen = 1 << 63

// chooseGen decides which generation of a rebuilt key is its value: the newest that
// is complete, on as many volumes as -replicas or, with volumes missing, as the
// best-kept one. Newest is the last write: generations grow with the masters' clocks
// (see index.NewGen), and a write rolled back, whose master may have finished its files
// late, is older than every write after the rollback. A newer generation on fewer
// volumes is an overwrite that never finished, which a crash left, or one answered
// with fewer replicas (-minreplicas): the files cannot tell, so the older, complete
// one is kept and finish reports the key. The others stay recorded as stale, for verify -fix and
// the master to delete; markers make the key unlinked if they are its generation's,
// else go with their generation's files. A tombstone (see TombstonePath) rules out every generation up to its own:
// with none newer the key was deleted while a volume was away, and it becomes a
// deleting record that names all its files, for the master to remove. chooseGen
// returns false if no value was found, only markers. size gives the size of a
// generation that the walk did not keep.
func chooseGen(rec *index.Record, replicas int, size func(gen uint64, volume string) (int64, error)) (bool, error) {
	var top uint64
	for _, t := range rec.Tombstones {
		top = max(top, t.Gen)
	}
	alive := func(gen uint64) bool { return len(rec.Tombstones) == 0 || gen&^markerGen > top }
	best := 0
	if alive(rec.Gen) {
		best = len(rec.Volumes)
	}
	for _, sg := range rec.Stale {
		if sg.Gen&markerGen == 0 && alive(sg.Gen) {
			best = max(best, len(sg.Volumes))
		}
	}
	if best == 0 && len(rec.Tombstones) > 0 {
		// Deleted: every file found is to go.
		stale := index.AddStale(nil, rec.Gen, rec.Volumes...)
		for _, sg := range rec.Stale {
			stale = index.AddStale(stale, sg.Gen&^markerGen, sg.Volumes...)
		}
		stale = slices.DeleteFunc(stale, func(sg index.StaleGen) bool { return len(sg.Volumes) == 0 })
		slices.SortFunc(stale, func(a, b index.StaleGen) int { return cmp.Compare(a.Gen, b.Gen) })
		rec.State, rec.Volumes, rec.Stale, rec.Size = index.StateDeleting, nil, stale, 0
		return true, nil
	}
	if best == 0 {
		return false, nil
	}
	enough := min(replicas, best)
	if len(rec.Volumes) < enough {
		// The newest generation is incomplete: take the newest complete one.
		i := -1
		for j, sg := range rec.Stale {
			if sg.Gen&markerGen == 0 && alive(sg.Gen) && len(sg.Volumes) >= enough && (i < 0 || sg.Gen > rec.Stale[i].Gen) {
				i = j
			}
		}
		chosen := rec.Stale[i]
		n, err := size(chosen.Gen, chosen.Volumes[0])
		if err != nil {
			return false, err
		}
		rec.Stale[i] = index.StaleGen{Gen: rec.Gen, Volumes: rec.Volumes}
		rec.Gen, rec.Volumes, rec.Size = chosen.Gen, chosen.Volumes, n
	}
	var stale []index.StaleGen
	for _, sg := range rec.Stale {
		switch gen := sg.Gen &^ markerGen; {
		case gen == rec.Gen && sg.Gen&markerGen != 0:
			rec.State = index.StateUnlinked
		case gen != rec.Gen:
			stale = index.AddStale(stale, gen, sg.Volumes...)
		}
	}
	slices.SortFunc(stale, func(a, b index.StaleGen) int { return cmp.Compare(a.Gen, b.Gen) })
	rec.Stale = stale
	return true, nil
}

// rebuildSummary is what rebuild tells at the end.
type rebuildSummary struct {
	keys, unlinked, incomplete, orphanMarkers, stale, deleted int64
	examples                                                  []string
	// newer counts the keys kept at an older generation than one found on fewer
	// volumes, which the files alone cannot tell apart (see chooseGen).
	newer                int64
	newerExamples        []string
	files, strays, parts int64
	mkvMoved, mkvInPlace int64
	took                 time.Duration
}

func (s rebuildSummary) write(w io.Writer) {
	fmt.Fprintf(w, "rebuild: %d keys (%d unlinked) from %d files in %v", s.keys, s.unlinked, s.files, s.took.Round(time.Millisecond))
	if s.took > 0 {
		fmt.Fprintf(w, ", %.0f keys/s", float64(s.keys)/s.took.Seconds())
	}
	fmt.Fprintln(w)
	if s.mkvMoved+s.mkvInPlace > 0 {
		fmt.Fprintf(w, "rebuild: %d of minikeyvalue's files renamed in place to davkv's layout; %d found there already (names both write alike, or renamed into a directory still to list)\n", s.mkvMoved, s.mkvInPlace)
	}
	if s.incomplete > 0 {
		fmt.Fprintf(w, "rebuild: %d keys have fewer replicas than -replicas (leftovers of failed or interrupted writes, kept): %s\n",
			s.incomplete, strings.Join(s.examples, ", "))
	}
	if s.newer > 0 {
		fmt.Fprintf(w, "rebuild: %d keys kept at a generation older than one found on fewer volumes (an overwrite that never finished, or one answered with fewer replicas under -minreplicas: the files cannot tell); the newer is recorded as stale, so look before verify -fix deletes it: %s\n",
			s.newer, strings.Join(s.newerExamples, ", "))
	}
	if s.stale > 0 {
		fmt.Fprintf(w, "rebuild: %d keys also have files of older or unfinished writes, recorded for verify -fix to delete\n", s.stale)
	}
	if s.deleted > 0 {
		fmt.Fprintf(w, "rebuild: %d keys deleted while a volume was away (tombstones found), recorded as deleting for the master to remove their files\n", s.deleted)
	}
	if s.orphanMarkers > 0 {
		fmt.Fprintf(w, "rebuild: %d unlink markers without a value (an interrupted DELETE), ignored\n", s.orphanMarkers)
	}
	if s.parts > 0 {
		fmt.Fprintf(w, "rebuild: %d parts of multipart uploads in progress, not indexed (their uploads are lost; verify -fix deletes them)\n", s.parts)
	}
	if s.strays > 0 {
		fmt.Fprintf(w, "rebuild: %d files that davkv did not write, ignored\n", s.strays)
	}
}

// finish goes over the new index once: it drops markers that have no value, counts what
// was found, and with MD5 reads every value to record its MD5.
func (rb *rebuilder) finish(ctx context.Context) (rebuildSummary, error) {
	var s rebuildSummary
	var mu sync.Mutex
	var errs []error
	var work sync.WaitGroup
	sem := make(chan struct{}, rb.cfg.Workers)
	err := rb.index.Scan("", "", func(key string, rec index.Record) (bool, error) {
		before, _ := rec.MarshalBinary()
		found, err := chooseGen(&rec, rb.cfg.Replicas, func(gen uint64, volume string) (int64, error) {
			return rb.client.Stat(ctx, volume, layout.GenPath(key, rec.Sub, gen))
		})
		switch {
		case err != nil:
			return false, fmt.Errorf("size of %s: %w", key, err)
		case !found:
			s.orphanMarkers++
			return true, rb.index.Delete(key, rec.Rev)
		}
		if after, _ := rec.MarshalBinary(); !bytes.Equal(before, after) {
			if err := rb.index.Put(key, &rec); err != nil {
				return false, err
			}
		}
		if rec.State == index.StateDeleting {
			s.deleted++
			return true, nil
		}
		if len(rec.Stale) > 0 {
			s.stale++
		}
		if i := slices.IndexFunc(rec.Stale, func(sg index.StaleGen) bool { return sg.Gen > rec.Gen }); i >= 0 {
			s.newer++
			if len(s.newerExamples) < 10 {
				s.newerExamples = append(s.newerExamples, fmt.Sprintf("%s (kept .g%x on %d volumes; .g%x on %d)",
					key, rec.Gen, len(rec.Volumes), rec.Stale[i].Gen, len(rec.Stale[i].Volumes)))
			}
		}
		s.keys++
		if rec.State == index.StateUnlinked {
			s.unlinked++
		}
		if len(rec.Volumes) < rb.cfg.Replicas {
			s.incomplete++
			if len(s.examples) < 10 {
				s.examples = append(s.examples, fmt.Sprintf("%s (%d)", key, len(rec.Volumes)))
			}
		}
		if !rb.cfg.MD5 {
			return true, nil
		}
		sem <- struct{}{}
		work.Go(func() {
			defer func() { <-sem }()
			if err := rb.addMD5(ctx, key, rec); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
		return true, nil
	})
	work.Wait()
	if err = errors.Join(append([]error{err}, errs...)...); err != nil {
		return s, fmt.Errorf("rebuild: %w", err)
	}
	return s, nil
}

// addMD5 reads key's value from its first readable replica and records its MD5.
func (rb *rebuilder) addMD5(ctx context.Context, key string, rec index.Record) error {
	sum, err := valueMD5(ctx, rb.client, key, rec)
	if err != nil {
		return err
	}
	rec.MD5 = sum
	return rb.index.Put(key, &rec)
}

// valueMD5 reads key's value (as rec records it) from the first of its volumes that
// answers, and returns its hex MD5.
func valueMD5(ctx context.Context, client *VolumeClient, key string, rec index.Record) (string, error) {
	var errs []error
	for _, v := range rec.Volumes {
		body, _, err := client.Get(ctx, v, rec.Path(key))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		h := md5.New()
		_, err = io.Copy(h, body)
		body.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s from %s: %w", key, v, err))
			continue
		}
		return md5Hex(h.Sum(nil)), nil
	}
	return "", fmt.Errorf("md5 of %s: %w", key, errors.Join(errs...))
}

// progress writes a line to the log, for a run that began at start.
func (rb *rebuilder) progress(start time.Time) {
	w, elapsed := rb.walker, time.Since(start)
	rb.log.Info("rebuild progress", "dirs", fmt.Sprintf("%d/%d", w.dirsDone.Load(), w.dirsFound.Load()),
		"keys", rb.keys.Load(), "keys/s", fmt.Sprintf("%.0f", float64(rb.keys.Load())/elapsed.Seconds()), "eta", w.eta(elapsed))
}
