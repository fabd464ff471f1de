package main

// The integration harness: real nginx volumes started with volume.sh and a real master,
// all on free loopback ports in temporary directories, stopped when the test ends. Fake
// servers stand in only for what nginx cannot be made to do.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// testCluster is a master over n volumes.
type testCluster struct {
	t      testing.TB
	Vols   []*testenv.Volume
	Master *Master
	URL    string // http://127.0.0.1:port
	Config ServerConfig
	// Logs has everything the masters logged, which also goes to the test's output.
	Logs   lockedBuffer
	client *http.Client // follows redirects, like curl -L
	raw    *http.Client // does not follow redirects
	stop   func()
}

// startCluster starts n volumes and a master with 3 replicas (or fewer, if n is
// smaller); configure may change the master's configuration.
func startCluster(t testing.TB, n int, configure func(*ServerConfig)) *testCluster {
	t.Helper()
	return startClusterEnv(t, n, nil, configure)
}

// startClusterEnv is startCluster with env added to every volume's environment.
func startClusterEnv(t testing.TB, n int, env []string, configure func(*ServerConfig)) *testCluster {
	t.Helper()
	var vols []*testenv.Volume
	for range n {
		vols = append(vols, testenv.StartVolume(t, env...))
	}
	return startClusterOf(t, vols, configure)
}

// startClusterOf starts a master with 3 replicas (or fewer, if there are fewer
// volumes) on vols, already started; configure may change its configuration.
func startClusterOf(t testing.TB, vols []*testenv.Volume, configure func(*ServerConfig)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, Vols: vols}
	var addrs []string
	for _, v := range vols {
		addrs = append(addrs, v.Addr)
	}
	n := len(vols)
	c.Config = ServerConfig{
		ClusterConfig: ClusterConfig{Volumes: addrs, DB: testDB(t), Replicas: min(3, n), Subvolumes: 10},
		MD5Sum:        true,
		VolTimeout:    time.Second,
	}
	if configure != nil {
		configure(&c.Config)
	}
	c.startMaster()
	// The tests' clients are net/http's, independent of the code under test.
	tr := &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	c.client = &http.Client{Transport: tr}
	c.raw = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return c
}

func (c *testCluster) startMaster() {
	c.t.Helper()
	m, err := NewMaster(c.Config, slog.New(slog.NewTextHandler(io.MultiWriter(c.t.Output(), &c.Logs), nil)))
	if err != nil {
		c.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, ln) }()
	c.Master, c.URL = m, "http://"+ln.Addr().String()
	stopped := false
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-served; err != nil {
			c.t.Errorf("master: %v", err)
		}
	}
	c.t.Cleanup(c.stop)
}

// RestartMaster stops the master and starts a new one on the same index, with
// c.Config as it is now.
func (c *testCluster) RestartMaster() {
	c.stop()
	c.startMaster()
}

// StopMaster stops the master, closing its index, so that offline commands can open it.
func (c *testCluster) StopMaster() { c.stop() }

// Record reads key's index record through the running master.
func (c *testCluster) Record(key string) index.Record {
	c.t.Helper()
	rec, err := c.Master.index.Get(key)
	if err != nil {
		c.t.Fatalf("record of %s: %v", key, err)
	}
	return rec
}

// VolumeFiles returns the set of volume addresses that hold path.
func (c *testCluster) VolumeFiles(path string) []string {
	var on []string
	for _, v := range c.Vols {
		if _, err := os.Stat(filepath.Join(v.Dir, path)); err == nil {
			on = append(on, v.Addr)
		}
	}
	slices.Sort(on)
	return on
}

// testLogger is a logger that writes to the test's output.
func testLogger(t testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// Do sends a request to the master without following redirects.
func (c *testCluster) Do(method, key string, body io.Reader, header ...string) *http.Response {
	c.t.Helper()
	return c.do(c.raw, method, key, body, header...)
}

// Fetch is Do following redirects, like curl -L.
func (c *testCluster) Fetch(method, key string, body io.Reader, header ...string) *http.Response {
	c.t.Helper()
	return c.do(c.client, method, key, body, header...)
}

func (c *testCluster) do(client *http.Client, method, key string, body io.Reader, header ...string) *http.Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.URL+key, body)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, key, err)
	}
	c.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// Put stores value at key and fails the test unless the master answers 201.
func (c *testCluster) Put(key string, value []byte) {
	c.t.Helper()
	resp := c.Do(http.MethodPut, key, strings.NewReader(string(value)))
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("PUT %s: %d %s", key, resp.StatusCode, b)
	}
}

// Get reads key through its redirect and returns the status and the bytes.
func (c *testCluster) Get(key string) (int, []byte) {
	c.t.Helper()
	resp := c.Fetch(http.MethodGet, key, nil)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("GET %s: %v", key, err)
	}
	return resp.StatusCode, b
}

// AllFiles returns every value file on every volume, as volume/path.
func (c *testCluster) AllFiles() []string {
	var all []string
	for _, v := range c.Vols {
		for _, f := range v.Files() {
			all = append(all, v.Addr+"/"+f)
		}
	}
	slices.Sort(all)
	return all
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func listKeys(t *testing.T, c *testCluster, path string) ListPage {
	t.Helper()
	resp := c.Do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, readAll(t, resp.Body))
	}
	var page ListPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page
}

// fakeVolume answers every PUT with status after reading the body: a fault, such as a
// full disk, that a stock nginx cannot be made to produce on demand.
func fakeVolume(t *testing.T, status int) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(status)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.Close)
	return s
}

// fakeServer serves each connection on a loopback port with handle, for the faults
// nginx can't be made to show, and returns its address.
func fakeServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				handle(conn)
			})
		}
	})
	return ln.Addr().String()
}

// putAll stores n values under prefix and fails the test unless every PUT gets a 201.
func putAll(t *testing.T, c *testCluster, prefix string, n, size int) map[string][]byte {
	t.Helper()
	values := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("%s/%d", prefix, i)
		values[key] = testenv.RandomBytes(size + i)
		c.Put(key, values[key])
	}
	return values
}

// checkReplicas checks that every key has want replicas, none on the volume avoid, and
// reads back whole.
func checkReplicas(t *testing.T, c *testCluster, values map[string][]byte, want int, avoid string) {
	t.Helper()
	for key, value := range values {
		rec := c.Record(key)
		if len(rec.Volumes) != want || slices.Contains(rec.Volumes, avoid) {
			t.Fatalf("%s on %q, want %d volumes without %s", key, rec.Volumes, want, avoid)
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s: %d", key, status)
		}
	}
}
