package main

// The import-mkv command: adopt a minikeyvalue cluster in place. Each key's files are
// renamed on their own volumes from minikeyvalue's layout to davkv's (WebDAV MOVE: no
// byte crosses the network), then its record is written to davkv's index. The
// minikeyvalue index is only read, so a run that stops anywhere can run again: a file
// already moved is found where davkv keeps it, a key already recorded is skipped.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"davkv/internal/concurrent"
	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/mkv"
)

// ImportConfig is the import-mkv command's configuration, filled from flags.
type ImportConfig struct {
	// ClusterConfig is the cluster as minikeyvalue ran it (its -volumes, -replicas,
	// -subvolumes) and as davkv will; its DB is minikeyvalue's index, only read.
	ClusterConfig
	// BatchConfig.Workers is how many keys are moved at once.
	BatchConfig
	// To is davkv's index, written; one a run before left is carried on.
	To string
	// MD5 reads the value of every key whose record has no MD5, to record it.
	MD5 bool
	// DryRun only looks: it reads the index and the volumes, and moves and writes
	// nothing.
	DryRun bool
}

// Validate says what is wrong with c, if anything.
func (c ImportConfig) Validate() error {
	var errs []error
	if c.To == "" {
		errs = append(errs, errors.New("missing -to: davkv's index, to write"))
	}
	return errors.Join(append(errs, c.BatchConfig.Validate(), c.ClusterConfig.Validate())...)
}

// importSummary is what import-mkv counts and tells at the end.
type importSummary struct {
	keys, unlinked, done, moved, inPlace, md5s atomic.Int64
	// fewer are keys on fewer volumes than their record names; lost are keys on none.
	fewer, lost, refused, bad atomic.Int64
	mu                        sync.Mutex
	examples                  map[string][]string
}

// counted counts a key adopted (recorded, unless in a dry run).
func (s *importSummary) counted(unlinked bool) {
	if unlinked {
		s.unlinked.Add(1)
	}
	s.keys.Add(1)
}

func (s *importSummary) example(kind, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.examples[kind]) < 5 {
		s.examples[kind] = append(s.examples[kind], fmt.Sprintf("%.60q", key))
	}
}

func (s *importSummary) write(w io.Writer, dry bool, took time.Duration) {
	verb := "adopted"
	if dry {
		verb = "would adopt (dry run: nothing moved or written)"
	}
	n := s.keys.Load()
	fmt.Fprintf(w, "import-mkv: %s %d keys (%d unlinked), %d files moved, %d keys imported before, in %v", verb, n, s.unlinked.Load(), s.moved.Load(), s.done.Load(), took.Round(time.Millisecond))
	if took > 0 {
		fmt.Fprintf(w, ", %.0f keys/s", float64(n+s.done.Load())/took.Seconds())
	}
	fmt.Fprintln(w)
	if k := s.inPlace.Load(); k > 0 {
		fmt.Fprintf(w, "import-mkv: %d files were where davkv keeps them already (names that minikeyvalue and davkv write alike), not moved\n", k)
	}
	lines := []struct {
		n    int64
		kind string
		say  string
	}{
		{s.md5s.Load(), "", "MD5s computed (-md5)"},
		{s.fewer.Load(), "fewer", "keys found on fewer volumes than their record names, adopted with those (verify reports them under-replicated; rebalance or verify -fix restores the copies)"},
		{s.lost.Load(), "lost", "keys whose files are on no volume, skipped"},
		{s.refused.Load(), "refused", "keys davkv does not take (see checkKey), left as they are"},
		{s.bad.Load(), "bad", "records that are not minikeyvalue's, skipped"},
	}
	for _, l := range lines {
		if l.n > 0 {
			fmt.Fprintf(w, "import-mkv: %d %s", l.n, l.say)
			if ex := s.examples[l.kind]; len(ex) > 0 {
				fmt.Fprintf(w, ": %s", strings.Join(ex, ", "))
			}
			fmt.Fprintln(w)
		}
	}
}

// importer adopts one key at a time.
type importer struct {
	cfg       ImportConfig
	client    *VolumeClient
	placement layout.Placement
	index     index.Index
	sum       *importSummary
}

// runImportMKV adopts the minikeyvalue cluster that cfg names.
func runImportMKV(ctx context.Context, cfg ImportConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	src, err := mkv.OpenIndex(cfg.DB)
	if err != nil {
		return fmt.Errorf("import-mkv: %w", err)
	}
	defer src.Close()
	client := cfg.VolumeClient(cfg.VolTimeout)
	defer client.CloseIdle()
	if err := checkMove(ctx, client, cfg.Volumes); err != nil {
		return fmt.Errorf("import-mkv: %w", err)
	}
	im := &importer{cfg: cfg, client: client, placement: cfg.Placement(), sum: &importSummary{examples: map[string][]string{}}}
	if !cfg.DryRun {
		// Unsynced, as rebuild: a record that a power loss takes is written again by
		// the next run, which finds its files moved.
		if im.index, err = openIndex(cfg.To, false); err != nil {
			return fmt.Errorf("import-mkv: %w", err)
		}
		defer im.index.Close()
	}
	start := time.Now()
	stopProgress := startProgress(ctx, cfg.ProgressEvery(), func() {
		n := im.sum.keys.Load() + im.sum.done.Load()
		log.Info("import-mkv progress", "keys", n, "moved", im.sum.moved.Load(), "keys/s", fmt.Sprintf("%.0f", float64(n)/time.Since(start).Seconds()))
	})
	// The first failure stops the run, which a run again carries on.
	work, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	type job struct {
		key string
		rec mkv.Record
	}
	jobs := make(chan job, cfg.Workers)
	produce := func() error {
		defer close(jobs)
		return src.Each("", func(key string, rec mkv.Record, err error) (bool, error) {
			if err != nil {
				im.sum.bad.Add(1)
				im.sum.example("bad", key)
				log.Warn("not a minikeyvalue record, skipped", "key", key, "err", err)
				return true, nil
			}
			select {
			case jobs <- job{key, rec}:
				return true, nil
			case <-work.Done():
				return false, nil
			}
		})
	}
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				if err := im.adopt(work, j.key, j.rec); err != nil {
					stop(err)
				}
			}
		})
	}
	perr := produce()
	workers.Wait()
	stopProgress()
	im.sum.write(stdout, cfg.DryRun, time.Since(start))
	if err := context.Cause(work); err != nil {
		return fmt.Errorf("import-mkv: stopped; run it again to carry on: %w", err)
	}
	if perr != nil {
		return fmt.Errorf("import-mkv: stopped; run it again to carry on: %w", perr)
	}
	return nil
}

// moveTimeout is the least time a MOVE is given: across disks (subvolumes mounted
// apart) nginx copies the file, a GB in some seconds, before it answers.
const moveTimeout = time.Minute

// checkMove checks that every volume takes WebDAV MOVE (davkv's volume.sh; the
// volume script of minikeyvalue does not): a MOVE of a file that is not there is 404
// on a volume that takes it.
func checkMove(ctx context.Context, client *VolumeClient, volumes []string) error {
	return concurrent.Parallel(volumes, func(v string) error {
		err := client.Move(ctx, v, ".davkv-import-check", ".davkv-import-check")
		var ve *VolumeError
		switch {
		case isNotFound(err):
			return nil
		case errors.As(err, &ve) && ve.Status == http.StatusMethodNotAllowed:
			return fmt.Errorf("volume %s refuses WebDAV MOVE: serve its directory with davkv's volume.sh, not minikeyvalue's volume script", v)
		case err == nil:
			return fmt.Errorf("volume %s: a MOVE of a file that is not there succeeded", v)
		}
		return err
	})
}

// replicaFile is where one of a key's files is: on volume, under minikeyvalue's
// subdirectory subdir.
type replicaFile struct {
	volume, subdir string
	size           int64
	modified       time.Time
	moved          bool // found where davkv keeps it already
}

// adopt moves key's files to davkv's layout and records it.
func (im *importer) adopt(ctx context.Context, key string, rec mkv.Record) error {
	if err := checkKey(key); err != nil {
		im.sum.refused.Add(1)
		im.sum.example("refused", key)
		return nil
	}
	if im.index != nil {
		switch _, err := im.index.Get(key); {
		case err == nil:
			im.sum.done.Add(1)
			return nil
		case !errors.Is(err, index.ErrNotFound):
			return err
		}
	}
	// Where the files are: at minikeyvalue's path, or at davkv's if a run before
	// moved them. The subvolume is the one most of them are in already.
	sub := importSub(rec.Volumes, im.cfg.Subvolumes, im.placement.Subvolume(key))
	dst := layout.KeyPath(key, sub)
	var found []replicaFile
	for _, v := range rec.Volumes {
		addr, subdir, err := mkv.SplitVolume(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if !slices.Contains(im.cfg.Volumes, addr) {
			return fmt.Errorf("%s: its record names volume %s, which is not one of -volumes: give every volume minikeyvalue had", key, addr)
		}
		if slices.ContainsFunc(found, func(f replicaFile) bool { return f.volume == addr }) {
			continue
		}
		f := replicaFile{volume: addr, subdir: subdir}
		f.size, f.modified, err = im.client.StatFile(ctx, addr, mkv.VolumePath(key, subdir))
		if isNotFound(err) {
			f.moved = true
			f.size, f.modified, err = im.client.StatFile(ctx, addr, dst)
		}
		switch {
		case isNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("%s: %w", key, err)
		}
		found = append(found, f)
	}
	// Replicas of another size are of a write that never finished (minikeyvalue
	// overwrites in place); they stay where they are, for verify to report.
	found = slices.DeleteFunc(found, func(f replicaFile) bool { return f.size != found[0].size })
	if len(found) == 0 {
		im.sum.lost.Add(1)
		im.sum.example("lost", key)
		return nil
	}
	if len(found) < len(rec.Volumes) {
		im.sum.fewer.Add(1)
		im.sum.example("fewer", key)
	}
	if im.cfg.DryRun {
		im.sum.counted(rec.Deleted)
		return nil
	}
	vols := make([]string, len(found))
	for i, f := range found {
		switch src := mkv.VolumePath(key, f.subdir); {
		case src == dst:
			im.sum.inPlace.Add(1)
		case !f.moved:
			if err := im.client.Move(ctx, f.volume, src, dst); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			im.sum.moved.Add(1)
		}
		vols[i] = f.volume
	}
	out := index.Record{State: index.StateLive, Volumes: im.placement.InRankOrder(key, vols), Sub: sub, Size: found[0].size,
		MD5: rec.MD5, Time: time.Now().UnixNano()}
	if !found[0].modified.IsZero() {
		out.Modified = found[0].modified.UnixNano()
	}
	if rec.Deleted {
		out.State = index.StateUnlinked
		if err := errors.Join(im.client.PutAll(ctx, out.Volumes, out.MarkerPath(key), nil)...); err != nil {
			return fmt.Errorf("%s: unlink markers: %w", key, err)
		}
	}
	if out.MD5 == "" && im.cfg.MD5 {
		sum, err := valueMD5(ctx, im.client, key, out)
		if err != nil {
			return err
		}
		out.MD5 = sum
		im.sum.md5s.Add(1)
	}
	if err := im.index.Put(key, &out); err != nil {
		return err
	}
	im.sum.counted(rec.Deleted)
	return nil
}

// importSub is the subvolume an adopted key goes to, the same on every volume as
// davkv has it: the one most of its replicas are in already (the first of them on a
// tie), so that most renames stay within one directory (and one disk, where
// subvolumes are disks of their own). With none that -subvolumes has room for, it is
// placed's, placement's choice.
func importSub(volumes []string, subvolumes, placed int) int {
	count := map[int]int{}
	best, bestN := placed, 0
	for _, v := range volumes {
		_, subdir, err := mkv.SplitVolume(v)
		if err != nil || subdir == "" {
			continue
		}
		n, err := mkv.ParseSubdir(subdir)
		if err != nil || n >= subvolumes {
			continue
		}
		count[n]++
		if count[n] > bestN {
			best, bestN = n, count[n]
		}
	}
	return best
}
