package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
// rebalance command and the master's REBALANCE method share it.
type Rebalancer struct {
	Client    *VolumeClient
	Placement Placement
	// Grace is how long old replicas are kept after the index stops naming them, so
	// that redirects already sent still land. Zero deletes them at once, for when no
	// client is reading (offline).
	Grace time.Duration
}

// Plan says what Move would do with key.
func (rb *Rebalancer) Plan(key string, rec Record) KeyMove {
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
// on and that lacks it, verifying each copy, then stores the new placement with save,
// then deletes the old replicas: at once if Grace is zero, otherwise later, through
// DeleteLeftovers. Whatever is interrupted, the index names only complete replicas,
// and old ones stay recorded as Leftovers until they are gone: the last copy is
// never lost. On failure the record is left as it was.
func (rb *Rebalancer) Move(ctx context.Context, key string, rec Record, save func(Record) error) (KeyMove, error) {
	mv := rb.Plan(key, rec)
	want := rb.Placement.Choose(key)
	var copied []string
	for _, dst := range mv.To {
		if err := rb.copy(ctx, key, rec, dst); err != nil {
			// What this attempt copied is in no record: take it back.
			if cerr := removeFiles(ctx, rb.Client, key, rec.Sub, copied, true); cerr != nil {
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
	if !slices.Equal(rec.Volumes, want) || !slices.Equal(rec.Leftovers, leftovers) {
		rec.Volumes, rec.Leftovers = want, leftovers
		if len(leftovers) == 0 {
			rec.Leftovers = nil
		}
		if err := save(rec); err != nil {
			return mv, err
		}
	}
	if rb.Grace == 0 || time.Since(time.Unix(0, rec.Time)) > rb.Grace && !mv.Moves() {
		return mv, rb.DeleteLeftovers(ctx, key, rec, save)
	}
	return mv, nil
}

// copy puts key's value on dst from the first replica that can be read and is whole.
func (rb *Rebalancer) copy(ctx context.Context, key string, rec Record, dst string) error {
	path := KeyPath(key, rec.Sub)
	var errs []error
	for _, src := range rec.Volumes {
		err := rb.Client.Copy(ctx, src, dst, path, rec.Size, rec.MD5)
		if err == nil && rec.State == StateUnlinked {
			err = rb.Client.Put(ctx, dst, MarkerPath(key, rec.Sub), http.NoBody, 0)
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

// DeleteLeftovers deletes the old replicas rec records and then records that they are
// gone.
func (rb *Rebalancer) DeleteLeftovers(ctx context.Context, key string, rec Record, save func(Record) error) error {
	if len(rec.Leftovers) == 0 {
		return nil
	}
	if err := removeFiles(ctx, rb.Client, key, rec.Sub, rec.Leftovers, true); err != nil {
		return fmt.Errorf("delete old replicas of %s: %w", key, err)
	}
	rec.Leftovers = nil
	return save(rec)
}

// removeFiles deletes key's value and then, if markers, its unlink marker from each of
// vols. Values go first, so that an interruption never leaves a value without its
// marker for rebuild to bring back to life.
func removeFiles(ctx context.Context, client *VolumeClient, key string, sub int, vols []string, markers bool) error {
	paths := []string{KeyPath(key, sub)}
	if markers {
		paths = append(paths, MarkerPath(key, sub))
	}
	for _, path := range paths {
		if err := errors.Join(client.DeleteAll(ctx, vols, path)...); err != nil {
			return err
		}
	}
	return nil
}

// RebalanceConfig is the rebalance command's configuration, filled from flags.
type RebalanceConfig struct {
	// Master, if set, is a running master (host:port or URL) that does the work key by
	// key under its locks, while clients keep using it. Otherwise the work is done
	// offline on DB, which no master may have open.
	Master string
	// ClusterConfig has the new list of volumes and the index (offline).
	ClusterConfig
	// BatchConfig.Workers is how many keys are moved at once.
	BatchConfig
	// DryRun only counts what would move.
	DryRun bool
}

// Validate says what is wrong with c, if anything.
func (c RebalanceConfig) Validate() error {
	if err := c.BatchConfig.Validate(); err != nil || c.Master != "" {
		return err
	}
	return c.ClusterConfig.Validate()
}

// BatchConfig is what the commands that work through a whole cluster share.
type BatchConfig struct {
	// Workers is how many keys (or directory listings) are handled at once.
	Workers int
	// VolTimeout bounds connecting to a volume and waiting for its answer.
	VolTimeout time.Duration
	// Progress is how often progress goes to stderr; zero means every 2 seconds.
	Progress time.Duration
}

// Validate says what is wrong with c, if anything.
func (c BatchConfig) Validate() error {
	if c.Workers < 1 {
		return fmt.Errorf("-workers must be at least 1, got %d", c.Workers)
	}
	return nil
}

// ProgressEvery is how often progress goes to stderr.
func (c BatchConfig) ProgressEvery() time.Duration { return cmp.Or(c.Progress, 2*time.Second) }

// rebalanceStats counts a rebalance run as it goes.
type rebalanceStats struct {
	total                  int64
	checked, moved, failed atomic.Int64
	bytes                  atomic.Int64
	mu                     sync.Mutex
	out, in                map[string]*volumeFlow
}

// volumeFlow is what leaves or reaches one volume.
type volumeFlow struct{ keys, bytes int64 }

func (s *rebalanceStats) add(mv KeyMove) {
	s.checked.Add(1)
	if !mv.Moves() {
		return
	}
	s.moved.Add(1)
	s.bytes.Add(mv.Size * int64(len(mv.To)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		s.out, s.in = map[string]*volumeFlow{}, map[string]*volumeFlow{}
	}
	for _, list := range []struct {
		vols []string
		m    map[string]*volumeFlow
	}{{mv.From, s.out}, {mv.To, s.in}} {
		for _, v := range list.vols {
			f := list.m[v]
			if f == nil {
				f = &volumeFlow{}
				list.m[v] = f
			}
			f.keys++
			f.bytes += mv.Size
		}
	}
}

// progress writes a line to log every interval until ctx ends.
func (s *rebalanceStats) progress(ctx context.Context, log *slog.Logger, interval time.Duration) {
	start := time.Now()
	every(ctx, interval, func() {
		elapsed := time.Since(start)
		checked := s.checked.Load()
		attrs := []any{"checked", checked, "total", s.total, "moved", s.moved.Load(), "failed", s.failed.Load(),
			"MB/s", fmt.Sprintf("%.1f", float64(s.bytes.Load())/1e6/elapsed.Seconds())}
		if checked > 0 && s.total > checked {
			attrs = append(attrs, "eta", (time.Duration(float64(elapsed) / float64(checked) * float64(s.total-checked))).Round(time.Second))
		}
		log.Info("rebalance progress", attrs...)
	})
}

// report writes the summary, with the flows per volume, to w.
func (s *rebalanceStats) report(w io.Writer, dryRun bool, took time.Duration) {
	verb := "moved"
	if dryRun {
		verb = "would move"
	}
	if s.moved.Load() == 0 {
		fmt.Fprintf(w, "rebalance: checked %d keys, nothing to move, %d failed (%v)\n", s.checked.Load(), s.failed.Load(), took.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(w, "rebalance: checked %d keys, %s %d keys (%d bytes copied), %d failed (%v)\n",
		s.checked.Load(), verb, s.moved.Load(), s.bytes.Load(), s.failed.Load(), took.Round(time.Millisecond))
	for _, side := range []struct {
		name string
		m    map[string]*volumeFlow
	}{{"from", s.out}, {"to", s.in}} {
		vols := make([]string, 0, len(side.m))
		for v := range side.m {
			vols = append(vols, v)
		}
		sort.Strings(vols)
		for _, v := range vols {
			fmt.Fprintf(w, "  %-4s %-24s %8d keys %14d bytes\n", side.name, v, side.m[v].keys, side.m[v].bytes)
		}
	}
}

// keyJob is one key for a rebalance worker.
type keyJob struct {
	key string
	rec Record
}

// runRebalance moves every key to where the new volume list places it, offline on the
// index or online through a running master.
func runRebalance(ctx context.Context, cfg RebalanceConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := NewVolumeClient(cfg.VolTimeout)
	stats := &rebalanceStats{}
	var produce func(jobs chan<- keyJob) error
	var work func(ctx context.Context, j keyJob) (KeyMove, error)
	if cfg.Master != "" {
		m := NewMasterClient(cfg.Master, client)
		n, err := m.count(ctx)
		if err != nil {
			return err
		}
		stats.total = n
		produce = func(jobs chan<- keyJob) error {
			return m.eachKey(ctx, movableKinds, func(key string) error {
				select {
				case jobs <- keyJob{key: key}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}
		work = func(ctx context.Context, j keyJob) (KeyMove, error) { return m.rebalance(ctx, j.key, cfg.DryRun) }
	} else {
		index, err := OpenIndex(cfg.DB, false)
		if err != nil {
			return err
		}
		defer index.Close()
		if stats.total, err = countKeys(index); err != nil {
			return err
		}
		rb := &Rebalancer{Client: client, Placement: cfg.Placement()}
		produce = func(jobs chan<- keyJob) error {
			return index.Scan("", "", func(key string, rec Record) (bool, error) {
				if rec.State != StateLive && rec.State != StateUnlinked {
					return true, nil // a write or delete that never finished: not ours to move
				}
				select {
				case jobs <- keyJob{key, rec}:
					return true, nil
				case <-ctx.Done():
					return false, ctx.Err()
				}
			})
		}
		work = func(ctx context.Context, j keyJob) (KeyMove, error) {
			if cfg.DryRun {
				return rb.Plan(j.key, j.rec), nil
			}
			return rb.Move(ctx, j.key, j.rec, func(rec Record) error { return index.Put(j.key, rec) })
		}
	}

	start := time.Now()
	pctx, stopProgress := context.WithCancel(ctx)
	go stats.progress(pctx, log, cfg.ProgressEvery())
	jobs := make(chan keyJob, cfg.Workers)
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				mv, err := work(ctx, j)
				if err != nil {
					stats.failed.Add(1)
					stats.checked.Add(1)
					log.Error("rebalance failed", "key", j.key, "err", err)
					continue
				}
				stats.add(mv)
			}
		})
	}
	err := produce(jobs)
	close(jobs)
	workers.Wait()
	stopProgress()
	stats.report(stdout, cfg.DryRun, time.Since(start))
	if err != nil {
		return fmt.Errorf("rebalance: %w", err)
	}
	if n := stats.failed.Load(); n > 0 {
		return fmt.Errorf("rebalance: %d keys failed", n)
	}
	return nil
}

func countKeys(index *Index) (int64, error) {
	var n int64
	err := index.Scan("", "", func(string, Record) (bool, error) { n++; return true, nil })
	return n, err
}

// eachKey calls fn for every key of the kinds ("list" for live keys, "unlinked",
// "pending"), a page at a time.
func (m *MasterClient) eachKey(ctx context.Context, kinds []string, fn func(key string) error) error {
	for _, kind := range kinds {
		start := ""
		for {
			q := url.Values{"limit": {"1000"}, "start": {start}}.Encode() + "&" + kind
			resp, err := m.Do(ctx, http.MethodGet, "/", q, nil, 0)
			if err != nil {
				return err
			}
			var page ListPage
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				return fmt.Errorf("master: ?%s: status %d: %v", kind, resp.StatusCode, err)
			}
			for _, key := range page.Keys {
				if err := fn(key); err != nil {
					return err
				}
			}
			if page.Next == "" {
				break
			}
			start = page.Next
		}
	}
	return nil
}

func (m *MasterClient) count(ctx context.Context) (int64, error) {
	var n int64
	err := m.eachKey(ctx, movableKinds, func(string) error { n++; return nil })
	return n, err
}

// movableKinds are the keys rebalance moves: live and unlinked.
var movableKinds = []string{"list", "unlinked"}

// rebalance asks the master to rebalance key, retrying while another write holds it.
func (m *MasterClient) rebalance(ctx context.Context, key string, dryRun bool) (KeyMove, error) {
	query := ""
	if dryRun {
		query = "dry-run"
	}
	for attempt := 0; ; attempt++ {
		resp, err := m.Do(ctx, "REBALANCE", key, query, nil, 0)
		if err != nil {
			return KeyMove{}, err
		}
		var mv KeyMove
		switch resp.StatusCode {
		case http.StatusOK:
			err = json.NewDecoder(resp.Body).Decode(&mv)
			resp.Body.Close()
			return mv, err
		case http.StatusNotFound:
			resp.Body.Close()
			return KeyMove{Key: key}, nil // deleted meanwhile: nothing to move
		case http.StatusConflict:
			resp.Body.Close()
			if attempt < 100 {
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-ctx.Done():
					return KeyMove{}, ctx.Err()
				}
			}
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return KeyMove{}, fmt.Errorf("master: REBALANCE %s: status %d: %s", key, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
}
