package main

// Several masters over one index in a real 3-member etcd cluster and the same real
// nginx volumes, each master its own process: conflicts between them, one of them
// killed, etcd members killed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// testMasters are master processes sharing one index and the same volumes.
type testMasters struct {
	t    *testing.T
	Vols []*testenv.Volume
	// Addrs are the volumes as the masters are given them: the volumes' own
	// addresses, or those of proxies in front of them.
	Addrs []string
	DB    string
	// Flags are added to every master's command line.
	Flags []string
	Cmds  []*exec.Cmd
	Logs  []*lockedBuffer
	// OldLogs are what each master logged before it was last restarted.
	OldLogs []string
	URLs    []string
	ports   []int
	client  *http.Client
}

// startMasters starts n masters over five new volumes and the index db.
func startMasters(t *testing.T, n int, db string) *testMasters {
	ms := newMasters(t, db)
	for range n {
		ms.Start()
	}
	return ms
}

// newMasters starts five volumes for masters over the index db, and no master yet.
func newMasters(t *testing.T, db string) *testMasters {
	ms := &testMasters{t: t, DB: db, client: &http.Client{Timeout: 20 * time.Second}}
	for range 5 {
		v := testenv.StartVolume(t)
		ms.Vols, ms.Addrs = append(ms.Vols, v), append(ms.Addrs, v.Addr)
	}
	return ms
}

// Start starts one more master and returns its number.
func (ms *testMasters) Start() int {
	port := testenv.FreePort(ms.t)
	cmd, log, url := startServerOn(ms.t, port, ms.args(append(slices.Clone(ms.Flags), "server")...)...)
	ms.Cmds, ms.Logs, ms.URLs, ms.ports = append(ms.Cmds, cmd), append(ms.Logs, log), append(ms.URLs, url), append(ms.ports, port)
	ms.OldLogs = append(ms.OldLogs, "")
	return len(ms.Cmds) - 1
}

// Restart starts master i again, on its port, once it is dead (see Kill).
func (ms *testMasters) Restart(i int) {
	ms.OldLogs[i] += ms.Logs[i].String()
	ms.Cmds[i], ms.Logs[i], _ = startServerOn(ms.t, ms.ports[i], ms.args(append(slices.Clone(ms.Flags), "server")...)...)
}

// Pause freezes master i with SIGSTOP, as a VM freeze or a long GC pause would.
func (ms *testMasters) Pause(i int) { ms.Cmds[i].Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused master go on.
func (ms *testMasters) Resume(i int) { ms.Cmds[i].Process.Signal(syscall.SIGCONT) }

// args are a command's flags for this cluster, then the command.
func (ms *testMasters) args(command ...string) []string {
	return append([]string{"-volumes", strings.Join(ms.Addrs, ","), "-db", ms.DB}, command...)
}

// Do sends a request to master i and returns its status (0 if it got no answer) and
// body, following a redirect to a volume.
func (ms *testMasters) Do(i int, method, key string, body []byte) (int, []byte) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ms.URLs[i]+key, r)
	if err != nil {
		ms.t.Fatal(err)
	}
	resp, err := ms.client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}

// Kill kills master i with SIGKILL.
func (ms *testMasters) Kill(i int) {
	ms.Cmds[i].Process.Signal(syscall.SIGKILL)
	ms.Cmds[i].Wait()
}

// Check checks the cluster against values (nil: the key must not exist) through
// every master in alive, then that the index holds no unfinished write and no
// pending work, that the volumes hold exactly the replicas of the keys that exist,
// and that verify finds the data whole.
func (ms *testMasters) Check(values map[string][]byte, alive ...int) {
	t := ms.t
	t.Helper()
	existing := 0
	for key, want := range values {
		if want != nil {
			existing++
		}
		for _, i := range alive {
			status, got := ms.Do(i, http.MethodGet, key, nil)
			switch {
			case want == nil && status != http.StatusNotFound:
				t.Errorf("GET %s through master %d: %d, want 404", key, i, status)
			case want != nil && (status != http.StatusOK || !bytes.Equal(got, want)):
				t.Errorf("GET %s through master %d: %d, %d bytes (equal: %v), want its %d bytes", key, i, status, len(got), bytes.Equal(got, want), len(want))
			}
		}
	}
	testenv.Eventually(t, 20*time.Second, "unfinished work left in the index", func() bool {
		st := ms.indexState()
		return st.writing == 0 && st.busy == 0 && st.pending == 0 && st.other == 0 && st.live == existing
	})
	files := func() (n int) {
		for _, v := range ms.Vols {
			n += len(v.Files())
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, "volumes hold files of no key", func() bool { return files() == 3*existing })
	for _, v := range ms.Vols {
		if tmp := v.TempFiles(); len(tmp) != 0 {
			t.Errorf("volume %s keeps %d half-received bodies", v.Addr, len(tmp))
		}
	}
	if code, out := davkv(t, ms.args("verify", "-deep")...); code != 0 {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	// Online, through a master, as with one: rebalance and verify take the keys' locks,
	// which are in the index.
	master := strings.TrimPrefix(ms.URLs[alive[len(alive)-1]], "http://")
	for _, command := range []string{"rebalance", "verify"} {
		if code, out := davkv(t, command, "-master", master); code != 0 {
			t.Fatalf("%s -master: exit %d\n%s", command, code, out)
		}
	}
}

// indexCount is what the index holds.
type indexCount struct {
	live, writing, other, busy, pending int
	busyKeys                            []string
}

func (ms *testMasters) indexState() indexCount {
	idx, err := openIndex(ms.DB, false)
	if err != nil {
		ms.t.Fatal(err)
	}
	defer idx.Close()
	var st indexCount
	err = idx.Scan("", "", func(key string, rec index.Record) (bool, error) {
		switch rec.State {
		case index.StateLive:
			st.live++
		case index.StateWriting:
			st.writing++
		default:
			st.other++
		}
		if rec.Busy {
			st.busy++
			st.busyKeys = append(st.busyKeys, key)
		}
		return true, nil
	})
	if err == nil {
		err = idx.Pending(func(string) (bool, error) { st.pending++; return true, nil })
	}
	if err != nil {
		ms.t.Fatal(err)
	}
	return st
}

// conflictValue is what master i writes to key k in a conflict: a small value or one
// of several chunks, so that the writes overlap.
func conflictValue(k, i int) []byte {
	size := 20 << 10
	if k%2 == 1 {
		size = 3 * chunkSize / 2
	}
	v := testenv.RandomBytes(size)
	v[0] = byte(i)
	return v
}

// TestMastersConflict: three masters over one etcd index write and delete the same
// keys at once. Of the PUTs of one key exactly one gets 201 and the others 403 (the
// key exists) or 409 (a write in flight); of the DELETEs exactly one gets 204 and
// the others 404 or 409. Every value acknowledged reads back bit-exact through every
// master, and nothing is left behind.
func TestMastersConflict(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	mastersConflict(t, startMasters(t, 3, e.DB("/conflict")))
}

// mastersConflict is TestMastersConflict on ms, three masters over any shared index.
func mastersConflict(t *testing.T, ms *testMasters) {
	values := map[string][]byte{}
	seen := map[int]int{}
	race := func(method, key string, k int) []int {
		statuses, sent := make([]int, 3), make([][]byte, 3)
		var wg sync.WaitGroup
		for i := range 3 {
			if method == http.MethodPut {
				sent[i] = conflictValue(k, i)
			}
			wg.Go(func() { statuses[i], _ = ms.Do(i, method, key, sent[i]) })
		}
		wg.Wait()
		won := -1
		for i, s := range statuses {
			seen[s]++
			switch {
			case s == http.StatusCreated && method == http.MethodPut, s == http.StatusNoContent && method == http.MethodDelete:
				if won >= 0 {
					t.Errorf("%s %s: masters %d and %d both won: %v", method, key, won, i, statuses)
				}
				won = i
			case s == http.StatusConflict, s == http.StatusForbidden && method == http.MethodPut, s == http.StatusNotFound && method == http.MethodDelete:
			default:
				t.Errorf("%s %s through master %d: %d", method, key, i, s)
			}
		}
		if won < 0 {
			t.Errorf("%s %s: no master won: %v", method, key, statuses)
		} else if method == http.MethodPut {
			values[key] = sent[won]
		} else {
			values[key] = nil
		}
		return statuses
	}
	for round := range 3 {
		for k := range 30 {
			key := fmt.Sprintf("/conflict/%d", k)
			if values[key] == nil {
				race(http.MethodPut, key, k)
			}
		}
		for k := round % 2; k < 30; k += 2 + round {
			race(http.MethodDelete, fmt.Sprintf("/conflict/%d", k), k)
		}
	}
	t.Logf("answers: %v", seen)
	if seen[http.StatusConflict] == 0 {
		t.Errorf("no request met another in flight: the test raced nothing")
	}
	ms.Check(values, 0, 1, 2)
}

// loadOutcome is what the load learnt of one key.
type loadOutcome struct {
	master  int
	value   []byte
	put     int // the PUT's status, 0 if it got no answer
	deleted int // the DELETE's status, if one was sent (0: no answer)
	delSent bool
	slowest time.Duration
}

// testLoad is PUTs, and DELETEs of every third key, through several masters.
type testLoad struct {
	ms       *testMasters
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	outcomes map[string]*loadOutcome
}

// startLoad starts workers on each of masters until Stop.
func (ms *testMasters) startLoad(workers int, masters ...int) *testLoad {
	l := &testLoad{ms: ms, stop: make(chan struct{}), outcomes: map[string]*loadOutcome{}}
	for w := range workers {
		l.wg.Go(func() {
			m := masters[w%len(masters)]
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("/load/%d/%d", w, i)
				o := &loadOutcome{master: m, value: testenv.RandomBytes(1000 + (i*7919+w*104729)%(3*chunkSize))}
				l.mu.Lock()
				l.outcomes[key] = o
				l.mu.Unlock()
				start := time.Now()
				status, _ := ms.Do(m, http.MethodPut, key, o.value)
				took := time.Since(start)
				l.mu.Lock()
				o.put, o.slowest = status, took
				l.mu.Unlock()
				if status == 0 {
					return // the master is gone
				}
				if i%3 != 0 || status != http.StatusCreated {
					continue
				}
				l.mu.Lock()
				o.delSent = true
				l.mu.Unlock()
				start = time.Now()
				status, _ = ms.Do(m, http.MethodDelete, key, nil)
				took = time.Since(start)
				l.mu.Lock()
				o.deleted, o.slowest = status, max(o.slowest, took)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// Stop stops the load.
func (l *testLoad) Stop() {
	close(l.stop)
	l.wg.Wait()
}

// Values returns what each key should hold (nil: nothing), for testMasters.Check; a
// key whose request got no answer, or an error, holds what it holds now, which must
// be all or nothing.
func (l *testLoad) Values(values map[string][]byte) {
	t := l.ms.t
	for key, o := range l.outcomes {
		switch {
		case o.deleted == http.StatusNoContent:
			values[key] = nil
		case o.put == http.StatusCreated && !o.delSent:
			values[key] = o.value
		default: // unanswered, or failed: all or nothing
			status, got := l.ms.Do(l.alive(), http.MethodGet, key, nil)
			switch {
			case status == http.StatusNotFound:
				values[key] = nil
			case status == http.StatusOK && bytes.Equal(got, o.value):
				values[key] = o.value
			default:
				t.Errorf("%s: PUT %d, DELETE %d, then GET %d with %d bytes (equal: %v)", key, o.put, o.deleted, status, len(got), bytes.Equal(got, o.value))
			}
		}
	}
}

// alive returns a master still running.
func (l *testLoad) alive() int {
	for i, cmd := range l.ms.Cmds {
		if cmd.ProcessState == nil {
			return i
		}
	}
	l.ms.t.Fatal("no master left")
	return -1
}

// count counts the outcomes of master m's clients: answered with 201 or 204, not.
func (l *testLoad) count(m int) (ok, failed int, slowest time.Duration, statuses map[int]int) {
	statuses = map[int]int{}
	for _, o := range l.outcomes {
		if o.master != m {
			continue
		}
		slowest = max(slowest, o.slowest)
		answers := []int{o.put}
		if o.delSent {
			answers = append(answers, o.deleted)
		}
		for _, s := range answers {
			statuses[s]++
			if s == http.StatusCreated || s == http.StatusNoContent {
				ok++
			} else {
				failed++
			}
		}
	}
	return ok, failed, slowest, statuses
}

// TestMasterKilledOnEtcd: of three masters over one etcd index, one is killed with
// SIGKILL under load. The clients of the other two see no error; once the dead
// master's lease has run out, a survivor rolls back its unfinished writes and finishes
// its deletes; every write acknowledged reads back bit-exact, and nothing is left.
func TestMasterKilledOnEtcd(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	masterKilled(t, startMasters(t, 3, e.DB("/killed?lease=2s")))
}

// masterKilled is TestMasterKilledOnEtcd on ms, three masters over any shared index
// with a lease of 2 s.
func masterKilled(t *testing.T, ms *testMasters) {
	load := ms.startLoad(12, 0, 0, 1, 2) // half on the master killed: writes in flight
	time.Sleep(1500 * time.Millisecond)
	ms.Kill(0)
	killed := time.Now()
	// A statement the master sent just before it died is still applied by the index
	// (PostgreSQL runs what it received, and notices the client gone only after): a
	// moment for those, well within the lease, before its writes in flight are counted.
	time.Sleep(500 * time.Millisecond)
	var left int // the killed master's writes in flight: its clients' keys
	for _, key := range ms.indexState().busyKeys {
		load.mu.Lock()
		if load.outcomes[key].master == 0 {
			left++
		}
		load.mu.Unlock()
	}
	t.Logf("at the kill, the index holds %d writes in flight of the killed master's", left)
	time.Sleep(4 * time.Second) // past the lease, and the survivors' look
	load.Stop()
	values := map[string][]byte{}
	load.Values(values)
	ok0, failed0, _, _ := load.count(0)
	t.Logf("killed master: %d requests answered, %d unanswered", ok0, failed0)
	for _, m := range []int{1, 2} {
		ok, failed, slowest, statuses := load.count(m)
		t.Logf("master %d: %d requests answered, slowest %v, %v", m, ok, slowest.Round(time.Millisecond), statuses)
		if failed > 0 || ok < 10 {
			t.Errorf("master %d's clients: %d errors, %d successes; its log:\n%s", m, failed, ok, ms.Logs[m])
		}
	}
	if failed0 == 0 {
		t.Fatalf("the kill did not land under load")
	}
	ms.Check(values, 1, 2)
	t.Logf("checked %v after the kill", time.Since(killed).Round(time.Millisecond))
	logs := ms.Logs[1].String() + ms.Logs[2].String()
	rolled := strings.Count(logs, "rolled back a write its master left unfinished")
	t.Logf("the survivors rolled back %d writes", rolled)
	if left > 0 && rolled == 0 {
		t.Errorf("the survivors rolled back no write of the dead master's:\n%s\n%s", logs, ms.Logs[0])
	}
}

// TestEtcdMembersKilled: two masters over a 3-member etcd cluster under load. With
// its leader killed (SIGKILL), the cluster elects another and the clients see no
// error. With a second member killed, it has no quorum: writes and reads fail fast
// with 503, and none leaves anything half-done once the members are back.
func TestEtcdMembersKilled(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	ms := startMasters(t, 2, e.DB("/members"))
	load := ms.startLoad(6, 0, 1)
	time.Sleep(time.Second)
	first := e.Leader(t)
	e.Kill(first)
	time.Sleep(4 * time.Second)
	load.Stop()
	values := map[string][]byte{}
	load.Values(values)
	for m := range 2 {
		ok, failed, slowest, statuses := load.count(m)
		t.Logf("with the leader killed, master %d: %d requests answered, slowest %v, %v", m, ok, slowest.Round(time.Millisecond), statuses)
		if failed > 0 || ok < 10 {
			t.Errorf("master %d's clients: %d errors, %d successes; its log:\n%s", m, failed, ok, ms.Logs[m])
		}
	}

	// No quorum: every request that needs the index fails fast with 503, under load
	// too.
	second := (first + 1) % 3
	e.Kill(second)
	load = ms.startLoad(4, 0, 1)
	time.Sleep(6 * time.Second)
	load.Stop()
	for m := range 2 {
		_, _, slowest, statuses := load.count(m)
		t.Logf("without quorum, master %d: slowest %v, %v", m, slowest.Round(time.Millisecond), statuses)
		if statuses[http.StatusServiceUnavailable] == 0 || slowest > 6*time.Second {
			t.Errorf("master %d without quorum: %v, slowest %v; want fast 503s", m, statuses, slowest)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete, "UNLINK"} {
		start := time.Now()
		status, _ := ms.Do(1, method, "/load/0/1", nil)
		took := time.Since(start)
		t.Logf("%s without quorum: %d in %v", method, status, took.Round(time.Millisecond))
		if status != http.StatusServiceUnavailable || took > 3*time.Second {
			t.Errorf("%s without quorum: %d in %v, want 503 within 3s", method, status, took)
		}
	}

	if err := errors.Join(e.Start(first), e.Start(second)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "writes did not resume", func() bool {
		status, _ := ms.Do(0, http.MethodPut, "/after", []byte("back"))
		return status == http.StatusCreated
	})
	values["/after"] = []byte("back")
	load.Values(values)
	ms.Check(values, 0, 1)
}

// TestMasterOnEtcd: a master whose index is in etcd stores, lists, unlinks and deletes
// keys and keeps S3 buckets, as on LevelDB, and a rebuild writes into etcd.
func TestMasterOnEtcd(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	masterOn(t, e.DB("/master"), e.DB("/rebuilt"))
}

// masterOn is TestMasterOnEtcd on any backend: a master on the index db, and a
// rebuild into rebuilt.
func masterOn(t *testing.T, db, rebuilt string) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.DB = db })
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
	if err := runRebuild(context.Background(), rebuildConfig(c, rebuilt), &out, testLogger(t)); err != nil {
		t.Fatalf("rebuild into %s: %v\n%s", rebuilt, err, out.String())
	}
	if !strings.Contains(out.String(), "rebuild: 4 keys (1 unlinked)") {
		t.Fatalf("rebuild: %s", out.String())
	}
	c.Config.DB = rebuilt
	c.startMaster()
	if status, got := c.Get("/etcd/4"); status != http.StatusOK || string(got) != "value 4" {
		t.Fatalf("GET from the rebuilt index: %d %q", status, got)
	}
}
