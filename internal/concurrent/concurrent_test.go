package concurrent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallel: every item runs, at once, and their errors are joined.
func TestParallel(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	start := make(chan struct{})
	var waiting atomic.Int32
	errA, errB := errors.New("a"), errors.New("b")
	err := Parallel(Indexes(4), func(i int) error {
		if waiting.Add(1) == 4 {
			close(start) // all four are running at once
		}
		<-start
		mu.Lock()
		seen = append(seen, i)
		mu.Unlock()
		switch i {
		case 1:
			return errA
		case 3:
			return errB
		}
		return nil
	})
	slices.Sort(seen)
	if !slices.Equal(seen, []int{0, 1, 2, 3}) || !errors.Is(err, errA) || !errors.Is(err, errB) {
		t.Fatalf("ran %v, err %v", seen, err)
	}
	if err := Parallel(nil, func(int) error { return errA }); err != nil {
		t.Fatalf("no items: %v", err)
	}
}

// TestEvery: fn runs each interval, and Every returns once ctx has ended.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		Every(ctx, time.Millisecond, func() {
			if n.Add(1) == 3 {
				cancel()
			}
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not stop when its context ended")
	}
	if got := n.Load(); got < 3 {
		t.Fatalf("fn ran %d times, want at least 3", got)
	}
}
