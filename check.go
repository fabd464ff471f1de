package main

// Checking the index against the volumes, key by key and file by file, and what was
// found: what the verify command and the master's VERIFY method share.

import (
	"cmp"
	"context"
	"crypto/md5"
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

	"davkv/internal/index"
	"davkv/internal/layout"
)

// The kinds of problem verify reports. Those in harmful mean the data is not whole.
const (
	probMissing    = "missing replicas"
	probCorrupt    = "replicas with the wrong size or MD5"
	probMarker     = "unlinked keys missing an unlink marker"
	probLost       = "keys with no good replica"
	probUnder      = "under-replicated keys"
	probMisplaced  = "keys on other volumes than placement wants"
	probCrowded    = "keys with replicas crowded in one zone or host"
	probLeftovers  = "keys with old replicas, generations or tombstones still to delete"
	probPending    = "unfinished writes and deletes"
	probOrphan     = "orphan files (no key owns them)"
	probYoungOrpha = "orphan files younger than -grace, left alone"
	probAbandoned  = "multipart uploads older than -upload-grace (abandoned)"
)

var verifyKinds = []string{probMissing, probCorrupt, probMarker, probLost, probUnder, probMisplaced, probCrowded, probLeftovers, probPending, probOrphan, probYoungOrpha, probAbandoned}

// harmful are the problems that make verify fail unless fixed. Misplaced and crowded
// keys and old replicas are whole data in the wrong place (a crowded key loses more
// replicas to one machine's failure: written while a domain was down, or placed
// before davkv knew domains); young orphans may be writes in flight.
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

// progress writes a line to log, for a run that began at start.
func (r *verifyReport) progress(log *slog.Logger, start time.Time) {
	log.Info("verify progress", "keys", r.keys.Load(), "elapsed", time.Since(start).Round(time.Second))
}

// write writes the summary: what was checked, and each kind of problem found.
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

// CheckOptions say how far checking a key or a file goes, and whether it repairs.
type CheckOptions struct {
	// Deep reads every replica, checking its size and MD5; otherwise only that each
	// replica is there with its size.
	Deep bool
	// Fix repairs what can be repaired.
	Fix bool
	// Grace is how old an orphan file or an unfinished write must be before it counts:
	// a younger one may be a write in flight.
	Grace time.Duration
	// UploadGrace is how old an S3 multipart upload must be to count as abandoned.
	// Zero means 7 days.
	UploadGrace time.Duration
}

// verifier checks records against their replicas and files against the index, and
// repairs with Fix. The verify command runs one over the whole cluster; the master's
// VERIFY method one per request, under the key's lock.
type verifier struct {
	opts CheckOptions
	// rebalance has the client, the placement and the index, and moves keys.
	rebalance *Rebalancer
	log       *slog.Logger
	report    *verifyReport
}

func newVerifier(opts CheckOptions, rb *Rebalancer, log *slog.Logger) *verifier {
	return &verifier{opts: opts, rebalance: rb, log: log, report: newVerifyReport()}
}

// checkKey checks one record against its replicas, and fixes it if asked.
func (v *verifier) checkKey(ctx context.Context, key string, rec index.Record) {
	v.report.keys.Add(1)
	if rec.State == index.StateWriting || rec.State == index.StateDeleting {
		if time.Since(time.Unix(0, rec.Time)) < v.opts.Grace || rec.State == index.StateWriting && len(rec.Writes) > 0 {
			return // may be in flight; S3 writes are, or the sweeper drops them
		}
		fixed := false
		switch {
		case !v.opts.Fix:
		case rec.State == index.StateDeleting:
			// A delete is completed.
			fixed = v.rebalance.FinishDelete(ctx, key, rec, true) == nil
		default:
			// A write never acknowledged is rolled back.
			err := removeRecordFiles(ctx, v.rebalance.Client, key, rec)
			fixed = err == nil && removeRecord(v.rebalance.Index, key, rec) == nil
		}
		v.report.add(probPending, fmt.Sprintf("%s (%s)", key, rec.State), fixed)
		return
	}

	// Which replicas are there and whole.
	path := rec.Path(key)
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
		v.report.add(kind, key+" on "+vol, v.opts.Fix && len(rec.Volumes) > 1 && v.repair(ctx, key, rec, vol, good))
	}
	if len(good) == 0 {
		v.report.add(probLost, key, false)
		return
	}
	if rec.State == index.StateUnlinked {
		marker := rec.MarkerPath(key)
		for _, vol := range rec.Volumes {
			if _, err := v.rebalance.Client.Stat(ctx, vol, marker); err != nil {
				fixed := v.opts.Fix && v.rebalance.Client.Put(ctx, vol, marker, http.NoBody, 0) == nil
				v.report.add(probMarker, key+" on "+vol, fixed)
			}
		}
	}

	// Where the replicas are.
	want := v.rebalance.Placement.Choose(key)
	under := len(rec.Volumes) < v.rebalance.Placement.Replicas
	misplaced := !under && v.rebalance.Plan(key, rec).Moves()
	fixed := false
	old := len(rec.Leftovers) > 0 || len(rec.Stale) > 0 || len(rec.Tombstones) > 0
	if v.opts.Fix && (under || misplaced || old) {
		rec.Volumes = v.rebalance.Placement.InRankOrder(key, rec.Volumes)
		_, err := v.rebalance.Move(ctx, key, rec)
		fixed = err == nil
		if err != nil {
			v.log.Warn("verify could not move a key", "key", key, "err", err)
		}
	}
	if under {
		v.report.add(probUnder, fmt.Sprintf("%s (%d of %d)", key, len(rec.Volumes), len(want)), fixed)
	}
	switch {
	case misplaced && v.rebalance.Placement.Crowded(rec.Volumes, want):
		v.report.add(probCrowded, key+" on "+strings.Join(rec.Volumes, ","), fixed)
	case misplaced:
		v.report.add(probMisplaced, key, fixed)
	}
	if old {
		v.report.add(probLeftovers, key, fixed)
	}
}

// checkReplica checks that volume holds key's value: its size, and with Deep its MD5.
func (v *verifier) checkReplica(ctx context.Context, volume, path string, rec index.Record) error {
	if !v.opts.Deep {
		n, err := v.rebalance.Client.Stat(ctx, volume, path)
		if err == nil && n != rec.Size {
			err = fmt.Errorf("%w: %d bytes, want %d", ErrCopyMismatch, n, rec.Size)
		}
		return err
	}
	body, n, err := v.rebalance.Client.Get(ctx, volume, path)
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
func (v *verifier) repair(ctx context.Context, key string, rec index.Record, dst string, good []string) bool {
	sources := append(slices.Clone(good), rec.Volumes...)
	path := rec.Path(key)
	for _, src := range sources {
		if src == dst {
			continue
		}
		if err := v.rebalance.Client.Copy(ctx, src, dst, path, rec.Size, rec.MD5); err == nil {
			return true
		}
	}
	return false
}

// checkFile checks that a file on a volume belongs to a key that the index says is
// there, and with Fix deletes it if not and older than Grace.
func (v *verifier) checkFile(ctx context.Context, volume, path string, e DirEntry) {
	f, err := layout.ParseVolumePath(path)
	owned := false
	if id, n, token, ok := layout.ParsePartPath(path); ok {
		owned = v.partOwned(id, n, token, volume)
	} else if err == nil {
		rec, err := v.rebalance.Index.Get(f.Key)
		owned = err == nil && rec.Owns(f, volume)
	}
	if owned {
		return
	}
	example := volume + "/" + path
	if time.Since(e.Modified()) < v.opts.Grace {
		v.report.add(probYoungOrpha, example, false)
		return
	}
	fixed := v.opts.Fix && v.rebalance.Client.Delete(ctx, volume, path) == nil
	v.report.add(probOrphan, example, fixed)
}

// partOwned reports whether the index has part n of upload id, stored under token, on
// volume.
func (v *verifier) partOwned(id string, n int, token, volume string) bool {
	p, _, found, err := readPart(v.rebalance.Index, index.PartName(id, n))
	return err == nil && found && partHolds(p, token, volume)
}

// checkUploads reports the multipart uploads older than UploadGrace, and with Fix
// removes them, parts and all.
func (v *verifier) checkUploads(ctx context.Context) error {
	grace := cmp.Or(v.opts.UploadGrace, 7*24*time.Hour)
	type upload struct{ id, example string }
	var old []upload
	err := v.rebalance.Index.Entries(index.UploadSpace, "", func(id string, value []byte, _ int64) (bool, error) {
		var u index.MultipartUpload
		if err := u.UnmarshalBinary(value); err != nil {
			return false, err
		}
		if time.Since(time.Unix(0, u.Created)) > grace {
			old = append(old, upload{id, fmt.Sprintf("%s/%s (%s)", u.Bucket, u.Key, id)})
		}
		return ctx.Err() == nil, nil
	})
	for _, u := range old {
		fixed := v.opts.Fix && removeUpload(ctx, v.rebalance.Index, v.rebalance.Client, u.id) == nil
		v.report.add(probAbandoned, u.example, fixed)
	}
	return err
}
