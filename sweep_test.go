package main

import (
	"container/heap"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestSweepQueue: the sweeper takes keys in due order whatever order they were queued
// in, backs off up to sweepRetryMax, and a volume coming back makes every retry due.
func TestSweepQueue(t *testing.T) {
	m := &Master{sweepWake: make(chan struct{}, 1), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	now := time.Now()
	m.queueSweep(pendingSweep{key: "late", due: now.Add(time.Hour)})
	m.queueSweep(pendingSweep{key: "retry", due: now.Add(time.Minute), attempts: 3})
	m.queueSweep(pendingSweep{key: "soon", due: now.Add(time.Second)})
	var order []string
	for m.sweepQueue.Len() > 0 {
		order = append(order, heap.Pop(&m.sweepQueue).(pendingSweep).key)
	}
	if got := order; len(got) != 3 || got[0] != "soon" || got[1] != "retry" || got[2] != "late" {
		t.Fatalf("order %v", got)
	}

	m.queueSweep(pendingSweep{key: "late", due: now.Add(time.Hour)})
	m.queueSweep(pendingSweep{key: "retry", due: now.Add(time.Minute), attempts: 3})
	m.volumeBack("a:1")
	if next := m.sweepQueue[0]; next.key != "retry" || next.due.After(time.Now()) {
		t.Fatalf("after volumeBack the first due is %+v, want the retry, due now", next)
	}
	if late := m.sweepQueue[1]; !late.due.Equal(now.Add(time.Hour)) {
		t.Fatalf("volumeBack moved a first try: %+v", late)
	}

	for _, tt := range []struct {
		attempts int
		want     time.Duration
	}{{0, time.Second}, {1, 2 * time.Second}, {4, 16 * time.Second}, {8, 256 * time.Second}, {9, sweepRetryMax}, {1000, sweepRetryMax}} {
		if got := retryDelay(tt.attempts); got != tt.want {
			t.Errorf("retryDelay(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
}
