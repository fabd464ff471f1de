package testenv

// Real nginx volumes, started with the repository's volume.sh.

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Volume is one nginx started by volume.sh.
type Volume struct {
	T    testing.TB
	Addr string // host:port
	Dir  string
	Host string // a loopback address: 127.0.0.1 (empty), 127.0.0.2, ...
	Port int
	// Env is added to volume.sh's environment (DAVKV_SECRET, ...).
	Env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartVolume starts a volume serving a new temporary directory, with env added to
// volume.sh's environment.
func StartVolume(t testing.TB, env ...string) *Volume {
	t.Helper()
	return StartVolumeOn(t, "127.0.0.1", env...)
}

// StartVolumeOn is StartVolume bound to host, a loopback address (Linux answers all
// of 127/8 on lo): several of them stand for several machines.
func StartVolumeOn(t testing.TB, host string, env ...string) *Volume {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
			t.Fatal("nginx is not installed: run the tests with 'make test', which installs it")
		}
	}
	v := &Volume{T: t, Dir: t.TempDir(), Host: host, Env: env}
	var err error
	for range 5 { // another process may take the port between freePort and nginx
		v.Port = FreePortOn(t, host)
		if err = v.Start(); err == nil {
			t.Cleanup(v.Stop)
			return v
		}
	}
	t.Fatalf("start volume: %v", err)
	return nil
}

// Start runs nginx (again) on the volume's port and waits until it answers.
func (v *Volume) Start() error {
	if v.cmd != nil {
		return fmt.Errorf("volume %s is already running", v.Addr)
	}
	v.Host = cmp.Or(v.Host, "127.0.0.1")
	v.Addr = net.JoinHostPort(v.Host, fmt.Sprint(v.Port))
	script, err := RepoFile("volume.sh")
	if err != nil {
		return err
	}
	cmd := exec.Command("bash", script, v.Dir)
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("PORT=%d", v.Port), "BIND="+v.Host), v.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	Started(cmd, "volume.sh "+v.Dir)
	v.cmd, v.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(v.done) }()
	// A volume with TLS is polled over TLS; whether its certificate is trusted is the
	// test's to check, not the harness's.
	probe, scheme := http.DefaultClient, "http"
	if slices.ContainsFunc(v.Env, func(kv string) bool { return strings.HasPrefix(kv, "DAVKV_TLS_CERT=") }) {
		scheme = "https"
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		defer tr.CloseIdleConnections()
		probe = &http.Client{Transport: tr}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-v.done:
			log, _ := os.ReadFile(filepath.Join(v.Dir, ".nginx", "error.log"))
			return fmt.Errorf("nginx exited: %s %s", out, log)
		default:
		}
		resp, err := probe.Head(scheme + "://" + v.Addr + "/")
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
func (v *Volume) Stop() {
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
func (v *Volume) waitGone() {
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
func (v *Volume) Kill() {
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	<-v.done
	v.waitGone()
}

// Pause freezes nginx with SIGSTOP: it keeps its connections but answers nothing.
func (v *Volume) Pause() { syscall.Kill(-v.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume lets a paused nginx go on.
func (v *Volume) Resume() { syscall.Kill(-v.cmd.Process.Pid, syscall.SIGCONT) }

// Files returns the paths of all value files on the volume, relative to its root.
func (v *Volume) Files() []string {
	v.T.Helper()
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
		v.T.Fatal(err)
	}
	return files
}

// TempFiles returns the request bodies nginx is still holding in its temp directory.
func (v *Volume) TempFiles() []string {
	var files []string
	filepath.WalkDir(filepath.Join(v.Dir, ".nginx", "body"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// RepoFile returns the path of name at the root of the repository (where go.mod is),
// from the directory of whichever package's test runs.
func RepoFile(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, name), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory, for %s", name)
		}
		dir = parent
	}
}
