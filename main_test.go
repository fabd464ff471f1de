package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// davkvBinary is the davkv command built once for the tests that run it as a process.
var davkvBinary string

// testIndexEnv names the index the tests' clusters use: unset, LevelDB in each test's
// temporary directory; "etcd", a prefix each in one etcd cluster that TestMain
// starts (testEtcdIndex); "postgres", a schema each in one PostgreSQL server that it
// starts (testPostgresIndex); so that the whole suite runs on every backend.
const testIndexEnv = "DAVKV_TEST_INDEX"

var (
	testEtcdIndex     *testenv.Etcd
	testPostgresIndex *testenv.Postgres
	testIndexes       atomic.Int64
)

// testDB returns the index for a cluster of t's: see testIndexEnv.
func testDB(t testing.TB) string {
	switch {
	case testEtcdIndex != nil:
		name := strings.NewReplacer("/", "_", "?", "_").Replace(t.Name())
		return testEtcdIndex.DB(fmt.Sprintf("/%s_%d", name, testIndexes.Add(1)))
	case testPostgresIndex != nil:
		return testPostgresIndex.DB(fmt.Sprintf("t%d", testIndexes.Add(1)))
	}
	return filepath.Join(t.TempDir(), "index")
}

// levelDBOnly skips t when the suite runs on another backend: t is about LevelDB
// itself.
func levelDBOnly(t *testing.T, why string) {
	if testEtcdIndex != nil || testPostgresIndex != nil {
		t.Skip("LevelDB only: " + why)
	}
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "davkv-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	davkvBinary = filepath.Join(dir, "davkv")
	if out, err := exec.Command("go", "build", "-o", davkvBinary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	switch idx := os.Getenv(testIndexEnv); idx {
	case "":
	case "etcd":
		if testEtcdIndex, err = testenv.LaunchEtcd(3); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "postgres":
		if testPostgresIndex, err = testenv.LaunchPostgres(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want etcd, postgres, or nothing for LevelDB\n", testIndexEnv, idx)
		os.Exit(1)
	}
	code := m.Run()
	if testEtcdIndex != nil {
		testEtcdIndex.Stop()
	}
	if testPostgresIndex != nil {
		testPostgresIndex.Stop()
	}
	code = testenv.CheckLeft(code)
	os.RemoveAll(dir)
	os.Exit(code)
}

// davkv runs the binary to completion (10 s at most) and returns its exit status and
// stderr.
func davkv(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, davkvBinary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("davkv %q did not exit", args)
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestCommandLineErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "db")
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	vols := "-volumes=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"
	tests := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"no command", nil, 2, "usage: davkv"},
		{"only flags", []string{"-db", db}, 2, "usage: davkv"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"server", "-nope"}, 2, "flag provided but not defined: -nope"},
		{"stray argument", []string{vols, "-db", db, "server", "extra"}, 2, `unexpected argument "extra"`},
		{"missing db", []string{vols, "server"}, 1, "davkv: missing -db"},
		{"missing volumes", []string{"-db", db, "server"}, 1, "davkv: missing -volumes"},
		{"too few volumes", []string{"-volumes", "127.0.0.1:1,127.0.0.1:2", "-db", db, "server"}, 1, "davkv: -replicas 3 needs at least 3 volumes, got 2"},
		{"bad volume", []string{"-volumes", "http://x:1,b:2,c:3", "-db", db, "server"}, 1, `davkv: volume "http://x:1" must be host:port`},
		{"unwritable db", []string{vols, "-db", filepath.Join(notDir, "db"), "server"}, 1, "davkv: open index"},
		{"bad port", []string{vols, "-db", db, "-port", "70000", "server"}, 1, "davkv: -port 70000 is not a TCP port"},
		{"unknown kind of index", []string{vols, "-db", "mysql://u@127.0.0.1/db", "server"}, 1, `davkv: -db "mysql://u@127.0.0.1/db": unknown kind of index "mysql://"`},
		{"postgres unreachable", []string{vols, "-db", "postgres://u:secret@127.0.0.1:1/db", "server"}, 1, "davkv: open index postgres://u:xxxxx@127.0.0.1:1/db: index create the schema: the index is unavailable"},
		{"missing TLS certificate", []string{vols, "-db", db, "-tls-cert", "/nonexistent/tls.crt", "-tls-key", "/nonexistent/tls.key", "server"}, 1, "davkv: tls certificate /nonexistent/tls.crt and key /nonexistent/tls.key: open /nonexistent/tls.crt: no such file or directory"},
		{"TLS key without certificate", []string{vols, "-db", db, "-tls-key", "/nonexistent/tls.key", "server"}, 1, "davkv: -tls-cert and -tls-key go together"},
		{"auth without keys", []string{vols, "-db", db, "-auth", "-s3keys", "", "server"}, 1, "davkv: -auth needs an administrator's key"},
		{"bad postgres option", []string{vols, "-db", "postgres://u@127.0.0.1:1/db?schema=A", "server"}, 1, `davkv: -db "postgres://u@127.0.0.1:1/db?schema=A": schema="A" is not a lowercase PostgreSQL name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := davkv(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, tt.code, tt.want)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Fatalf("stack trace: %s", stderr)
			}
			if tt.code == 1 && strings.Count(stderr, "\n") != 1 {
				t.Fatalf("want one line, got %q", stderr)
			}
			if strings.Contains(stderr, "secret") {
				t.Fatalf("the password shows: %q", stderr)
			}
			for _, dir := range []string{"mysql:", "postgres:"} { // a URL taken for a LevelDB directory
				if _, err := os.Stat(dir); err == nil {
					os.RemoveAll(dir)
					t.Fatalf("%s made in the working directory", dir)
				}
			}
		})
	}
}

// startServer runs the binary as a master and waits for it to answer /health.
func startServer(t *testing.T, args ...string) (*exec.Cmd, *lockedBuffer, string) {
	t.Helper()
	return startServerOn(t, testenv.FreePort(t), args...)
}

// startServerOn is startServer on port: a master restarted where its clients expect it.
func startServerOn(t *testing.T, port int, args ...string) (*exec.Cmd, *lockedBuffer, string) {
	t.Helper()
	cmd := exec.Command(davkvBinary, append(args, "-port", fmt.Sprint(port))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Started(cmd, "davkv "+strings.Join(args, " "))
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Eventually(t, 10*time.Second, "master did not answer /health", func() bool {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return cmd, stderr, url
}

// TestServerProcess runs the master as a process, with flags after the command: it
// serves, refuses a second master on the same index, and exits 0 on SIGTERM.
func TestServerProcess(t *testing.T) {
	vols := []string{testenv.StartVolume(t).Addr, testenv.StartVolume(t).Addr, testenv.StartVolume(t).Addr}
	db := filepath.Join(t.TempDir(), "db")
	cmd, stderr, url := startServer(t, "server", "-volumes", strings.Join(vols, ","), "-db", db, "-v")

	resp, err := http.Post(url+"/k", "", nil) // not a davkv method
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodPut, url+"/k", strings.NewReader("v"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %v %v", resp, err)
	}

	code, second := davkv(t, "-volumes", strings.Join(vols, ","), "-db", db, "-port", fmt.Sprint(testenv.FreePort(t)), "server")
	if code != 1 || !strings.HasPrefix(second, "davkv: open index") || strings.Count(second, "\n") != 1 {
		t.Fatalf("second master on the same index: exit %d, %q", code, second)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("master did not exit after SIGTERM")
	}
	for _, want := range []string{"master listening", "method=POST", "status=405", "shutting down"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr)
		}
	}
}

// lockedBuffer is a bytes.Buffer that a process may write while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
