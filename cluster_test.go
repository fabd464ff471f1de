package main

// The integration harness: real nginx volumes started with volume.sh and a real master,
// all on free loopback ports in temporary directories, stopped when the test ends. Fake
// servers stand in only for what nginx cannot be made to do.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePort returns a port free on 127.0.0.1 a moment ago, for a server that binds it
// itself. t may be nil (in TestMain): then it panics if there is none.
func freePort(t testing.TB) int {
	return freePortOn(t, "127.0.0.1")
}

// testPorts hands out the ports of freePortOn: below the kernel's ephemeral range
// (32768 and up), which a port of :0 or any outgoing connection may take between
// freePort and the server's bind (an etcd member failed to start in CI so), and each
// once per test binary. It starts at a random port so that test binaries running at
// once rarely meet.
var testPorts = struct {
	sync.Mutex
	next int
}{next: 20000 + rand.IntN(12000)}

// freePortOn is freePort on host, a loopback address.
func freePortOn(t testing.TB, host string) int {
	testPorts.Lock()
	defer testPorts.Unlock()
	for range 12768 {
		port := testPorts.next
		testPorts.next++
		if testPorts.next >= 32768 {
			testPorts.next = 20000
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	if t == nil {
		panic("no free port on " + host)
	}
	t.Fatalf("no free port on %s", host)
	return 0
}

// testProcesses are the servers the tests started (nginx, etcd, masters, make run),
// each the leader of a process group of its own: TestMain checks at the end that every
// group is gone, so that no test leaves a process behind.
var testProcesses = struct {
	sync.Mutex
	started []startedProcess
}{}

type startedProcess struct {
	pgid int
	what string
}

// started records cmd, begun in a process group of its own (Setpgid), as what.
func started(cmd *exec.Cmd, what string) {
	testProcesses.Lock()
	defer testProcesses.Unlock()
	testProcesses.started = append(testProcesses.started, startedProcess{cmd.Process.Pid, what})
}

// leftRunning kills the process groups the tests started and left running, after a
// moment for those just stopped, and says which they were.
func leftRunning() []string {
	testProcesses.Lock()
	defer testProcesses.Unlock()
	alive := func(p startedProcess) bool { return syscall.Kill(-p.pgid, 0) == nil }
	for range 50 {
		if !slices.ContainsFunc(testProcesses.started, alive) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	var left []string
	for _, p := range testProcesses.started {
		if alive(p) {
			left = append(left, fmt.Sprintf("%s (process group %d)", p.what, p.pgid))
			syscall.Kill(-p.pgid, syscall.SIGKILL)
		}
	}
	return left
}

// testVolume is one nginx started by volume.sh.
type testVolume struct {
	t    testing.TB
	Addr string // host:port
	Dir  string
	host string // a loopback address: 127.0.0.1 (empty), 127.0.0.2, ...
	port int
	// env is added to volume.sh's environment (DAVKV_SECRET, ...).
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

// startVolume starts a volume serving a new temporary directory, with env added to
// volume.sh's environment.
func startVolume(t testing.TB, env ...string) *testVolume {
	t.Helper()
	return startVolumeOn(t, "127.0.0.1", env...)
}

// startVolumeOn is startVolume bound to host, a loopback address (Linux answers all
// of 127/8 on lo): several of them stand for several machines.
func startVolumeOn(t testing.TB, host string, env ...string) *testVolume {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Fatal("nginx is not installed: run the tests with 'make test', which installs it")
		}
	}
	v := &testVolume{t: t, Dir: t.TempDir(), host: host, env: env}
	var err error
	for range 5 { // another process may take the port between freePort and nginx
		v.port = freePortOn(t, host)
		if err = v.Start(); err == nil {
			t.Cleanup(v.Stop)
			return v
		}
	}
	t.Fatalf("start volume: %v", err)
	return nil
}

// Start runs nginx (again) on the volume's port and waits until it answers.
func (v *testVolume) Start() error {
	if v.cmd != nil {
		return fmt.Errorf("volume %s is already running", v.Addr)
	}
	v.host = cmp.Or(v.host, "127.0.0.1")
	v.Addr = net.JoinHostPort(v.host, fmt.Sprint(v.port))
	cmd := exec.Command("bash", "volume.sh", v.Dir)
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("PORT=%d", v.port), "BIND="+v.host), v.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	started(cmd, "volume.sh "+v.Dir)
	v.cmd, v.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(v.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-v.done:
			log, _ := os.ReadFile(filepath.Join(v.Dir, ".nginx", "error.log"))
			return fmt.Errorf("nginx exited: %s %s", out, log)
		default:
		}
		resp, err := http.Head("http://" + v.Addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	v.Stop()
	return errors.New("nginx did not answer within 10s")
}

// Stop stops nginx and waits until it is gone.
func (v *testVolume) Stop() {
	if v.cmd == nil {
		return
	}
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGCONT)
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
		<-v.done
	}
	v.waitGone()
}

// waitGone waits until no nginx worker of the volume's process group outlives its
// master, then forgets the process.
func (v *testVolume) waitGone() {
	for range 100 {
		if syscall.Kill(-v.cmd.Process.Pid, 0) != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.cmd = nil
}

// Kill kills nginx and its workers with SIGKILL, as a crash would, and waits until they
// are gone.
func (v *testVolume) Kill() {
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	<-v.done
	v.waitGone()
}

// Pause freezes nginx with SIGSTOP: it keeps its connections but answers nothing.
func (v *testVolume) Pause() { syscall.Kill(-v.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume lets a paused nginx go on.
func (v *testVolume) Resume() { syscall.Kill(-v.cmd.Process.Pid, syscall.SIGCONT) }

// Files returns the paths of all value files on the volume, relative to its root.
func (v *testVolume) Files() []string {
	v.t.Helper()
	var files []string
	err := filepath.WalkDir(v.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".nginx" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(v.Dir, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		v.t.Fatal(err)
	}
	return files
}

// TempFiles returns the request bodies nginx is still holding in its temp directory.
func (v *testVolume) TempFiles() []string {
	var files []string
	filepath.WalkDir(filepath.Join(v.Dir, ".nginx", "body"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// testCluster is a master over n volumes.
type testCluster struct {
	t      testing.TB
	Vols   []*testVolume
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
	var vols []*testVolume
	for range n {
		vols = append(vols, startVolume(t, env...))
	}
	return startClusterOf(t, vols, configure)
}

// startClusterOf starts a master with 3 replicas (or fewer, if there are fewer
// volumes) on vols, already started; configure may change its configuration.
func startClusterOf(t testing.TB, vols []*testVolume, configure func(*ServerConfig)) *testCluster {
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
func (c *testCluster) Record(key string) Record {
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

// Eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
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
		values[key] = randomBytes(size + i)
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
