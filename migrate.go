package main

// davkv migrate: copying an index from one backend to another (any two of LevelDB,
// etcd and PostgreSQL), streamed, resumable, with progress.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"davkv/internal/index"
)

// MigrateConfig says what davkv migrate copies.
type MigrateConfig struct {
	// DB is the index to copy from, which no master may be using: LevelDB allows one
	// process at a time, and on etcd or PostgreSQL a master writing meanwhile could be
	// missed.
	DB string
	// To is the index to copy into. It must not exist, unless an interrupted migrate
	// of the same DB left it (then the copy resumes), or Force is set.
	To string
	// Force replaces an index that exists at To.
	Force bool
	// Workers is how many records are written at once; zero means 16.
	Workers int
	// Progress is how often progress is logged; zero means every 5 seconds.
	Progress time.Duration
}

// Validate checks the config.
func (c MigrateConfig) Validate() error {
	switch {
	case c.DB == "" || c.To == "":
		return fmt.Errorf("%w: -db (the index to copy) and -to (where to) are needed", errUsage)
	case c.DB == c.To:
		return fmt.Errorf("%w: -db and -to are the same index", errUsage)
	case c.Workers < 0:
		return fmt.Errorf("%w: -workers must not be negative", errUsage)
	}
	return nil
}

// migrateSpaces are the entry spaces an index holds besides the keys' records, which
// migrate copies too.
var migrateSpaces = []string{index.BucketSpace, index.UploadSpace, index.PartSpace, index.KeySpace}

// migrateSpace holds, in the index being written, migrate's progress (migrateState)
// under migrateName, until the copy is complete.
const (
	migrateSpace = "migrate"
	migrateName  = "progress"
	migrateBatch = 1000
)

// migrateState is where a migrate got to: every key up to Key is copied.
type migrateState struct {
	From string `json:"from"`
	Key  string `json:"key"`
	Keys int64  `json:"keys"`
}

// runMigrate copies every record and entry of cfg.DB into cfg.To, a batch of keys at
// a time, in key order, with progress recorded in To after each batch so that an
// interrupted copy resumes where it was. Records keep everything but their revision,
// write time and owner, which the index writing them sets: a pending record becomes
// migrate's, so that the first master on the new index adopts it once migrate is
// gone. Entries are copied last, and the progress is removed once all is copied.
func runMigrate(ctx context.Context, cfg MigrateConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = 16
	}
	progress := cfg.Progress
	if progress == 0 {
		progress = 5 * time.Second
	}
	if ok, err := indexExists(cfg.DB); err != nil || !ok {
		return fmt.Errorf("migrate: no index at %s: %w", cfg.DB, cmp.Or(err, index.ErrNotFound))
	}
	exists, err := clearIndex(cfg.To, cfg.Force)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	src, err := openIndex(cfg.DB, false)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer src.Close()
	dst, err := openIndex(cfg.To, false)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer dst.Close()

	state := migrateState{From: cfg.DB}
	value, stateRev, err := dst.GetEntry(migrateSpace, migrateName)
	switch {
	case err == nil:
		if err := json.Unmarshal(value, &state); err != nil || state.From != cfg.DB {
			return fmt.Errorf("migrate %s: %w (a copy of another index was interrupted there)", cfg.To, ErrIndexExists)
		}
		log.Info("resuming an interrupted migrate", "after", state.Key, "keys copied", state.Keys)
	case !errors.Is(err, index.ErrNotFound):
		return fmt.Errorf("migrate: %w", err)
	case exists:
		return fmt.Errorf("migrate %s: %w", cfg.To, ErrIndexExists)
	}

	start, last := time.Now(), time.Now()
	var batch []string
	var recs []index.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := copyRecords(dst, batch, recs, workers); err != nil {
			return err
		}
		state.Key, state.Keys = batch[len(batch)-1], state.Keys+int64(len(batch))
		b, err := json.Marshal(state)
		if err != nil {
			return err
		}
		if stateRev, err = dst.PutEntry(migrateSpace, migrateName, b, stateRev); err != nil {
			return fmt.Errorf("record progress: %w", err)
		}
		batch, recs = batch[:0], recs[:0]
		if time.Since(last) >= progress {
			last = time.Now()
			log.Info("migrating", "keys copied", state.Keys, "at", state.Key, "keys/s", int(float64(state.Keys)/time.Since(start).Seconds()))
		}
		return ctx.Err()
	}
	from := ""
	if state.Key != "" {
		from = state.Key + "\x00"
	}
	err = src.Scan("", from, func(key string, rec index.Record) (bool, error) {
		batch, recs = append(batch, key), append(recs, rec)
		if len(batch) < migrateBatch {
			return true, nil
		}
		return true, flush()
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("migrate: %w (run it again to resume)", err)
	}
	entries := 0
	for _, space := range migrateSpaces {
		err := src.Entries(space, "", func(name string, value []byte, _ int64) (bool, error) {
			_, rev, err := dst.GetEntry(space, name)
			if err != nil && !errors.Is(err, index.ErrNotFound) {
				return false, err
			}
			if _, err := dst.PutEntry(space, name, value, rev); err != nil {
				return false, err
			}
			entries++
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("migrate %s entries: %w (run it again to resume)", space, err)
		}
	}
	if stateRev != 0 {
		if err := dst.DeleteEntry(migrateSpace, migrateName, stateRev); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	fmt.Fprintf(stdout, "migrate: %d keys and %d entries copied from %s to %s in %v\n", state.Keys, entries, cfg.DB, cfg.To, time.Since(start).Round(time.Millisecond))
	return nil
}

// copyRecords writes recs as keys' records into dst, workers at a time, over what an
// interrupted copy may have written.
func copyRecords(dst index.Index, keys []string, recs []index.Record, workers int) error {
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	next := make(chan int)
	for range min(workers, len(keys)) {
		wg.Go(func() {
			for i := range next {
				rec := recs[i]
				rec.Rev = 0
				err := dst.Put(keys[i], &rec)
				if errors.Is(err, index.ErrConflict) { // copied before an interruption
					var old index.Record
					if old, err = dst.Get(keys[i]); err == nil {
						rec.Rev = old.Rev
						err = dst.Put(keys[i], &rec)
					}
				}
				if err != nil {
					errs[i] = fmt.Errorf("copy %s: %w", keys[i], err)
				}
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first: the others are likely the same
		}
	}
	return nil
}
