package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Etcd is a real etcd cluster from Debian's etcd-server, on loopback ports, its
// data in a temporary directory.
type Etcd struct {
	dir     string
	Clients []string // host:port of each member's client URL
	args    [][]string
	members []*exec.Cmd
}

// StartEtcd starts an n-member etcd cluster and waits until it answers; cleanup
// stops it.
func StartEtcd(t testing.TB, n int) *Etcd {
	t.Helper()
	e, err := LaunchEtcd(n)
	if e != nil {
		t.Cleanup(e.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// LaunchEtcd is StartEtcd for TestMain, which has no test to stop it with. A cluster
// that does not answer within 20 s (a member that could not bind its port, a machine
// too loaded) is stopped and started anew on other ports, three times at most.
func LaunchEtcd(n int) (*Etcd, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, errors.New("etcd is not installed: run the tests with 'make test', which installs etcd-server")
	}
	for range 3 {
		var e *Etcd
		if e, err = tryEtcd(bin, n); err == nil {
			return e, nil
		}
		if e != nil {
			e.Stop()
		}
		fmt.Fprintf(os.Stderr, "test etcd: %v; starting it again on other ports\n", err)
	}
	return nil, err
}

// tryEtcd starts an n-member cluster on new ports and waits until it answers.
func tryEtcd(bin string, n int) (*Etcd, error) {
	var err error
	e := &Etcd{members: make([]*exec.Cmd, n)}
	var peers, initial []string
	for i := range n {
		e.Clients = append(e.Clients, fmt.Sprintf("127.0.0.1:%d", FreePort(nil)))
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", FreePort(nil)))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	if e.dir, err = os.MkdirTemp("", "davkv-etcd"); err != nil {
		return nil, err
	}
	for i := range n {
		e.args = append(e.args, []string{bin, "--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(e.dir, fmt.Sprint(i)),
			"--listen-client-urls", "http://" + e.Clients[i], "--advertise-client-urls", "http://" + e.Clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "davkv-test", "--logger", "zap", "--log-level", "error"})
		if err := e.Start(i); err != nil {
			return e, err
		}
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		return e, err
	}
	defer client.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Put(ctx, "/davkv-test-ready", "")
		cancel()
		if err == nil {
			return e, nil
		}
		if time.Now().After(deadline) {
			return e, fmt.Errorf("etcd did not start: %w", err)
		}
	}
}

// Start starts member i (again, on its data).
func (e *Etcd) Start(i int) error {
	cmd := exec.Command(e.args[i][0], e.args[i][1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	Started(cmd, "etcd "+e.args[i][2])
	e.members[i] = cmd
	return nil
}

// Stop kills every member and removes their data.
func (e *Etcd) Stop() {
	for i := range e.members {
		e.Kill(i)
	}
	os.RemoveAll(e.dir)
}

// Kill kills member i with SIGKILL.
func (e *Etcd) Kill(i int) {
	if cmd := e.members[i]; cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
		e.members[i] = nil
	}
}

// Leader returns the member that leads the cluster now.
func (e *Etcd) Leader(t testing.TB) int {
	client, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i, c := range e.Clients {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := client.Status(ctx, "http://"+c)
		cancel()
		if err == nil && st.Leader == st.Header.MemberId {
			return i
		}
	}
	t.Fatal("etcd has no leader")
	return -1
}

func (e *Etcd) Endpoints() []string {
	var out []string
	for _, c := range e.Clients {
		out = append(out, "http://"+c)
	}
	return out
}

// DB is the -db of an index under prefix in this cluster.
func (e *Etcd) DB(prefix string) string {
	return "etcd://" + strings.Join(e.Clients, ",") + prefix
}
