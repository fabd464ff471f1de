package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunWorkers: every job sent is done before runWorkers returns, never more than
// workers at once, and what the producer returns (its own error, or the context's once
// it ends) comes back.
func TestRunWorkers(t *testing.T) {
	errStop := errors.New("producer stopped")
	tests := []struct {
		name   string
		jobs   int
		stop   error // what the producer returns after sending jobs
		cancel bool  // the context ends while a job is being sent
		want   error
	}{
		{"all jobs", 100, nil, false, nil},
		{"none", 0, nil, false, nil},
		{"producer fails", 10, errStop, false, errStop},
		{"context ends", 0, nil, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var running, most, done atomic.Int64
			block := make(chan struct{})
			err := runWorkers(ctx, 4, func(send func(int) error) error {
				for i := range tt.jobs {
					if err := send(i); err != nil {
						return err
					}
				}
				if tt.cancel {
					cancel()
					// Every worker is busy and the queue is full: send must give up.
					for i := 0; ; i++ {
						if err := send(i); err != nil {
							close(block)
							return err
						}
					}
				}
				return tt.stop
			}, func(int) {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if tt.cancel {
					<-block
				} else {
					time.Sleep(time.Millisecond)
				}
				running.Add(-1)
				done.Add(1)
			})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("runWorkers = %v, want %v", err, tt.want)
			}
			if running.Load() != 0 {
				t.Fatalf("%d jobs still running after runWorkers returned", running.Load())
			}
			if most.Load() > 4 {
				t.Fatalf("%d jobs ran at once, want at most 4", most.Load())
			}
			if !tt.cancel && done.Load() != int64(tt.jobs) {
				t.Fatalf("%d jobs done, want %d", done.Load(), tt.jobs)
			}
		})
	}
}
