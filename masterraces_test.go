package main

// Races between masters over one etcd index, each made to happen at a chosen moment: a
// DELETE meeting a PUT or a second DELETE through another master, and a master paused
// in the middle of a PUT past its lease while another writes the key. Each answer must
// be one a single copy of the data could give.

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// holdingProxy stands in front of a real volume and, while held, keeps every DELETE
// sent to it waiting: a master's delete stopped in flight at a chosen moment, which no
// real fault gives on demand (a frozen volume stops every request, and the masters
// soon count it down). Everything else passes.
type holdingProxy struct {
	Addr    string
	mu      sync.Mutex
	gate    chan struct{} // while held, closed by Release
	waiting atomic.Int32
}

// startHoldingProxy starts a proxy in front of the volume at target.
func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	p := &holdingProxy{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			if gate != nil {
				p.waiting.Add(1)
				<-gate
				p.waiting.Add(-1)
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	t.Cleanup(p.Release) // before s.Close, which waits for the requests held
	p.Addr = s.Listener.Addr().String()
	return p
}

// Hold makes DELETEs wait from now on, until Release.
func (p *holdingProxy) Hold() {
	p.mu.Lock()
	p.gate = make(chan struct{})
	p.mu.Unlock()
}

// Release lets the DELETEs held go on, and those after them pass.
func (p *holdingProxy) Release() {
	p.mu.Lock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
	p.mu.Unlock()
}

// heldMasters starts n masters over an index in e under prefix, each volume behind a
// holdingProxy.
func heldMasters(t *testing.T, n int, e *testenv.Etcd, prefix string, flags ...string) (*testMasters, []*holdingProxy) {
	ms := newMasters(t, e.DB(prefix))
	var proxies []*holdingProxy
	for i, v := range ms.Vols {
		p := startHoldingProxy(t, v.Addr)
		proxies, ms.Addrs[i] = append(proxies, p), p.Addr
	}
	// A DELETE held must not time out meanwhile; a replaced value's files go at once.
	ms.Flags = append([]string{"-voltimeout", "10s", "-grace", "100ms"}, flags...)
	for range n {
		ms.Start()
	}
	return ms, proxies
}

// holdDeletes holds the DELETEs of every proxy and sends a DELETE of key through
// master i, returning once the master has marked the key deleting and is removing its
// files: its answer comes on the channel once the proxies release.
func holdDeletes(t *testing.T, ms *testMasters, proxies []*holdingProxy, i int, key string) <-chan int {
	t.Helper()
	for _, p := range proxies {
		p.Hold()
	}
	answer := make(chan int, 1)
	go func() {
		status, _ := ms.Do(i, http.MethodDelete, key, nil)
		answer <- status
	}()
	testenv.Eventually(t, 5*time.Second, "the DELETE did not reach the volumes", func() bool {
		return slices.ContainsFunc(proxies, func(p *holdingProxy) bool { return p.waiting.Load() > 0 })
	})
	return answer
}

func releaseAll(proxies []*holdingProxy) {
	for _, p := range proxies {
		p.Release()
	}
}

// TestDeleteRaces: a DELETE through master 0 is done once its record says deleting,
// and is stopped there, its files' removal held. A PUT of the key through master 1
// then writes it anew (201), and the DELETE, finishing after it, still answers 204,
// not 409: it took effect before the PUT. A GET and a second DELETE through master 1
// meanwhile answer 404, and the first DELETE 204: exactly one DELETE of a value
// succeeds.
func TestDeleteRaces(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	ms, proxies := heldMasters(t, 2, e, "/races")
	values := map[string][]byte{}
	put := func(i int, key string, value []byte) {
		t.Helper()
		if status, body := ms.Do(i, http.MethodPut, key, value); status != http.StatusCreated {
			t.Fatalf("PUT %s through master %d: %d %s", key, i, status, body)
		}
		values[key] = value
	}

	t.Run("a PUT meets a DELETE", func(t *testing.T) {
		put(0, "/races/put", testenv.RandomBytes(3000))
		deleted := holdDeletes(t, ms, proxies, 0, "/races/put")
		if status, _ := ms.Do(1, http.MethodGet, "/races/put", nil); status != http.StatusNotFound {
			t.Fatalf("GET through master 1 while the DELETE finishes: %d, want 404", status)
		}
		put(1, "/races/put", testenv.RandomBytes(4000)) // a new generation: files of its own
		releaseAll(proxies)
		if status := <-deleted; status != http.StatusNoContent {
			t.Fatalf("the DELETE that took effect before the PUT answered %d, want 204", status)
		}
	})

	t.Run("two DELETEs", func(t *testing.T) {
		put(0, "/races/twice", testenv.RandomBytes(5000))
		first := holdDeletes(t, ms, proxies, 0, "/races/twice")
		for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodGet} {
			if status, body := ms.Do(1, method, "/races/twice", nil); status != http.StatusNotFound {
				t.Fatalf("%s through master 1 while the first DELETE finishes: %d %s, want 404", method, status, body)
			}
		}
		releaseAll(proxies)
		if status := <-first; status != http.StatusNoContent {
			t.Fatalf("first DELETE: %d, want 204", status)
		}
		values["/races/twice"] = nil
		if status, _ := ms.Do(1, http.MethodDelete, "/races/twice", nil); status != http.StatusNotFound {
			t.Fatalf("DELETE once the first is done: %d, want 404", status)
		}
	})
	ms.Check(values, 0, 1)
}

// TestPausedMasterFenced: master 0 is frozen (SIGSTOP) in the middle of a PUT of a new
// key, past its lease. Master 1 rolls the write back and stores the key anew (201).
// When master 0 wakes up and its client sends the rest of the body, it finishes its
// files on the volumes, but they are its write's own: its write fails, and the value
// acknowledged reads back bit-exact through both masters, with nothing else left on
// the volumes.
func TestPausedMasterFenced(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	ms := newMasters(t, e.DB("/fenced?lease=2s"))
	ms.Flags = []string{"-grace", "100ms"}
	ms.Start()
	ms.Start()
	const key = "/fenced/k"
	late, mine := testenv.RandomBytes(4*chunkSize), testenv.RandomBytes(3*chunkSize+1)

	body, send := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, ms.URLs[0]+key, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(late))
	answer := make(chan int, 1)
	go func() {
		resp, err := ms.client.Do(req)
		if err != nil {
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	if _, err := send.Write(late[:2*chunkSize]); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "master 0's write is not in the index", func() bool {
		return slices.Contains(ms.indexState().busyKeys, key)
	})
	ms.Pause(0)
	paused := time.Now()
	defer ms.Resume(0)

	// Master 1 answers 409 while master 0's lease lives, then rolls its write back.
	testenv.Eventually(t, 15*time.Second, "master 1 never took the key over", func() bool {
		status, _ := ms.Do(1, http.MethodPut, key, mine)
		return status == http.StatusCreated
	})
	t.Logf("master 1 stored the key %v after master 0 froze", time.Since(paused).Round(time.Millisecond))
	ms.Resume(0)
	if _, err := send.Write(late[2*chunkSize:]); err != nil {
		t.Fatalf("the rest of the late body: %v", err)
	}
	send.Close()
	status := <-answer
	t.Logf("master 0, woken up, answered its PUT with %d", status)
	if status >= 200 && status < 300 {
		t.Fatalf("the write rolled back answered %d", status)
	}
	for i := range 2 {
		if status, got := ms.Do(i, http.MethodGet, key, nil); status != http.StatusOK || !bytes.Equal(got, mine) {
			t.Fatalf("GET through master %d: %d, %d bytes (the late write's: %v), want the acknowledged %d bytes", i, status, len(got), bytes.Equal(got, late), len(mine))
		}
	}
	ms.Check(map[string][]byte{key: mine}, 0, 1)
}
