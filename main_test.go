package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// davkvBinary is the davkv command built once for the tests that run it as a process.
var davkvBinary string

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
	code := m.Run()
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
		})
	}
}

// startServer runs the binary as a master and waits for it to answer /health.
func startServer(t *testing.T, args ...string) (*exec.Cmd, *lockedBuffer, string) {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(davkvBinary, append(args, "-port", fmt.Sprint(port))...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 10*time.Second, "master did not answer /health", func() bool {
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
	vols := []string{startVolume(t).Addr, startVolume(t).Addr, startVolume(t).Addr}
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

	code, second := davkv(t, "-volumes", strings.Join(vols, ","), "-db", db, "-port", fmt.Sprint(freePort(t)), "server")
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

// readmeExample is a `curl` line of the README with the status its comment promises.
var readmeExample = regexp.MustCompile(`^(.*curl .*?)\s+# (\d{3})\b`)

// TestReadme runs the README's `make run` and then every curl example in it, checking
// that each answers the status its comment says.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make run")
	}
	for _, tool := range []string{"make", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run the tests with 'make test'", tool)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"make run", "make test"} {
		if !bytes.Contains(readme, []byte(cmd)) {
			t.Fatalf("README lacks %q", cmd)
		}
	}
	var examples [][]string
	var online, offline []string // ./davkv lines, with the cluster up and after it stops
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		if m := readmeExample.FindStringSubmatch(line); m != nil {
			examples = append(examples, m[1:])
		}
		if strings.HasPrefix(line, "./davkv ") {
			if strings.Contains(line, "-db ./data/indexdb") { // the master's index: it must be stopped
				offline = append(offline, line)
			} else {
				online = append(online, line)
			}
		}
	}
	if len(examples) < 10 || len(online) < 2 || len(offline) < 2 {
		t.Fatalf("found %d curl examples, %d and %d ./davkv examples in the README", len(examples), len(online), len(offline))
	}

	port, vports := freePort(t), []string{fmt.Sprint(freePort(t)), fmt.Sprint(freePort(t)), fmt.Sprint(freePort(t))}
	data := t.TempDir()
	run := exec.Command("make", "run")
	run.Env = append(os.Environ(), "DATA="+data, fmt.Sprintf("PORT=%d", port), "VOLUME_PORTS="+strings.Join(vports, " "))
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	run.Stdout, run.Stderr = out, out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { run.Wait(); close(exited) }()
	stop := func() {
		syscall.Kill(-run.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("make run did not stop on SIGTERM")
		}
	}
	t.Cleanup(stop)
	eventually(t, 60*time.Second, "make run did not start a cluster", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && strings.Contains(out.String(), "cluster up")
	})

	master := fmt.Sprintf("127.0.0.1:%d", port)
	// davkv runs a README line of the binary with this cluster's ports and paths.
	davkvLine := func(line string) {
		line = strings.ReplaceAll(line, "localhost:3000", master)
		for i, p := range vports {
			line = strings.ReplaceAll(line, fmt.Sprintf("localhost:300%d", i+1), "localhost:"+p)
		}
		line = strings.ReplaceAll(line, "./data/", data+"/")
		line = strings.ReplaceAll(line, "/tmp/davkv-rebuilt", filepath.Join(data, "rebuilt"))
		out, err := exec.Command("bash", "-c", line).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", line, err, out)
		}
	}
	for _, ex := range examples {
		line := strings.ReplaceAll(ex[0], "localhost:3000", master)
		script := line + ` -s -o /dev/null -w '%{http_code}'`
		cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
		got, err := cmd.Output()
		if err != nil || string(got) != ex[1] {
			t.Errorf("%s\n  got %q (%v), want %s", ex[0], got, err, ex[1])
		}
	}
	for _, line := range online {
		davkvLine(line)
	}
	stop()
	eventually(t, 5*time.Second, "processes of make run still running", func() bool {
		return syscall.Kill(-run.Process.Pid, 0) != nil
	})
	if _, err := os.Stat(filepath.Join(data, "indexdb")); err != nil {
		t.Errorf("make run kept no index in DATA: %v", err)
	}
	// The offline commands need the volumes but not the master.
	for _, p := range vports {
		v := &testVolume{t: t, Dir: filepath.Join(data, "volume"+p)}
		fmt.Sscan(p, &v.port)
		if err := v.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Stop)
	}
	for _, line := range offline {
		davkvLine(line)
	}
	// Nothing of the cluster may outlive it.
}
