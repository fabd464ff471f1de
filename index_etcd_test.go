package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// testEtcd is a real etcd cluster from Debian's etcd-server, on loopback ports, its
// data in a temporary directory.
type testEtcd struct {
	dir     string
	clients []string // host:port of each member's client URL
	args    [][]string
	members []*exec.Cmd
}

// startEtcd starts an n-member etcd cluster and waits until it answers; cleanup
// stops it.
func startEtcd(t testing.TB, n int) *testEtcd {
	t.Helper()
	e, err := launchEtcd(n)
	if e != nil {
		t.Cleanup(e.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// launchEtcd is startEtcd for TestMain, which has no test to stop it with. A cluster
// that does not answer within 20 s (a member that could not bind its port, a machine
// too loaded) is stopped and started anew on other ports, three times at most.
func launchEtcd(n int) (*testEtcd, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, errors.New("etcd is not installed: run the tests with 'make test', which installs etcd-server")
	}
	for range 3 {
		var e *testEtcd
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
func tryEtcd(bin string, n int) (*testEtcd, error) {
	var err error
	e := &testEtcd{members: make([]*exec.Cmd, n)}
	var peers, initial []string
	for i := range n {
		e.clients = append(e.clients, fmt.Sprintf("127.0.0.1:%d", freePort(nil)))
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", freePort(nil)))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	if e.dir, err = os.MkdirTemp("", "davkv-etcd"); err != nil {
		return nil, err
	}
	for i := range n {
		e.args = append(e.args, []string{bin, "--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(e.dir, fmt.Sprint(i)),
			"--listen-client-urls", "http://" + e.clients[i], "--advertise-client-urls", "http://" + e.clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "davkv-test", "--logger", "zap", "--log-level", "error"})
		if err := e.Start(i); err != nil {
			return e, err
		}
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: e.endpoints(), DialTimeout: 5 * time.Second})
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
func (e *testEtcd) Start(i int) error {
	cmd := exec.Command(e.args[i][0], e.args[i][1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	started(cmd, "etcd "+e.args[i][2])
	e.members[i] = cmd
	return nil
}

// Stop kills every member and removes their data.
func (e *testEtcd) Stop() {
	for i := range e.members {
		e.Kill(i)
	}
	os.RemoveAll(e.dir)
}

// Kill kills member i with SIGKILL.
func (e *testEtcd) Kill(i int) {
	if cmd := e.members[i]; cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
		e.members[i] = nil
	}
}

// Leader returns the member that leads the cluster now.
func (e *testEtcd) Leader(t testing.TB) int {
	client, err := clientv3.New(clientv3.Config{Endpoints: e.endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i, c := range e.clients {
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

func (e *testEtcd) endpoints() []string {
	var out []string
	for _, c := range e.clients {
		out = append(out, "http://"+c)
	}
	return out
}

// DB is the -db of an index under prefix in this cluster.
func (e *testEtcd) DB(prefix string) string {
	return etcdScheme + strings.Join(e.clients, ",") + prefix
}

// TestParseEtcdDB: -db etcd://HOST:PORT[,HOST:PORT...]/PREFIX.
func TestParseEtcdDB(t *testing.T) {
	tests := []struct {
		db        string
		endpoints string
		prefix    string
		lease     time.Duration
		ok        bool
	}{
		{"etcd://127.0.0.1:2379/davkv", "http://127.0.0.1:2379", "/davkv/", etcdDefaultLease, true},
		{"etcd://a:1,b:2,c:3/team/davkv/", "http://a:1 http://b:2 http://c:3", "/team/davkv/", etcdDefaultLease, true},
		{"etcd://a:1/davkv?lease=3s", "http://a:1", "/davkv/", 3 * time.Second, true},
		{"etcd://a:1/davkv?lease=1s", "", "", 0, false},
		{"etcd://a:1/davkv?lease=x", "", "", 0, false},
		{"etcd://a:1/davkv?ttl=3s", "", "", 0, false},
		{"etcd://a:1", "", "", 0, false},
		{"etcd://a/davkv", "", "", 0, false},
		{"etcd:///davkv", "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.db, func(t *testing.T) {
			e, err := parseEtcdDB(tt.db)
			if (err == nil) != tt.ok || strings.Join(e.Endpoints, " ") != tt.endpoints || e.Prefix != tt.prefix || (tt.ok && e.Lease != tt.lease) {
				t.Fatalf("parseEtcdDB = %+v, %v", e, err)
			}
		})
	}
}

// TestEtcdIndexStats: the statistics follow every write in etcd too, and stay exact
// when two masters (two clients) write at once and contend for the shards.
func TestEtcdIndexStats(t *testing.T) {
	e := startEtcd(t, 3)
	open := func() Index {
		index, err := OpenIndex(e.DB("/stats"), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { index.Close() })
		return index
	}
	a, b := open(), open()
	final := checkIndexStats(t, a)
	var wg sync.WaitGroup
	for w, index := range []Index{a, b} {
		wg.Go(func() {
			for i := range 40 {
				rec := Record{State: StateLive, Size: 10}
				if err := index.Put(fmt.Sprintf("/many/%d/%d", w, i), &rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	final.Keys[StateLive] += 80
	final.Bytes[StateLive] += 800
	for _, index := range []Index{a, b} {
		if got := indexStats(t, index); got != final {
			t.Fatalf("after two writers: %+v, want %+v", got, final)
		}
	}
}

// TestMasterOnEtcd: a master whose index is in etcd stores, lists, unlinks and deletes
// keys and keeps S3 buckets, as on LevelDB, and a rebuild writes into etcd.
func TestMasterOnEtcd(t *testing.T) {
	e := startEtcd(t, 3)
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.DB = e.DB("/master") })
	for i := range 5 {
		c.Put(fmt.Sprintf("/etcd/%d", i), []byte(fmt.Sprint("value ", i)))
	}
	if status, got := c.Get("/etcd/3"); status != http.StatusOK || string(got) != "value 3" {
		t.Fatalf("GET: %d %q", status, got)
	}
	if resp := c.Do("UNLINK", "/etcd/1", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("UNLINK: %d", resp.StatusCode)
	}
	if resp := c.Do(http.MethodDelete, "/etcd/2", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if page := listKeys(t, c, "/etcd/?list"); strings.Join(page.Keys, " ") != "/etcd/0 /etcd/3 /etcd/4" {
		t.Fatalf("?list: %q", page.Keys)
	}
	if resp := c.Do(http.MethodPut, "/bucket", nil, "Authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"); resp.StatusCode != http.StatusOK {
		t.Fatalf("S3 CreateBucket: %d", resp.StatusCode)
	}
	if m := scrape(t, c); m[`davkv_keys{state="live"}`] != 3 || m[`davkv_keys{state="unlinked"}`] != 1 {
		t.Fatalf("keys: live %v, unlinked %v", m[`davkv_keys{state="live"}`], m[`davkv_keys{state="unlinked"}`])
	}
	c.StopMaster()
	var out bytes.Buffer
	if err := runRebuild(context.Background(), rebuildConfig(c, e.DB("/rebuilt")), &out, testLogger(t)); err != nil {
		t.Fatalf("rebuild into etcd: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "rebuild: 4 keys (1 unlinked)") {
		t.Fatalf("rebuild: %s", out.String())
	}
	c.Config.DB = e.DB("/rebuilt")
	c.startMaster()
	if status, got := c.Get("/etcd/4"); status != http.StatusOK || string(got) != "value 4" {
		t.Fatalf("GET from the rebuilt index: %d %q", status, got)
	}
}
