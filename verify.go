package main

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// VerifyConfig is the verify command's configuration, filled from flags.
type VerifyConfig struct {
	// Master, if set, is a running master (host:port) that does the checks key by key
	// under its locks; otherwise verify works offline on ClusterConfig's index.
	Master string
	ClusterConfig
	// Deep reads every replica, checking its size and MD5; otherwise only that each
	// replica is there with its size.
	Deep bool
	// Fix repairs what can be repaired.
	Fix bool
	// Grace is how old an orphan file or an unfinished write must be before it counts:
	// a younger one may be a write in flight.
	Grace time.Duration
	// BatchConfig.Workers is how many keys are checked (and directories listed) at
	// once.
	BatchConfig
}

// Validate says what is wrong with c, if anything.
func (c VerifyConfig) Validate() error {
	if err := c.BatchConfig.Validate(); err != nil {
		return err
	}
	if c.Grace < 0 {
		return fmt.Errorf("-grace must not be negative, got %v", c.Grace)
	}
	if c.Master != "" {
		return nil
	}
	return c.ClusterConfig.Validate()
}

// The kinds of problem verify reports. Those in harmful mean the data is not whole.
const (
	probMissing    = "missing replicas"
	probCorrupt    = "replicas with the wrong size or MD5"
	probMarker     = "unlinked keys missing an unlink marker"
	probLost       = "keys with no good replica"
	probUnder      = "under-replicated keys"
	probMisplaced  = "keys on other volumes than placement wants"
	probLeftovers  = "keys with old replicas still to delete"
	probPending    = "unfinished writes and deletes"
	probOrphan     = "orphan files (no key owns them)"
	probYoungOrpha = "orphan files younger than -grace, left alone"
)

var verifyKinds = []string{probMissing, probCorrupt, probMarker, probLost, probUnder, probMisplaced, probLeftovers, probPending, probOrphan, probYoungOrpha}

// harmful are the problems that make verify fail unless fixed. Misplaced keys and old
// replicas are whole data in the wrong place; young orphans may be writes in flight.
var harmful = []string{probMissing, probCorrupt, probMarker, probLost, probUnder, probPending, probOrphan}

// Finding is one problem verify found: the master's VERIFY method answers a list.
type Finding struct {
	Kind    string `json:"kind"`
	Example string `json:"example"`
	Fixed   bool   `json:"fixed"`
}

// verifyReport counts what verify found and fixed, with a few examples of each, and
// keeps every finding of a report made for one VERIFY request.
type verifyReport struct {
	mu       sync.Mutex
	found    map[string]int64
	fixed    map[string]int64
	examples map[string][]string
	keys     atomic.Int64
	findings []Finding
}

func newVerifyReport() *verifyReport {
	return &verifyReport{found: map[string]int64{}, fixed: map[string]int64{}, examples: map[string][]string{}, findings: []Finding{}}
}

func (r *verifyReport) add(kind, example string, fixed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.findings) < 100 {
		r.findings = append(r.findings, Finding{kind, example, fixed})
	}
	r.found[kind]++
	if fixed {
		r.fixed[kind]++
	}
	if len(r.examples[kind]) < 5 {
		r.examples[kind] = append(r.examples[kind], example)
	}
}

// whole reports whether no harmful problem is left unfixed.
func (r *verifyReport) whole() bool {
	for _, k := range harmful {
		if r.found[k] > r.fixed[k] {
			return false
		}
	}
	return true
}

func (r *verifyReport) write(w io.Writer, files int64, took time.Duration) {
	fmt.Fprintf(w, "verify: %d keys and %d files checked in %v\n", r.keys.Load(), files, took.Round(time.Millisecond))
	for _, k := range verifyKinds {
		if r.found[k] == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-48s %8d found %8d fixed   e.g. %s\n", k, r.found[k], r.fixed[k], strings.Join(r.examples[k], ", "))
	}
	if r.whole() {
		fmt.Fprintln(w, "verify: the data is whole")
	} else {
		fmt.Fprintln(w, "verify: the data is NOT whole")
	}
}

// verifier checks one index against the volumes.
type verifier struct {
	cfg       VerifyConfig
	client    *VolumeClient
	placement Placement
	index     *Index
	log       *slog.Logger
	report    *verifyReport
	rebalance *Rebalancer
}

// ErrNotWhole says that verify found problems it did not fix.
var ErrNotWhole = errors.New("the data is not whole")

// runVerify compares the index with what the volumes hold, offline, and with Fix
// repairs what it can. It fails unless the data is whole at the end.
func runVerify(ctx context.Context, cfg VerifyConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := NewVolumeClient(cfg.VolTimeout)
	if cfg.Master != "" {
		return runVerifyOnline(ctx, cfg, NewMasterClient(cfg.Master, client), stdout, log)
	}
	index, err := OpenIndex(cfg.DB, false)
	if err != nil {
		return err
	}
	defer index.Close()
	v := newVerifier(cfg, client, index, log, &Rebalancer{Client: client, Placement: cfg.Placement()})
	start := time.Now()
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go every(pctx, cfg.ProgressEvery(), func() {
		log.Info("verify progress", "keys", v.report.keys.Load(), "elapsed", time.Since(start).Round(time.Second))
	})

	// The records first, so that files copied by fixes are not taken for orphans.
	jobs := make(chan keyJob, cfg.Workers)
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				v.checkKey(ctx, j.key, j.rec)
			}
		})
	}
	err = index.Scan("", "", func(key string, rec Record) (bool, error) {
		select {
		case jobs <- keyJob{key, rec}:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	})
	close(jobs)
	workers.Wait()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}

	walker := newVolumeWalker(client, cfg.Workers, func(volume, path string, e DirEntry) error {
		v.checkFile(ctx, volume, path, e)
		return nil
	})
	if err := walker.Walk(ctx, cfg.Volumes); err != nil {
		return fmt.Errorf("verify: the volumes could not all be listed: %w", err)
	}
	stopProgress()
	v.report.write(stdout, walker.files.Load(), time.Since(start))
	if !v.report.whole() {
		return fmt.Errorf("verify: %w", ErrNotWhole)
	}
	return nil
}

func newVerifier(cfg VerifyConfig, client *VolumeClient, index *Index, log *slog.Logger, rb *Rebalancer) *verifier {
	return &verifier{cfg: cfg, client: client, placement: cfg.Placement(), index: index, log: log, report: newVerifyReport(), rebalance: rb}
}

// runVerifyOnline does verify's work through a running master: it asks the master to
// check every key (VERIFY /key), walks the volumes the master names in /health, and
// asks it about every file found (VERIFY /?file=).
func runVerifyOnline(ctx context.Context, cfg VerifyConfig, m *MasterClient, stdout io.Writer, log *slog.Logger) error {
	resp, err := m.Do(ctx, http.MethodGet, healthPath, "", nil, 0)
	if err != nil {
		return err
	}
	var health struct{ Volumes []VolumeStatus }
	err = json.NewDecoder(resp.Body).Decode(&health)
	drain(resp)
	if err != nil {
		return fmt.Errorf("verify: master /health: %w", err)
	}
	var volumes []string
	for _, v := range health.Volumes {
		volumes = append(volumes, v.Volume)
	}
	query := url.Values{"grace": {cfg.Grace.String()}}
	if cfg.Deep {
		query.Set("deep", "")
	}
	if cfg.Fix {
		query.Set("fix", "")
	}
	report := newVerifyReport()
	ask := func(key string, q url.Values) error {
		resp, err := m.Do(ctx, "VERIFY", key, q.Encode(), nil, 0)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode == http.StatusNotFound {
			return nil // gone meanwhile
		}
		var findings []Finding
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("verify: master: VERIFY %s: status %d", key, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&findings); err != nil {
			return fmt.Errorf("verify: master: VERIFY %s: %w", key, err)
		}
		for _, f := range findings {
			report.add(f.Kind, f.Example, f.Fixed)
		}
		return nil
	}
	start := time.Now()
	pctx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	go every(pctx, cfg.ProgressEvery(), func() {
		log.Info("verify progress", "keys", report.keys.Load(), "elapsed", time.Since(start).Round(time.Second))
	})
	jobs := make(chan string, cfg.Workers)
	var workers sync.WaitGroup
	var failed atomic.Int64
	for range cfg.Workers {
		workers.Go(func() {
			for key := range jobs {
				report.keys.Add(1)
				if err := ask(key, query); err != nil {
					failed.Add(1)
					log.Error("verify", "key", key, "err", err)
				}
			}
		})
	}
	err = m.eachKey(ctx, []string{"list", "unlinked", "pending"}, func(key string) error {
		select {
		case jobs <- key:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	workers.Wait()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	walker := newVolumeWalker(m.client, cfg.Workers, func(volume, path string, e DirEntry) error {
		q := url.Values{"file": {volume + "/" + path}, "mtime": {e.MTime}}
		maps.Copy(q, query)
		return ask("/", q)
	})
	if err := walker.Walk(ctx, volumes); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	report.write(stdout, walker.files.Load(), time.Since(start))
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("verify: %d keys could not be checked", n)
	}
	if !report.whole() {
		return fmt.Errorf("verify: %w", ErrNotWhole)
	}
	return nil
}

func (v *verifier) save(key string) func(Record) error {
	return func(rec Record) error { return v.index.Put(key, rec) }
}

// checkKey checks one record against its replicas, and fixes it if asked.
func (v *verifier) checkKey(ctx context.Context, key string, rec Record) {
	v.report.keys.Add(1)
	if rec.State == StateWriting || rec.State == StateDeleting {
		if time.Since(time.Unix(0, rec.Time)) < v.cfg.Grace {
			return // may be in flight
		}
		fixed := false
		if v.cfg.Fix {
			// A write never acknowledged is rolled back; a delete is completed.
			err := removeFiles(ctx, v.client, key, rec.Sub, append(slices.Clone(rec.Volumes), rec.Leftovers...), rec.State == StateDeleting)
			fixed = err == nil && v.index.Delete(key) == nil
		}
		v.report.add(probPending, fmt.Sprintf("%s (%s)", key, rec.State), fixed)
		return
	}

	// Which replicas are there and whole.
	path := KeyPath(key, rec.Sub)
	var good []string
	for _, vol := range rec.Volumes {
		err := v.checkReplica(ctx, vol, path, rec)
		if err == nil {
			good = append(good, vol)
			continue
		}
		kind := probMissing
		if errors.Is(err, ErrCopyMismatch) {
			kind = probCorrupt
		}
		v.report.add(kind, key+" on "+vol, v.cfg.Fix && len(rec.Volumes) > 1 && v.repair(ctx, key, rec, vol, good))
	}
	if len(good) == 0 {
		v.report.add(probLost, key, false)
		return
	}
	if rec.State == StateUnlinked {
		marker := MarkerPath(key, rec.Sub)
		for _, vol := range rec.Volumes {
			if _, err := v.client.Stat(ctx, vol, marker); err != nil {
				fixed := v.cfg.Fix && v.client.Put(ctx, vol, marker, http.NoBody, 0) == nil
				v.report.add(probMarker, key+" on "+vol, fixed)
			}
		}
	}

	// Where the replicas are.
	want := v.placement.Choose(key)
	under := len(rec.Volumes) < v.cfg.Replicas
	misplaced := !under && v.rebalance.Plan(key, rec).Moves()
	fixed := false
	if v.cfg.Fix && (under || misplaced || len(rec.Leftovers) > 0) {
		rec.Volumes = v.placement.InRankOrder(key, rec.Volumes)
		_, err := v.rebalance.Move(ctx, key, rec, v.save(key))
		fixed = err == nil
		if err != nil {
			v.log.Warn("verify could not move a key", "key", key, "err", err)
		}
	}
	if under {
		v.report.add(probUnder, fmt.Sprintf("%s (%d of %d)", key, len(rec.Volumes), len(want)), fixed)
	}
	if misplaced {
		v.report.add(probMisplaced, key, fixed)
	}
	if len(rec.Leftovers) > 0 {
		v.report.add(probLeftovers, key, fixed)
	}
}

// checkReplica checks that volume holds key's value: its size, and with Deep its MD5.
func (v *verifier) checkReplica(ctx context.Context, volume, path string, rec Record) error {
	if !v.cfg.Deep {
		n, err := v.client.Stat(ctx, volume, path)
		if err == nil && n != rec.Size {
			err = fmt.Errorf("%w: %d bytes, want %d", ErrCopyMismatch, n, rec.Size)
		}
		return err
	}
	body, n, err := v.client.Get(ctx, volume, path)
	if err != nil {
		return err
	}
	defer body.Close()
	h := md5.New()
	read, err := io.Copy(h, body)
	if err != nil {
		return err
	}
	if n != rec.Size || read != rec.Size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrCopyMismatch, read, rec.Size)
	}
	if got := md5Hex(h.Sum(nil)); rec.MD5 != "" && got != rec.MD5 {
		return fmt.Errorf("%w: MD5 %s, want %s", ErrCopyMismatch, got, rec.MD5)
	}
	return nil
}

// repair copies key's value onto dst from a good replica: those known good, else any
// other that the copy finds whole (the copy checks size and MD5).
func (v *verifier) repair(ctx context.Context, key string, rec Record, dst string, good []string) bool {
	sources := append(slices.Clone(good), rec.Volumes...)
	path := KeyPath(key, rec.Sub)
	for _, src := range sources {
		if src == dst {
			continue
		}
		if err := v.client.Copy(ctx, src, dst, path, rec.Size, rec.MD5); err == nil {
			return true
		}
	}
	return false
}

// checkFile checks that a file on a volume belongs to a key that the index says is
// there, and with Fix deletes it if not and older than Grace.
func (v *verifier) checkFile(ctx context.Context, volume, path string, e DirEntry) {
	f, err := ParseVolumePath(path)
	owned := false
	if err == nil {
		rec, err := v.index.Get(f.Key)
		owned = err == nil && (slices.Contains(rec.Volumes, volume) || slices.Contains(rec.Leftovers, volume)) &&
			(!f.Marker || rec.State != StateLive)
	}
	if owned {
		return
	}
	example := volume + "/" + path
	if time.Since(e.Modified()) < v.cfg.Grace {
		v.report.add(probYoungOrpha, example, false)
		return
	}
	fixed := v.cfg.Fix && v.client.Delete(ctx, volume, path) == nil
	v.report.add(probOrphan, example, fixed)
}
