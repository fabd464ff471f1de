package main

// The rebalance command: move every key to where the volume list places it, offline on
// the index or online through a master, with progress and a summary.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"davkv/internal/index"
)

// RebalanceConfig is the rebalance command's configuration, filled from flags.
type RebalanceConfig struct {
	// Master, if set, is a running master (host:port or URL) that does the work key by
	// key under its locks, while clients keep using it. Otherwise the work is done
	// offline on DB, which no master may have open.
	Master string
	// MasterKey is the key (ID:SECRET) sent to a Master started with -auth ($DAVKV_KEY).
	MasterKey string
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

// progress writes a line to log, for a run that began at start.
func (s *rebalanceStats) progress(log *slog.Logger, start time.Time) {
	elapsed := time.Since(start)
	checked := s.checked.Load()
	attrs := []any{"checked", checked, "total", s.total, "moved", s.moved.Load(), "failed", s.failed.Load(),
		"MB/s", fmt.Sprintf("%.1f", float64(s.bytes.Load())/1e6/elapsed.Seconds())}
	if checked > 0 && s.total > checked {
		attrs = append(attrs, "eta", (time.Duration(float64(elapsed) / float64(checked) * float64(s.total-checked))).Round(time.Second))
	}
	log.Info("rebalance progress", attrs...)
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

// runRebalance moves every key to where the new volume list places it, offline on the
// index or online through a running master.
func runRebalance(ctx context.Context, cfg RebalanceConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := cfg.VolumeClient(cfg.VolTimeout)
	stats := &rebalanceStats{}
	var produce func(send func(keyJob) error) error
	var work func(j keyJob) (KeyMove, error)
	if cfg.Master != "" {
		m := NewMasterClient(cfg.Master, cfg.MasterKey, client)
		n, err := m.count(ctx)
		if err != nil {
			return err
		}
		stats.total = n
		produce = func(send func(keyJob) error) error {
			return m.eachKey(ctx, movableKinds, func(key string) error { return send(keyJob{key: key}) })
		}
		work = func(j keyJob) (KeyMove, error) { return m.rebalance(ctx, j.key, cfg.DryRun) }
	} else {
		idx, err := openIndex(cfg.DB, false)
		if err != nil {
			return err
		}
		defer idx.Close()
		if stats.total, err = index.CountKeys(idx); err != nil {
			return err
		}
		rb := &Rebalancer{Client: client, Placement: cfg.Placement(), Index: idx}
		// A write or delete that never finished is not rebalance's to move.
		produce = sendRecords(idx, func(rec index.Record) bool { return rec.State == index.StateLive || rec.State == index.StateUnlinked })
		work = func(j keyJob) (KeyMove, error) {
			if cfg.DryRun {
				return rb.Plan(j.key, j.rec), nil
			}
			return rb.Move(ctx, j.key, j.rec)
		}
	}

	start := time.Now()
	stopProgress := startProgress(ctx, cfg.ProgressEvery(), func() { stats.progress(log, start) })
	err := runWorkers(ctx, cfg.Workers, produce, func(j keyJob) {
		mv, err := work(j)
		if err != nil {
			stats.failed.Add(1)
			stats.checked.Add(1)
			log.Error("rebalance failed", "key", j.key, "err", err)
			return
		}
		stats.add(mv)
	})
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
