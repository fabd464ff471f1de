package main

// What the commands that work through a whole cluster share (rebalance, verify,
// rebuild): workers, their jobs, and progress lines.

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"davkv/internal/concurrent"
	"davkv/internal/index"
)

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

// keyJob is one key for a batch worker, with its record when it was read from the
// index (offline), without when a master will read it (online).
type keyJob struct {
	key string
	rec index.Record
}

// runWorkers calls work for every job that produce sends, workers jobs at once, and
// returns what produce returned once every job sent is done. send waits for a free
// worker, and fails once ctx ends.
func runWorkers[J any](ctx context.Context, workers int, produce func(send func(J) error) error, work func(J)) error {
	jobs := make(chan J, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				work(j)
			}
		})
	}
	err := produce(func(j J) error {
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	return err
}

// sendRecords returns a producer for runWorkers that sends every record of index for
// which keep is true.
func sendRecords(idx index.Index, keep func(index.Record) bool) func(send func(keyJob) error) error {
	return func(send func(keyJob) error) error {
		return idx.Scan("", "", func(key string, rec index.Record) (bool, error) {
			if !keep(rec) {
				return true, nil
			}
			if err := send(keyJob{key, rec}); err != nil {
				return false, err
			}
			return true, nil
		})
	}
}

// startProgress calls report every interval, in the background, until ctx ends or the
// returned stop is called.
func startProgress(ctx context.Context, interval time.Duration, report func()) (stop func()) {
	ctx, stop = context.WithCancel(ctx)
	go concurrent.Every(ctx, interval, report)
	return stop
}
