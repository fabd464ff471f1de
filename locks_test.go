package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// TestKeyLocks: a second write to a key with one in flight gets 409 at once, and GETs
// see the old state until the write commits.
func TestKeyLocks(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/locked/old", []byte("old"))
	conn := rawPut(t, c, "/locked/new", fmt.Sprintf("Content-Length: %d\r\n", 2*chunkSize), testenv.RandomBytes(chunkSize))
	testenv.Eventually(t, 5*time.Second, "write not in flight", func() bool {
		rec, err := c.Master.index.Get("/locked/new")
		return err == nil && rec.State == index.StateWriting
	})
	for _, method := range []string{http.MethodPut, http.MethodDelete, "UNLINK"} {
		start := time.Now()
		resp := c.Do(method, "/locked/new", strings.NewReader("x"))
		if resp.StatusCode != http.StatusConflict || time.Since(start) > time.Second {
			t.Errorf("%s during PUT: %d after %v, want 409 at once", method, resp.StatusCode, time.Since(start))
		}
	}
	if status, _ := c.Get("/locked/new"); status != http.StatusNotFound {
		t.Errorf("GET during PUT: %d, want 404", status)
	}
	if status, got := c.Get("/locked/old"); status != http.StatusOK || string(got) != "old" {
		t.Errorf("GET of another key: %d %q", status, got)
	}
	conn.Write(testenv.RandomBytes(chunkSize))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow PUT: %v %v", resp, err)
	}
	if status, _ := c.Get("/locked/new"); status != http.StatusOK {
		t.Errorf("GET after commit: %d", status)
	}
}

func TestConcurrentWritersOneKey(t *testing.T) {
	c := startCluster(t, 3, nil)
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			resp := c.Do(http.MethodPut, "/race", bytes.NewReader(testenv.RandomBytes(chunkSize*2)))
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict, http.StatusForbidden:
		default:
			t.Errorf("status %d", s)
		}
	}
	if created != 1 {
		t.Fatalf("%d PUTs created the key, want 1", created)
	}
}

// TestKeyLocksBackground: a request meeting another request's lock is refused at once
// (or, waiting, waits); one meeting the sweeper's waits for it; the sweeper never
// waits.
func TestKeyLocksBackground(t *testing.T) {
	tests := []struct {
		name       string
		background bool // who holds the key
		wait       bool
		want       error // nil: the lock is had once the holder unlocks
	}{
		{"a request meets a request", false, false, ErrLocked},
		{"a waiting request meets a request", false, true, nil},
		{"a request meets the sweeper", true, false, nil},
		{"a waiting request meets the sweeper", true, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l keyLocks
			var unlock func()
			if tt.background {
				var ok bool
				if unlock, ok = l.tryBackground("/k"); !ok {
					t.Fatal("background lock of a free key refused")
				}
			} else if unlock, _ = l.lock(context.Background(), "/k", false); unlock == nil {
				t.Fatal("lock of a free key refused")
			}
			if _, ok := l.tryBackground("/k"); ok {
				t.Fatal("background work took a held key")
			}
			unlocked := make(chan struct{})
			time.AfterFunc(50*time.Millisecond, func() { unlock(); close(unlocked) })
			start := time.Now()
			got, err := l.lock(context.Background(), "/k", tt.wait)
			if !errors.Is(err, tt.want) {
				t.Fatalf("lock: %v, want %v", err, tt.want)
			}
			if err == nil {
				if time.Since(start) < 40*time.Millisecond {
					t.Fatal("had the lock before its holder unlocked")
				}
				got()
			}
			<-unlocked
			if unlock, ok := l.tryBackground("/k"); !ok {
				t.Fatal("the key stayed locked")
			} else {
				unlock()
			}
		})
	}
}
