package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKeyLocks: a second write to a key with one in flight gets 409 at once, and GETs
// see the old state until the write commits.
func TestKeyLocks(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/locked/old", []byte("old"))
	conn := rawPut(t, c, "/locked/new", fmt.Sprintf("Content-Length: %d\r\n", 2*chunkSize), randomBytes(chunkSize))
	eventually(t, 5*time.Second, "write not in flight", func() bool {
		rec, err := c.Master.index.Get("/locked/new")
		return err == nil && rec.State == StateWriting
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
	conn.Write(randomBytes(chunkSize))
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
			resp := c.Do(http.MethodPut, "/race", bytes.NewReader(randomBytes(chunkSize*2)))
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
