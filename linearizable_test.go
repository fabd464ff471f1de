package main

// Linearizability under faults, checked with porcupine: workers send contended PUTs,
// GETs and DELETEs, native and S3, to a few keys through one master on LevelDB and
// through two and three masters on a real 3-member etcd, while volumes freeze, masters
// are killed or frozen past their lease, and etcd's leader dies. Every history must be
// one that a single copy of the data could have given.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// linOp is what a worker asked of a key.
type linOp uint8

const (
	linPut      linOp = iota // native PUT: creates the key, 403 if it is there
	linS3Put                 // S3 PutObject: sets the key, whatever was there
	linGet                   // native GET, following the redirect
	linDelete                // native DELETE: 204 if the key was there, 404 if not
	linS3Get                 // S3 GetObject, streamed through the master
	linS3Delete              // S3 DeleteObject: 204 whether the key was there or not
)

func (o linOp) String() string {
	return [...]string{"PUT", "S3 PUT", "GET", "DELETE", "S3 GET", "S3 DELETE"}[o]
}

// reads reports whether o only reads.
func (o linOp) reads() bool { return o == linGet || o == linS3Get }

// linInput is one request: the operation and, for a write, the value's number, and
// the master it went through (which the model ignores).
type linInput struct {
	Op     linOp
	Value  int
	Master int
}

// linOutcome is what a request's answer says happened.
type linOutcome uint8

const (
	linDone    linOutcome = iota // 2xx: done (a GET read Value)
	linRefused                   // 403 for a PUT, 404 for a DELETE: the key was there, or not; nothing changed
	linUnknown                   // 5xx, or no answer: done or not
)

// linOutput is the answer to a linInput; for a GET, Value is what it read (0: 404).
type linOutput struct {
	Outcome linOutcome
	Value   int
	Status  int
}

// linModel is a register per key: its state is the number of the value the key holds,
// 0 for none. A request whose outcome is unknown never returns (porcupine then places
// it anywhere after its call, or after everything else: not at all).
var linModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		held, in, out := state.(int), input.(linInput), output.(linOutput)
		switch in.Op {
		case linPut:
			switch out.Outcome {
			case linDone:
				return held == 0, in.Value
			case linRefused:
				return held != 0, held
			}
			if held == 0 {
				return true, in.Value
			}
			return true, held
		case linS3Put:
			return true, in.Value
		case linS3Delete:
			return true, 0
		case linDelete:
			if out.Outcome == linRefused {
				return held == 0, held
			}
			return out.Outcome == linUnknown || held != 0, 0
		}
		return out.Value == held, held
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		what := fmt.Sprintf("%s v%d", in.Op, in.Value)
		if in.Op.reads() {
			what = fmt.Sprintf("%s → v%d", in.Op, out.Value)
		}
		return fmt.Sprintf("%s (%d) via master %d", what, out.Status, in.Master)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("v%d", state.(int)) },
}

// linValue is the bytes of value n: its number first, so that a GET can tell which it
// read, then bytes of its own, some values a few chunks long, so that writes overlap.
func linValue(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	size := 1<<10 + r.IntN(16<<10)
	if n%3 == 0 {
		size = chunkSize + r.IntN(2*chunkSize)
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(n))
	rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}).Read(b[8:])
	return b
}

// linHistory records the operations of a run, per key.
type linHistory struct {
	mu    sync.Mutex
	start time.Time
	ops   map[string][]porcupine.Operation
	// torn counts GETs that read bytes no write sent whole.
	torn []string
}

func (h *linHistory) add(key string, client int, in linInput, out linOutput, call, ret time.Time) {
	op := porcupine.Operation{ClientId: client, Input: in, Output: out, Call: int64(call.Sub(h.start)), Return: int64(ret.Sub(h.start))}
	if out.Outcome == linUnknown && !in.Op.reads() {
		op.Return = 1 << 62 // it may take effect at any time after its call
	}
	h.mu.Lock()
	h.ops[key] = append(h.ops[key], op)
	h.mu.Unlock()
}

// linRun is one run: masters over an index, the keys, and what the workers saw.
type linRun struct {
	t       *testing.T
	ms      *testMasters
	keys    []string
	hist    *linHistory
	nextVal atomic.Int64
	s3      []*s3.Client
	client  *http.Client
	// alive says which masters take requests now (a master killed does not).
	alive []atomic.Bool
	count map[string]int
	cmu   sync.Mutex
}

// linTimeout bounds every request: longer than a master frozen past its lease.
const linTimeout = 10 * time.Second

func newLinRun(t *testing.T, ms *testMasters, keys int) *linRun {
	r := &linRun{t: t, ms: ms, hist: &linHistory{ops: map[string][]porcupine.Operation{}}, count: map[string]int{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 32, DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	r.client = &http.Client{Transport: tr, Timeout: linTimeout}
	r.alive = make([]atomic.Bool, len(ms.URLs))
	for i, url := range ms.URLs {
		r.s3 = append(r.s3, s3ClientAt(url, "davkvtest", "davkvtestsecret"))
		r.alive[i].Store(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), linTimeout)
	defer cancel()
	if _, err := r.s3[0].CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("lin")}); err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		r.keys = append(r.keys, fmt.Sprintf("/lin/k%d", k))
	}
	return r
}

// do sends one operation on key through master m and records it.
func (r *linRun) do(worker, m int, key string, op linOp) {
	in := linInput{Op: op, Master: m}
	if op == linPut || op == linS3Put {
		in.Value = int(r.nextVal.Add(1))
	}
	call := time.Now()
	out := r.send(m, key, in)
	ret := time.Now()
	r.cmu.Lock()
	r.count[fmt.Sprintf("%s %d", op, out.Status)]++
	r.cmu.Unlock()
	if out.Status == http.StatusConflict || (op.reads() && out.Outcome == linUnknown) {
		return // changed nothing, said nothing
	}
	r.hist.add(key, worker, in, out, call, ret)
}

// send sends in and says what its answer means.
func (r *linRun) send(m int, key string, in linInput) linOutput {
	switch in.Op {
	case linS3Put, linS3Get, linS3Delete:
		return r.sendS3(m, key, in)
	}
	var body io.Reader
	method := map[linOp]string{linPut: http.MethodPut, linGet: http.MethodGet, linDelete: http.MethodDelete}[in.Op]
	if in.Op == linPut {
		body = bytes.NewReader(linValue(in.Value))
	}
	req, err := http.NewRequest(method, r.ms.URLs[m]+key, body)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return linOutput{Outcome: linUnknown}
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return linOutput{Outcome: linUnknown, Status: resp.StatusCode}
	}
	out := linOutput{Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusConflict:
	case resp.StatusCode >= 500:
		out.Outcome = linUnknown
	case in.Op == linGet && resp.StatusCode == http.StatusOK:
		out.Value = r.identify(key, got)
	case in.Op == linGet && resp.StatusCode == http.StatusNotFound:
	case in.Op == linPut && resp.StatusCode == http.StatusCreated, in.Op == linDelete && resp.StatusCode == http.StatusNoContent:
	case in.Op == linPut && resp.StatusCode == http.StatusForbidden, in.Op == linDelete && resp.StatusCode == http.StatusNotFound:
		out.Outcome = linRefused
	default:
		r.t.Errorf("%s %s through master %d: %d %s", in.Op, key, m, resp.StatusCode, got)
		out.Outcome = linUnknown
	}
	return out
}

// sendS3 is send for the S3 operations, through the AWS SDK.
func (r *linRun) sendS3(m int, key string, in linInput) linOutput {
	ctx, cancel := context.WithTimeout(context.Background(), linTimeout)
	defer cancel()
	bucket, name := aws.String("lin"), aws.String(strings.TrimPrefix(key, "/lin/"))
	var out linOutput
	var err error
	switch in.Op {
	case linS3Put:
		_, err = r.s3[m].PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: name, Body: bytes.NewReader(linValue(in.Value))})
	case linS3Delete:
		_, err = r.s3[m].DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: name})
	case linS3Get:
		var got *s3.GetObjectOutput
		if got, err = r.s3[m].GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: name}); err == nil {
			b, rerr := io.ReadAll(got.Body)
			got.Body.Close()
			if rerr != nil {
				return linOutput{Outcome: linUnknown}
			}
			out.Value = r.identify(key, b)
		}
	}
	var re *awshttp.ResponseError
	switch {
	case err == nil:
		out.Status = http.StatusOK
		return out
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound && in.Op == linS3Get && s3Code(err) == "NoSuchKey":
		return linOutput{Status: http.StatusNotFound}
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusConflict:
		return linOutput{Status: http.StatusConflict}
	case errors.As(err, &re) && re.HTTPStatusCode() >= 500:
		return linOutput{Outcome: linUnknown, Status: re.HTTPStatusCode()}
	case errors.As(err, &re) && re.HTTPStatusCode() != 0:
		r.t.Errorf("S3 %s %s: %v", in.Op, key, err)
		return linOutput{Outcome: linUnknown, Status: re.HTTPStatusCode()}
	}
	return linOutput{Outcome: linUnknown} // no answer
}

// identify returns the number of the value that b is, whole, or notes a torn read.
func (r *linRun) identify(key string, b []byte) int {
	if len(b) >= 8 {
		n := int(binary.BigEndian.Uint64(b))
		if n > 0 && int64(n) <= r.nextVal.Load() && bytes.Equal(b, linValue(n)) {
			return n
		}
	}
	r.hist.mu.Lock()
	r.hist.torn = append(r.hist.torn, fmt.Sprintf("%s: %d bytes", key, len(b)))
	r.hist.mu.Unlock()
	return -1
}

// load runs workers on the keys through the masters alive, until stop.
func (r *linRun) load(workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	r.hist.start = time.Now()
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := rng.IntN(len(r.ms.URLs))
				if !r.alive[m].Load() {
					continue
				}
				key := r.keys[rng.IntN(len(r.keys))]
				op := linGet
				switch p := rng.IntN(100); {
				case p < 25:
					op = linPut
				case p < 40:
					op = linDelete
				case p < 45:
					op = linS3Delete
				case p < 60:
					op = linS3Put
				case p < 70:
					op = linS3Get
				}
				r.do(w, m, key, op)
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			}
		})
	}
	return &wg
}

// fault is one fault injected at a moment of a run.
type fault struct {
	at   time.Duration
	name string
	do   func()
}

// After returns f injected at d into the run.
func (f fault) After(d time.Duration) fault {
	f.at = d
	return f
}

// run runs the load for d with the faults at their moments, then reads every key once
// more through every master, and checks the history.
func (r *linRun) run(d time.Duration, faults []fault) {
	t := r.t
	stop := make(chan struct{})
	wg := r.load(16, stop)
	start := time.Now()
	for _, f := range faults {
		time.Sleep(time.Until(start.Add(f.at)))
		t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), f.name)
		f.do()
	}
	time.Sleep(time.Until(start.Add(d)))
	close(stop)
	wg.Wait()
	for m := range r.ms.URLs {
		for _, key := range r.keys {
			r.do(m, m, key, linGet)
		}
	}
	t.Logf("answers: %v", r.count)
	r.check()
}

// check checks every key's history with porcupine; a key whose history is not
// linearizable gets its history printed and its visualization written.
func (r *linRun) check() {
	t := r.t
	if len(r.hist.torn) > 0 {
		t.Errorf("GETs read bytes no write sent whole: %v", r.hist.torn)
	}
	total := 0
	for _, key := range r.keys {
		ops := r.hist.ops[key]
		total += len(ops)
		start := time.Now()
		res, info := porcupine.CheckOperationsVerbose(linModel, ops, time.Minute)
		t.Logf("%s: %d operations, %v, checked in %v", key, len(ops), res, time.Since(start).Round(time.Millisecond))
		if res == porcupine.Ok {
			continue
		}
		path := filepath.Join(os.TempDir(), fmt.Sprintf("davkv-%s-%s.html", strings.ReplaceAll(t.Name(), "/", "_"), strings.ReplaceAll(key, "/", "_")))
		if err := porcupine.VisualizePath(linModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		// Where it gets stuck: the longest order the checker found for the history's
		// start, and the first operation (by call) it could not place.
		var longest []porcupine.Operation
		for _, l := range info.PartialLinearizationsOperations()[0] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		state := linModel.Init()
		for _, op := range longest {
			_, state = linModel.Step(state, op.Input, op.Output)
		}
		sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		for _, op := range ops {
			if !slices.ContainsFunc(longest, func(l porcupine.Operation) bool { return l.Call == op.Call && l.ClientId == op.ClientId }) {
				t.Logf("%s: %d operations linearize, then the key holds %s; the first one left: client %d at %v: %s", key, len(longest),
					linModel.DescribeState(state), op.ClientId, time.Duration(op.Call).Round(time.Microsecond), linModel.DescribeOperation(op.Input, op.Output))
				break
			}
		}
		var lines []string
		for _, op := range ops {
			ret := fmt.Sprint(time.Duration(op.Return).Round(time.Microsecond))
			if op.Return == 1<<62 {
				ret = "never"
			}
			lines = append(lines, fmt.Sprintf("  client %2d %v → %s: %s", op.ClientId, time.Duration(op.Call).Round(time.Microsecond), ret, linModel.DescribeOperation(op.Input, op.Output)))
		}
		t.Errorf("%s: the history is %v, not linearizable (visualization: %s):\n%s", key, res, path, strings.Join(lines, "\n"))
	}
	t.Logf("%d operations on %d keys", total, len(r.keys))
}

// settle waits until no write or delete is unfinished and every master's sweeper is
// idle, then stops the masters and checks what they left: no busy or pending record,
// on the volumes exactly the files of each key's generation, and verify -deep finds
// the data whole.
func (r *linRun) settle() {
	t, ms := r.t, r.ms
	get := func(m int, path string) string {
		resp, err := r.client.Get(ms.URLs[m] + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testenv.Eventually(t, 40*time.Second, "work left pending", func() bool {
		if !strings.Contains(get(0, "/?pending"), `"keys":[]`) {
			return false
		}
		for m := range ms.URLs {
			if !strings.Contains(get(m, "/metrics"), "\ndavkv_sweeper_queue_keys 0\n") {
				return false
			}
		}
		return true
	})
	for i := range ms.Cmds {
		ms.Kill(i)
	}
	idx, err := openIndex(ms.DB, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	err = idx.Scan("", "", func(key string, rec index.Record) (bool, error) {
		if rec.Busy || rec.Pending() || rec.State != index.StateLive {
			t.Errorf("%s left %s, busy %v, pending %v", key, rec.State, rec.Busy, rec.Pending())
		}
		for _, v := range rec.Volumes {
			want[v+"/"+rec.Path(key)] = true
		}
		return true, nil
	})
	pending := 0
	if err == nil {
		err = idx.Pending(func(string) (bool, error) { pending++; return true, nil })
	}
	idx.Close()
	if err != nil || pending > 0 {
		t.Errorf("index: %d pending entries, %v", pending, err)
	}
	// A volume frozen in the middle of a PUT may store the value when it thaws, after
	// the write failed and its files were removed: an orphan (its name is its write's
	// own, so it replaces nothing), which verify -fix removes. Nothing else may be.
	cluster := ClusterConfig{Volumes: ms.Addrs, DB: ms.DB, Replicas: 3, Subvolumes: 10}
	batch := BatchConfig{Workers: 4, VolTimeout: time.Second}
	var out bytes.Buffer
	if err := runVerify(context.Background(), VerifyConfig{ClusterConfig: cluster, CheckOptions: CheckOptions{Fix: true}, BatchConfig: batch}, &out, testLogger(t)); err != nil && !errors.Is(err, ErrNotWhole) {
		t.Errorf("verify -fix: %v\n%s", err, out.String())
	}
	for line := range strings.Lines(out.String()) {
		if kind := strings.TrimSpace(line); strings.HasPrefix(kind, probOrphan) {
			t.Logf("late files of writes that failed, removed: %s", kind)
		} else if strings.HasPrefix(line, "  ") {
			t.Errorf("verify -fix found more than orphans: %s", line)
		}
	}
	out.Reset()
	if err := runVerify(context.Background(), VerifyConfig{ClusterConfig: cluster, CheckOptions: CheckOptions{Deep: true}, BatchConfig: batch}, &out, testLogger(t)); err != nil {
		t.Errorf("verify -deep: %v\n%s", err, out.String())
	}
	var got []string
	for i, v := range ms.Vols {
		for _, f := range v.Files() {
			got = append(got, ms.Addrs[i]+"/"+f)
		}
	}
	slices.Sort(got)
	if wanted := slices.Sorted(func(yield func(string) bool) {
		for f := range want {
			if !yield(f) {
				return
			}
		}
	}); !slices.Equal(got, wanted) {
		t.Errorf("files on the volumes:\n%s\nwant exactly the live generations':\n%s", strings.Join(got, "\n"), strings.Join(wanted, "\n"))
	}
	if t.Failed() {
		for i, log := range ms.Logs {
			var lines []string
			for line := range strings.Lines(ms.OldLogs[i] + log.String()) {
				if (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=INFO")) &&
					!strings.Contains(line, "status=409") && !strings.Contains(line, "status=403") {
					lines = append(lines, line)
				}
			}
			t.Logf("master %d's log, but for 403s and 409s:\n%s", i, strings.Join(lines, ""))
		}
	}
}

// linMasters starts n masters over db for a run: S3 keys, a short grace so that
// replaced values go before the end, and faults noticed soon.
func linMasters(t *testing.T, n int, db string) *testMasters {
	ms := newMasters(t, db)
	ms.Flags = []string{"-s3keys", "davkvtest:davkvtestsecret", "-grace", "5s", "-voltimeout", "1s"}
	for range n {
		ms.Start()
	}
	return ms
}

// freezeVolume freezes volume v for d, in the background.
func freezeVolume(ms *testMasters, v int, d time.Duration) fault {
	return fault{name: fmt.Sprintf("volume %d frozen for %v", v, d), do: func() {
		ms.Vols[v].Pause()
		time.AfterFunc(d, ms.Vols[v].Resume)
	}}
}

// killMaster kills master m and starts it again after d, in the background.
func (r *linRun) killMaster(m int, d time.Duration) fault {
	return fault{name: fmt.Sprintf("master %d SIGKILLed, restarted after %v", m, d), do: func() {
		r.alive[m].Store(false)
		r.ms.Kill(m)
		time.Sleep(d)
		r.ms.Restart(m)
		r.alive[m].Store(true)
	}}
}

// freezeMaster freezes master m for d, in the background; its clients wait.
func (r *linRun) freezeMaster(m int, d time.Duration) fault {
	return fault{name: fmt.Sprintf("master %d frozen for %v", m, d), do: func() {
		r.ms.Pause(m)
		time.AfterFunc(d, func() { r.ms.Resume(m) })
	}}
}

// TestLinearizable: 16 workers on 6 keys, about 15 s a run, under faults. Every key's
// history of answers, 409s left out (they change nothing), must be linearizable:
// through one master on LevelDB with a volume frozen and the master SIGKILLed and
// restarted, and through two and three masters on a 3-member etcd with a volume
// frozen, a master SIGKILLed and restarted, a master frozen past its lease and etcd's
// leader SIGKILLed; and through three masters on a PostgreSQL primary with a
// synchronous standby, the same faults and then the primary SIGKILLed and the standby
// promoted. Afterwards nothing is left pending, the volumes hold exactly the
// files of the values the index has, and verify -deep finds them whole.
func TestLinearizable(t *testing.T) {
	t.Run("one master on LevelDB", func(t *testing.T) {
		ms := linMasters(t, 1, filepath.Join(t.TempDir(), "index"))
		r := newLinRun(t, ms, 6)
		r.run(15*time.Second, []fault{
			freezeVolume(ms, 1, 3*time.Second).After(2 * time.Second),
			r.killMaster(0, 500*time.Millisecond).After(7 * time.Second),
			freezeVolume(ms, 3, 2*time.Second).After(10 * time.Second),
			r.killMaster(0, 200*time.Millisecond).After(11 * time.Second),
		})
		r.settle()
	})
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d masters on etcd", n), func(t *testing.T) {
			e := testenv.StartEtcd(t, 3)
			ms := linMasters(t, n, e.DB("/lin?lease=2s"))
			r := newLinRun(t, ms, 6)
			var leader int
			r.run(15*time.Second, []fault{
				freezeVolume(ms, 2, 2500*time.Millisecond).After(2 * time.Second),
				r.killMaster(n-1, time.Second).After(5 * time.Second),
				r.freezeMaster(0, 3500*time.Millisecond).After(7 * time.Second),
				{at: 12 * time.Second, name: "etcd's leader SIGKILLed", do: func() { leader = e.Leader(t); e.Kill(leader) }},
				{at: 13500 * time.Millisecond, name: "etcd's leader back", do: func() {
					if err := e.Start(leader); err != nil {
						t.Fatal(err)
					}
				}},
			})
			r.settle()
		})
	}
	t.Run("3 masters on PostgreSQL, failing over", func(t *testing.T) {
		primary := testenv.StartPostgres(t)
		standby := primary.StartStandby(t)
		ms := linMasters(t, 3, testenv.HostsDB("lin", primary, standby)+"&lease=2s")
		r := newLinRun(t, ms, 6)
		r.run(15*time.Second, []fault{
			freezeVolume(ms, 2, 2500*time.Millisecond).After(2 * time.Second),
			r.killMaster(2, time.Second).After(4 * time.Second),
			r.freezeMaster(0, 3500*time.Millisecond).After(6 * time.Second),
			{at: 10 * time.Second, name: "the primary SIGKILLed", do: primary.Kill},
			{at: 11500 * time.Millisecond, name: "the standby promoted", do: func() {
				if err := standby.Promote(); err != nil {
					t.Error(err)
				}
			}},
		})
		r.settle()
	})
}
