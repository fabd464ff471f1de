package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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

	"github.com/syndtr/goleveldb/leveldb"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		{},
		{State: StateWriting, Volumes: []string{"a:1", "b:2", "c:3"}, Sub: 7, Time: 1},
		{State: StateLive, Volumes: []string{"a:1"}, Sub: 255, Size: 1 << 40, MD5: "5d41402abc4b2a76b9719d911017c592", Time: 1763779200000000000},
		{State: StateUnlinked, Volumes: []string{"x:9"}},
		{State: StateDeleting, Volumes: []string{}},
		{State: StateLive, Volumes: []string{"very-long-host-name.example:65535", "b:2", "c:3", "d:4", "e:5"}, Size: -1, Sub: 300, Time: -5},
		{State: StateUnlinked, Volumes: []string{"a:1", "b:2"}, Leftovers: []string{"c:3", "d:4"}},
	}
	for _, rec := range recs {
		t.Run(rec.State.String(), func(t *testing.T) {
			b, err := rec.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != recordVersion {
				t.Fatalf("version byte %d, want %d", b[0], recordVersion)
			}
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(rec) {
				t.Fatalf("round trip: %+v, want %+v", got, rec)
			}
		})
	}
}

// TestRecordGolden pins every version of the encoding: indexes written by any version
// must stay readable by every later one.
func TestRecordGolden(t *testing.T) {
	body := "\x02\x03\x0a\x54\x10" + "\x5d\x41\x40\x2a\xbc\x4b\x2a\x76\xb9\x71\x9d\x91\x10\x17\xc5\x92" + "\x02\x03a:1\x03b:2"
	v1 := "\x01" + body
	v2 := "\x02" + body + "\x01\x03c:3"
	want := Record{State: StateLive, Volumes: []string{"a:1", "b:2"}, Sub: 3, Size: 5, MD5: "5d41402abc4b2a76b9719d911017c592", Time: 42}
	var rec Record
	if err := rec.UnmarshalBinary([]byte(v1)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Fatalf("v1 decoded %+v, %v; want %+v", rec, err, want)
	}
	want.Leftovers = []string{"c:3"}
	if err := rec.UnmarshalBinary([]byte(v2)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Fatalf("v2 decoded %+v, %v; want %+v", rec, err, want)
	}
	b, _ := want.MarshalBinary()
	if string(b) != v2 {
		t.Fatalf("encoded %q, want %q", b, v2)
	}
	for _, bad := range []string{"", "\x03\x02", "\x00\x02", "\x01", "\x01\x02", v1[:len(v1)-1], v1 + "x", v2[:len(v2)-1], v2 + "x", "\x01\x02\x00\x00\x00\x00\xff"} {
		if err := rec.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("UnmarshalBinary(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		want error
	}{
		{"/a", nil},
		{"/a/b/c.txt", nil},
		{"/a//b", nil},
		{"/.hidden", nil},
		{"/a..b/...", nil},
		{"/" + strings.Repeat("k", maxKeyLen-1), nil},
		{"", ErrBadKey},
		{"/", ErrBadKey},
		{"a", ErrBadKey},
		{"/" + strings.Repeat("k", maxKeyLen), ErrBadKey},
		{"/a\x00b", ErrBadKey},
		{"/a/../b", ErrBadKey},
		{"/..", ErrBadKey},
		{"/./a", ErrBadKey},
		{"/a/.", ErrBadKey},
		{"/\xff", ErrBadKey},
		{healthPath, ErrReservedKey},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.key), func(t *testing.T) {
			err := checkKey(tt.key)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("checkKey = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("reason is not one line: %q", err)
			}
		})
	}
}

func TestParseContentMD5(t *testing.T) {
	sum := md5.Sum([]byte("hello"))
	for _, tt := range []struct {
		header string
		want   []byte
		err    error
	}{
		{"", nil, nil},
		{base64.StdEncoding.EncodeToString(sum[:]), sum[:], nil},
		{hex.EncodeToString(sum[:]), sum[:], nil},
		{strings.ToUpper(hex.EncodeToString(sum[:])), sum[:], nil},
		{"nope", nil, ErrBadRequest},
		{base64.StdEncoding.EncodeToString(sum[:8]), nil, ErrBadRequest},
	} {
		got, err := parseContentMD5(tt.header)
		if !bytes.Equal(got, tt.want) || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("parseContentMD5(%q) = %x, %v; want %x, %v", tt.header, got, err, tt.want, tt.err)
		}
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

func TestPutGetDelete(t *testing.T) {
	c := startCluster(t, 3, nil)
	value := []byte("bigswag")
	c.Put("/wehave", value)

	resp := c.Do(http.MethodGet, "/wehave", nil)
	sum := md5.Sum(value)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	wantPath := KeyPath("/wehave", c.Master.placement.Subvolume("/wehave"))
	if !strings.HasPrefix(loc, "http://127.0.0.1:") || !strings.HasSuffix(loc, "/"+wantPath) {
		t.Errorf("Location %q, want a volume and /%s", loc, wantPath)
	}
	if got := resp.Header.Get("Content-Md5"); got != hex.EncodeToString(sum[:]) {
		t.Errorf("Content-Md5 %q", got)
	}
	if got := resp.Header.Get("Etag"); got != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Errorf("ETag %q", got)
	}
	if resp.Header.Get("Content-Length") != "0" {
		t.Errorf("Content-Length %q, want 0", resp.Header.Get("Content-Length"))
	}
	if resp := c.Do(http.MethodHead, "/wehave", nil); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") == "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if status, got := c.Get("/wehave"); status != http.StatusOK || !bytes.Equal(got, value) {
		t.Fatalf("GET -L: %d %q", status, got)
	}
	// Every replica is where the record says, as a plain file holding the value.
	for _, v := range c.Vols {
		b, err := os.ReadFile(filepath.Join(v.Dir, wantPath))
		if err != nil || !bytes.Equal(b, value) {
			t.Errorf("volume %s: %q, %v", v.Addr, b, err)
		}
	}
	// Range requests are served by nginx.
	resp = c.Fetch(http.MethodGet, "/wehave", nil, "Range", "bytes=3-5")
	if got := readAll(t, resp.Body); resp.StatusCode != http.StatusPartialContent || got != "swa" {
		t.Errorf("range: %d %q", resp.StatusCode, got)
	}

	if resp := c.Do(http.MethodPut, "/wehave", strings.NewReader("again")); resp.StatusCode != http.StatusForbidden {
		t.Errorf("PUT over existing key: %d, want 403", resp.StatusCode)
	}
	if resp := c.Do(http.MethodDelete, "/wehave", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	if resp := c.Do(http.MethodGet, "/wehave", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", resp.StatusCode)
	}
	if resp := c.Do(http.MethodDelete, "/wehave", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", resp.StatusCode)
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Errorf("files left after DELETE: %q", files)
	}
	// The key can be written again.
	c.Put("/wehave", []byte("new"))
	if _, got := c.Get("/wehave"); string(got) != "new" {
		t.Errorf("after re-PUT: %q", got)
	}
}

func TestPutBodies(t *testing.T) {
	c := startCluster(t, 3, nil)
	sizes := []int{1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17}
	for _, size := range sizes {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/chunked=%v", size, chunked), func(t *testing.T) {
				value := randomBytes(size)
				key := fmt.Sprintf("/bodies/%d/%v", size, chunked)
				var body io.Reader = bytes.NewReader(value)
				if chunked {
					body = struct{ io.Reader }{body} // hides the length: sent chunked
				}
				resp := c.Do(http.MethodPut, key, body)
				if resp.StatusCode != http.StatusCreated {
					t.Fatalf("PUT: %d %s", resp.StatusCode, readAll(t, resp.Body))
				}
				status, got := c.Get(key)
				if status != http.StatusOK || !bytes.Equal(got, value) {
					t.Fatalf("GET: %d, %d bytes, equal=%v", status, len(got), bytes.Equal(got, value))
				}
				rec, err := c.Master.index.Get(key)
				sum := md5.Sum(value)
				if err != nil || rec.Size != int64(size) || rec.MD5 != hex.EncodeToString(sum[:]) {
					t.Fatalf("record %+v, %v", rec, err)
				}
			})
		}
	}
}

func TestEmptyBody(t *testing.T) {
	c := startCluster(t, 3, nil)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader("")
		if chunked {
			body = struct{ io.Reader }{body}
		}
		req, _ := http.NewRequest(http.MethodPut, c.URL+"/empty", body)
		if !chunked {
			req.ContentLength = 0
			req.Body = http.NoBody
		}
		resp, err := c.raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusLengthRequired {
			t.Errorf("chunked=%v: %d, want 411", chunked, resp.StatusCode)
		}
	}
	if _, err := c.Master.index.Get("/empty"); !errors.Is(err, ErrNotFound) {
		t.Errorf("index has /empty: %v", err)
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Errorf("files: %q", files)
	}
}

func TestContentMD5(t *testing.T) {
	c := startCluster(t, 3, nil)
	for _, size := range []int{100, 2*chunkSize + 5} {
		value := randomBytes(size)
		sum := md5.Sum(value)
		wrong := md5.Sum(append(value, 'x'))
		tests := []struct {
			name   string
			header string
			status int
		}{
			{"base64", base64.StdEncoding.EncodeToString(sum[:]), http.StatusCreated},
			{"hex", hex.EncodeToString(sum[:]), http.StatusCreated},
			{"wrong-base64", base64.StdEncoding.EncodeToString(wrong[:]), http.StatusBadRequest},
			{"wrong-hex", hex.EncodeToString(wrong[:]), http.StatusBadRequest},
			{"garbage", "zzz", http.StatusBadRequest},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%d/%s", size, tt.name), func(t *testing.T) {
				key := fmt.Sprintf("/md5/%d/%s", size, tt.name)
				resp := c.Do(http.MethodPut, key, bytes.NewReader(value), "Content-Md5", tt.header)
				if resp.StatusCode != tt.status {
					t.Fatalf("PUT: %d, want %d", resp.StatusCode, tt.status)
				}
				status, _ := c.Get(key)
				if tt.status == http.StatusCreated && status != http.StatusOK {
					t.Fatalf("GET: %d", status)
				}
				if tt.status != http.StatusCreated {
					if status != http.StatusNotFound {
						t.Fatalf("GET after refused PUT: %d", status)
					}
					path := KeyPath(key, c.Master.placement.Subvolume(key))
					for _, f := range c.AllFiles() {
						if strings.HasSuffix(f, path) {
							t.Fatalf("refused value stored: %s", f)
						}
					}
				}
			})
		}
	}
}

// Test64MiB sends a large value through the master and reads it back through the
// redirect, checking its MD5 against the one the master reports.
func Test64MiB(t *testing.T) {
	c := startCluster(t, 3, nil)
	value := randomBytes(64 << 20)
	sum := md5.Sum(value)
	c.Put("/big/64MiB", value)
	resp := c.Fetch(http.MethodGet, "/big/64MiB", nil)
	h := md5.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != int64(len(value)) {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("MD5 %s, want %x", got, sum)
	}
	if got := c.Do(http.MethodHead, "/big/64MiB", nil).Header.Get("Content-Md5"); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("Content-Md5 %s, want %x", got, sum)
	}
}

// TestVolumeDownDuringPut stops one nginx just before a PUT: whether the master knows
// it is down yet or finds out by failing, the PUT fails and no file stays anywhere.
func TestVolumeDownDuringPut(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Vols[1].Stop()
	for i, size := range []int{10, 3 * chunkSize} {
		key := fmt.Sprintf("/down/%d", i)
		resp := c.Do(http.MethodPut, key, bytes.NewReader(randomBytes(size)))
		if resp.StatusCode < 500 {
			t.Errorf("PUT with a volume down: %d, want 5xx", resp.StatusCode)
		}
		if msg := readAll(t, resp.Body); !strings.Contains(msg, c.Vols[1].Addr) {
			t.Errorf("error does not name the volume: %q", msg)
		}
		if status, _ := c.Get(key); status != http.StatusNotFound {
			t.Errorf("GET after failed PUT: %d", status)
		}
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Errorf("files left: %q", files)
	}
	if _, err := c.Master.index.Get("/down/0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("index record left: %v", err)
	}
}

// TestVolumeDiesMidUpload kills one nginx (SIGTERM, then SIGKILL) while a large value
// streams to it.
func TestVolumeDiesMidUpload(t *testing.T) {
	for _, how := range []string{"stopped", "killed"} {
		t.Run(how, func(t *testing.T) { volumeDiesMidUpload(t, how == "killed") })
	}
}

func volumeDiesMidUpload(t *testing.T, kill bool) {
	c := startCluster(t, 3, nil)
	pr, pw := io.Pipe()
	result := make(chan *http.Response, 1)
	go func() { result <- c.Do(http.MethodPut, "/dies", pr) }()
	chunk := randomBytes(chunkSize)
	for range 8 {
		pw.Write(chunk)
	}
	if kill {
		c.Vols[2].Kill()
	} else {
		c.Vols[2].Stop()
	}
	go func() {
		for {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp := <-result
	pw.CloseWithError(errors.New("done"))
	if resp.StatusCode < 500 {
		t.Fatalf("PUT: %d, want 5xx", resp.StatusCode)
	}
	eventually(t, 5*time.Second, "files left on volumes", func() bool { return len(c.AllFiles()) == 0 })
	eventually(t, 5*time.Second, "nginx temp files left", func() bool {
		return len(c.Vols[0].TempFiles())+len(c.Vols[1].TempFiles()) == 0
	})
	if _, err := c.Master.index.Get("/dies"); !errors.Is(err, ErrNotFound) {
		t.Errorf("index record left: %v", err)
	}
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

// TestFailedReplicaRemovesTheOthers: a volume whose disk is full (a fake answering 507,
// which nginx cannot be made to do on demand) fails the PUTs of the keys placed on it,
// and the replicas the real volumes took are deleted; other keys are unaffected.
func TestFailedReplicaRemovesTheOthers(t *testing.T) {
	full := fakeVolume(t, http.StatusInsufficientStorage)
	c := startCluster(t, 3, func(cfg *ServerConfig) {
		cfg.Volumes = append(cfg.Volumes, strings.TrimPrefix(full.URL, "http://"))
		cfg.Replicas = 3
	})
	fullAddr := strings.TrimPrefix(full.URL, "http://")
	refused, stored := 0, map[string][]byte{}
	for i := range 40 {
		key := fmt.Sprintf("/full/%d", i)
		value := randomBytes([]int{10, 3*chunkSize + 1}[i%2] + i)
		resp := c.Do(http.MethodPut, key, bytes.NewReader(value))
		onFull := slices.Contains(c.Master.placement.Choose(key), fullAddr)
		switch {
		case onFull && resp.StatusCode == http.StatusInsufficientStorage:
			refused++
			if _, err := c.Master.index.Get(key); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: index record left: %v", key, err)
			}
		case !onFull && resp.StatusCode == http.StatusCreated:
			stored[key] = value
		default:
			t.Fatalf("%s (on the full volume: %v): %d %s", key, onFull, resp.StatusCode, readAll(t, resp.Body))
		}
	}
	if n := len(c.AllFiles()); n != 3*len(stored) {
		t.Fatalf("%d files on the real volumes, want %d: refused values left replicas", n, 3*len(stored))
	}
	for key, value := range stored {
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %s: %d", key, status)
		}
	}
	t.Logf("40 PUTs with one volume's disk full: %d refused with 507 leaving nothing, %d stored on the others, 0 lost", refused, len(stored))
	if refused == 0 || len(stored) == 0 {
		t.Fatal("placement did not put keys on both sides")
	}
}

// rawPut starts a PUT on its own connection, sends header and part of the body, and
// returns the connection for the test to finish or abandon.
func rawPut(t *testing.T, c *testCluster, key string, header string, part []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\n%s\r\n", key, header)
	conn.Write(part)
	return conn
}

// TestClientHangsUp: a client that disconnects mid-upload, or sends less than its
// Content-Length, leaves no key and no file.
func TestClientHangsUp(t *testing.T) {
	c := startCluster(t, 3, nil)
	part := randomBytes(3 * chunkSize)
	t.Run("disconnect", func(t *testing.T) {
		conn := rawPut(t, c, "/hangup", fmt.Sprintf("Content-Length: %d\r\n", 10*chunkSize), part)
		time.Sleep(100 * time.Millisecond)
		conn.Close()
	})
	t.Run("disconnect-chunked", func(t *testing.T) {
		conn := rawPut(t, c, "/hangup-chunked", "Transfer-Encoding: chunked\r\n", nil)
		fmt.Fprintf(conn, "%x\r\n%s\r\n", len(part), part)
		time.Sleep(100 * time.Millisecond)
		conn.Close()
	})
	t.Run("short-body", func(t *testing.T) {
		conn := rawPut(t, c, "/short", "Content-Length: 1000\r\n", randomBytes(500))
		conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("short body: %d, want 400", resp.StatusCode)
		}
	})
	for _, key := range []string{"/hangup", "/hangup-chunked", "/short"} {
		eventually(t, 5*time.Second, key+" still in the index", func() bool {
			_, err := c.Master.index.Get(key)
			return errors.Is(err, ErrNotFound)
		})
	}
	eventually(t, 5*time.Second, "files or nginx temp files left", func() bool {
		n := len(c.AllFiles())
		for _, v := range c.Vols {
			n += len(v.TempFiles())
		}
		return n == 0
	})
	// The keys are free again.
	c.Put("/hangup", []byte("ok"))
}

// TestGetWithVolumeDown: reads keep working from the other replicas, a replica on a
// down volume is never chosen, and a key whose volumes are all down answers 503.
func TestGetWithVolumeDown(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Replicas = 2 })
	keys := map[string][]byte{}
	for i := range 30 {
		key := fmt.Sprintf("/gd/%d", i)
		keys[key] = randomBytes(100 + i)
		c.Put(key, keys[key])
	}
	down := c.Vols[0]
	down.Stop()
	stopped := time.Now()
	eventually(t, 2*time.Second, "volume not seen down within 2s", func() bool { return !c.Master.health.Up(down.Addr) })
	t.Logf("volume seen down after %v", time.Since(stopped).Round(time.Millisecond))

	resp := c.Fetch(http.MethodGet, "/health", nil)
	var health struct{ Volumes []VolumeStatus }
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	for _, v := range health.Volumes {
		if v.Up == (v.Volume == down.Addr) {
			t.Errorf("/health: %+v", v)
		}
	}

	for key, value := range keys {
		rec, _ := c.Master.index.Get(key)
		onlyDown := len(rec.Volumes) == 2 && !slices.ContainsFunc(rec.Volumes, func(v string) bool { return v != down.Addr })
		for range 10 {
			resp := c.Do(http.MethodGet, key, nil)
			if strings.Contains(resp.Header.Get("Location"), down.Addr) {
				t.Fatalf("%s redirected to the down volume", key)
			}
			if onlyDown && resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("%s: %d, want 503", key, resp.StatusCode)
			}
		}
		if status, got := c.Get(key); status != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("%s: %d", key, status)
		}
	}

	// Every volume of a key down: 503.
	c.Vols[1].Stop()
	c.Vols[2].Stop()
	eventually(t, 2*time.Second, "volumes not seen down", func() bool {
		return !c.Master.health.Up(c.Vols[1].Addr) && !c.Master.health.Up(c.Vols[2].Addr)
	})
	if resp := c.Do(http.MethodGet, "/gd/0", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("all volumes down: %d, want 503", resp.StatusCode)
	}
	// And back.
	down.Start()
	eventually(t, 2*time.Second, "volume not seen back up", func() bool { return c.Master.health.Up(down.Addr) })
}

func TestUnlinkAndProtect(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Protect = true })
	c.Put("/u/a", []byte("a"))
	c.Put("/u/b", []byte("b"))
	if resp := c.Do(http.MethodDelete, "/u/a", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE of a protected live key: %d, want 403", resp.StatusCode)
	}
	if resp := c.Do("UNLINK", "/u/a", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("UNLINK: %d", resp.StatusCode)
	}
	if resp := c.Do("UNLINK", "/u/a", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("second UNLINK: %d", resp.StatusCode)
	}
	if resp := c.Do("UNLINK", "/u/nope", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("UNLINK of a missing key: %d", resp.StatusCode)
	}
	if status, _ := c.Get("/u/a"); status != http.StatusNotFound {
		t.Fatalf("GET of unlinked: %d", status)
	}
	markers := 0
	for _, f := range c.AllFiles() {
		if strings.HasSuffix(f, MarkerPath("/u/a", c.Master.placement.Subvolume("/u/a"))) {
			markers++
		}
	}
	if n := len(c.AllFiles()); n != 9 || markers != 3 {
		t.Fatalf("after UNLINK: %d files with %d markers, want 6 values and 3 markers", n, markers)
	}
	if got := listKeys(t, c, "/u?list"); !slices.Equal(got.Keys, []string{"/u/b"}) {
		t.Fatalf("?list: %q", got.Keys)
	}
	if got := listKeys(t, c, "/?unlinked"); !slices.Equal(got.Keys, []string{"/u/a"}) {
		t.Fatalf("?unlinked: %q", got.Keys)
	}
	if resp := c.Do(http.MethodPut, "/u/a", strings.NewReader("x")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT over unlinked: %d, want 403", resp.StatusCode)
	}
	if resp := c.Do(http.MethodDelete, "/u/a", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE of unlinked: %d", resp.StatusCode)
	}
	if n := len(c.AllFiles()); n != 3 {
		t.Fatalf("after DELETE: %d files, want 3", n)
	}
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

func TestList(t *testing.T) {
	c := startCluster(t, 3, nil)
	var want []string
	for i := range 25 {
		key := fmt.Sprintf("/list/%02d", i)
		want = append(want, key)
		c.Put(key, []byte{byte(i)})
	}
	c.Put("/lisp", []byte("x"))
	c.Put("/other", []byte("x"))

	if got := listKeys(t, c, "/list/?list"); !slices.Equal(got.Keys, want) || got.Next != "" {
		t.Fatalf("?list: %q next %q", got.Keys, got.Next)
	}
	if got := listKeys(t, c, "/lis?list"); len(got.Keys) != 26 {
		t.Fatalf("prefix /lis: %q", got.Keys)
	}
	if got := listKeys(t, c, "/nothing?list"); got.Keys == nil || len(got.Keys) != 0 {
		t.Fatalf("empty list: %#v", got)
	}
	// Paging with start and limit visits every key once.
	var paged []string
	next := ""
	for {
		page := listKeys(t, c, "/list/?list&limit=10&start="+next)
		paged = append(paged, page.Keys...)
		if page.Next == "" {
			break
		}
		if len(page.Keys) != 10 {
			t.Fatalf("page of %d", len(page.Keys))
		}
		next = page.Next
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paged: %q", paged)
	}
	for _, bad := range []string{"abc", "0", "-1", "1000001"} {
		if resp := c.Do(http.MethodGet, "/list/?list&limit="+bad, nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("limit=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// TestListTooMany fills the index directly with more keys than a list may return.
func TestListTooMany(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a million index records")
	}
	c := startCluster(t, 1, nil)
	rec, _ := Record{State: StateLive, Volumes: []string{c.Vols[0].Addr}}.MarshalBinary()
	for start := 0; start <= maxListKeys; start += 100000 {
		b := new(leveldb.Batch)
		for i := start; i < min(start+100000, maxListKeys+1); i++ {
			b.Put(fmt.Appendf(nil, "/many/%07d", i), rec)
		}
		if err := c.Master.index.db.Write(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if resp := c.Do(http.MethodGet, "/many/?list", nil); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("list of %d keys: %d, want 413", maxListKeys+1, resp.StatusCode)
	}
	if got := listKeys(t, c, "/many/?list&limit=2&start=/many/0999999"); !slices.Equal(got.Keys, []string{"/many/0999999", "/many/1000000"}) {
		t.Fatalf("last page: %q", got.Keys)
	}
}

// TestKeyLocks: a second write to a key with one in flight gets 409 at once, and GETs
// see the old state until the write commits.
func TestKeyLocks(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/locked/old", []byte("old"))
	conn := rawPut(t, c, "/locked/new", fmt.Sprintf("Content-Length: %d\r\n", 2*chunkSize), randomBytes(chunkSize))
	eventually(t, 5*time.Second, "write not in flight", func() bool {
		rec, err := c.Master.index.Get("/locked/new")
		return err == nil && rec.State == StateWriting
	})
	for _, method := range []string{http.MethodPut, http.MethodDelete, "UNLINK"} {
		start := time.Now()
		resp := c.Do(method, "/locked/new", strings.NewReader("x"))
		if resp.StatusCode != http.StatusConflict || time.Since(start) > time.Second {
			t.Errorf("%s during PUT: %d after %v, want 409 at once", method, resp.StatusCode, time.Since(start))
		}
	}
	if status, _ := c.Get("/locked/new"); status != http.StatusNotFound {
		t.Errorf("GET during PUT: %d, want 404", status)
	}
	if status, got := c.Get("/locked/old"); status != http.StatusOK || string(got) != "old" {
		t.Errorf("GET of another key: %d %q", status, got)
	}
	conn.Write(randomBytes(chunkSize))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow PUT: %v %v", resp, err)
	}
	if status, _ := c.Get("/locked/new"); status != http.StatusOK {
		t.Errorf("GET after commit: %d", status)
	}
}

func TestConcurrentWritersOneKey(t *testing.T) {
	c := startCluster(t, 3, nil)
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			resp := c.Do(http.MethodPut, "/race", bytes.NewReader(randomBytes(chunkSize*2)))
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusConflict, http.StatusForbidden:
		default:
			t.Errorf("status %d", s)
		}
	}
	if created != 1 {
		t.Fatalf("%d PUTs created the key, want 1", created)
	}
}

func TestBadRequests(t *testing.T) {
	c := startCluster(t, 3, nil)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodPut, "/", http.StatusBadRequest},
		{http.MethodPut, "/" + strings.Repeat("k", maxKeyLen), http.StatusBadRequest},
		{http.MethodPut, "/a%00b", http.StatusBadRequest},
		{http.MethodPut, "/a/../b", http.StatusBadRequest},
		{http.MethodPut, "/a/%2E%2E/b", http.StatusBadRequest},
		{http.MethodPut, "/./a", http.StatusBadRequest},
		{http.MethodPut, "/%ff", http.StatusBadRequest},
		{http.MethodPut, "/health", http.StatusBadRequest},
		{http.MethodGet, "/", http.StatusBadRequest},
		{http.MethodDelete, "/", http.StatusBadRequest},
		{http.MethodPost, "/k", http.StatusMethodNotAllowed},
		{http.MethodPatch, "/k", http.StatusMethodNotAllowed},
		{"MKCOL", "/k", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path[:min(len(tt.path), 12)], func(t *testing.T) {
			resp := c.Do(tt.method, tt.path, strings.NewReader("x"))
			if resp.StatusCode != tt.status {
				t.Fatalf("%d, want %d", resp.StatusCode, tt.status)
			}
			msg := readAll(t, resp.Body)
			if strings.Count(msg, "\n") != 1 || len(msg) < 5 {
				t.Errorf("reason is not one line: %q", msg)
			}
			if tt.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != allowedMethods {
				t.Errorf("Allow: %q", resp.Header.Get("Allow"))
			}
		})
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Errorf("files: %q", files)
	}
}

// TestOddKeys stores keys that minikeyvalue cannot: long ones, nested ones, ones whose
// base64 would hold a '/'. The query string is never part of the key.
func TestOddKeys(t *testing.T) {
	c := startCluster(t, 3, nil)
	keys := []string{
		"/a/b", "/a/b/c", "/a/b/c/", "/" + strings.Repeat("L", maxKeyLen-1), "/" + strings.Repeat("é", 300),
		"/??>>??>>", "/ünïcödé key with spaces", "/%2F/%25", "/.hidden", "/a//b",
	}
	for i, key := range keys {
		value := []byte(fmt.Sprintf("value %d", i))
		req, _ := http.NewRequest(http.MethodPut, c.URL+"/", bytes.NewReader(value))
		req.URL.Path = key // the request line carries it escaped
		resp, err := c.raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT %.40q: %d", key, resp.StatusCode)
		}
		req, _ = http.NewRequest(http.MethodGet, c.URL+"/", nil)
		req.URL.Path = key
		resp, err = c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || got != string(value) {
			t.Fatalf("GET %.40q: %d %q", key, resp.StatusCode, got)
		}
	}
	c.Put("/query?x=1&y=2", []byte("q"))
	if status, got := c.Get("/query"); status != http.StatusOK || string(got) != "q" {
		t.Fatalf("query string became part of the key: %d", status)
	}
	if status, _ := c.Get("/query?other"); status != http.StatusOK {
		t.Fatalf("GET with a query: %d", status)
	}
}

func TestFallback(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Fallback = "127.0.0.1:9" })
	c.Put("/here", []byte("x"))
	if resp := c.Do(http.MethodGet, "/here", nil); resp.StatusCode != http.StatusFound || strings.Contains(resp.Header.Get("Location"), ":9/") {
		t.Errorf("known key: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp := c.Do(http.MethodGet, "/elsewhere", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "http://127.0.0.1:9/elsewhere" {
		t.Errorf("unknown key: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestDeleteWithVolumeDown(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/del", []byte("x"))
	c.Vols[0].Stop()
	resp := c.Do(http.MethodDelete, "/del", nil)
	if resp.StatusCode < 500 {
		t.Fatalf("DELETE with a volume down: %d, want 5xx", resp.StatusCode)
	}
	if status, _ := c.Get("/del"); status != http.StatusNotFound {
		t.Fatalf("GET of a half-deleted key: %d, want 404", status)
	}
	c.Vols[0].Start()
	eventually(t, 2*time.Second, "volume back", func() bool { return c.Master.health.Up(c.Vols[0].Addr) })
	if resp := c.Do(http.MethodDelete, "/del", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("repeated DELETE: %d", resp.StatusCode)
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Fatalf("files: %q", files)
	}
}

func TestIndexSurvivesRestart(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/persist", []byte("kept"))
	c.RestartMaster()
	if status, got := c.Get("/persist"); status != http.StatusOK || string(got) != "kept" {
		t.Fatalf("after restart: %d %q", status, got)
	}
}
