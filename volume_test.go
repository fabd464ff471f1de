package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var fiveVolumes = []string{"localhost:3001", "localhost:3002", "localhost:3003", "localhost:3004", "localhost:3005"}

// TestPlacementGolden pins where keys go. If it fails, placement changed and every
// existing cluster would look for its values in the wrong place: don't update the
// values, fix the change.
func TestPlacementGolden(t *testing.T) {
	p := Placement{Volumes: fiveVolumes, Replicas: 3, Subvolumes: 10}
	long := "/" + strings.Repeat("x", 300)
	longName := strings.Repeat("eHh4", 50)
	tests := []struct {
		key     string
		volumes []string
		path    string
	}{
		{"/hello", []string{"localhost:3001", "localhost:3002", "localhost:3003"}, "sv07/3e/d1/L2hlbGxv"},
		{"/a/b/c", []string{"localhost:3002", "localhost:3005", "localhost:3001"}, "sv07/77/e3/L2EvYi9j"},
		{"/camera/2026/11/22/frame-000001.jpg", []string{"localhost:3001", "localhost:3004", "localhost:3002"},
			"sv08/e7/89/L2NhbWVyYS8yMDI2LzExLzIyL2ZyYW1lLTAwMDAwMS5qcGc"},
		{"/ünïcödé key", []string{"localhost:3002", "localhost:3001", "localhost:3005"}, "sv01/d2/7a/L8O8bsOvY8O2ZMOpIGtleQ"},
		{long, []string{"localhost:3005", "localhost:3002", "localhost:3003"},
			"sv09/71/2a/L3h4" + longName[4:] + ".d/" + longName + ".d/eA"},
	}
	for _, tt := range tests {
		t.Run(tt.key[:min(len(tt.key), 20)], func(t *testing.T) {
			if got := p.Choose(tt.key); !slices.Equal(got, tt.volumes) {
				t.Errorf("Choose = %q, want %q", got, tt.volumes)
			}
			if got := KeyPath(tt.key, p.Subvolume(tt.key)); got != tt.path {
				t.Errorf("KeyPath = %q, want %q", got, tt.path)
			}
		})
	}
}

func TestPlacementIgnoresVolumeOrder(t *testing.T) {
	a := Placement{Volumes: fiveVolumes, Replicas: 3}
	shuffled := slices.Clone(fiveVolumes)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b := Placement{Volumes: shuffled, Replicas: 3}
	for i := range 1000 {
		key := fmt.Sprintf("/key/%d", i)
		if !slices.Equal(a.Choose(key), b.Choose(key)) {
			t.Fatalf("%s: %q with %q, %q with %q", key, a.Choose(key), fiveVolumes, b.Choose(key), shuffled)
		}
	}
}

// TestAddingAVolumeMovesItsShare checks rendezvous hashing's promise: going from 3 to
// 4 volumes with one replica moves about a quarter of the keys, all onto the new one.
func TestAddingAVolumeMovesItsShare(t *testing.T) {
	three := Placement{Volumes: fiveVolumes[:3], Replicas: 1}
	four := Placement{Volumes: fiveVolumes[:4], Replicas: 1}
	const n = 20000
	moved := 0
	for i := range n {
		key := fmt.Sprintf("/key/%d", i)
		before, after := three.Choose(key)[0], four.Choose(key)[0]
		if before != after {
			moved++
			if after != fiveVolumes[3] {
				t.Fatalf("%s moved from %s to %s, not to the new volume", key, before, after)
			}
		}
	}
	if frac := float64(moved) / n; frac < 0.23 || frac > 0.27 {
		t.Errorf("moved %.3f of keys, want about 0.25", frac)
	}
}

func TestPlacementSpreadsEvenly(t *testing.T) {
	p := Placement{Volumes: fiveVolumes, Replicas: 3, Subvolumes: 10}
	perVolume := map[string]int{}
	perSub := map[int]int{}
	const n = 20000
	for i := range n {
		key := fmt.Sprintf("/key/%d", i)
		for _, v := range p.Choose(key) {
			perVolume[v]++
		}
		perSub[p.Subvolume(key)]++
	}
	for v, c := range perVolume {
		if want := n * 3 / 5; c < want*9/10 || c > want*11/10 {
			t.Errorf("volume %s has %d replicas, want about %d", v, c, want)
		}
	}
	for s, c := range perSub {
		if want := n / 10; c < want*8/10 || c > want*12/10 {
			t.Errorf("subvolume %d has %d keys, want about %d", s, c, want)
		}
	}
}

// TestKeyPathRoundTrip checks that every key the API accepts maps to a path that a file
// system can hold and that gives the key back.
func TestKeyPathRoundTrip(t *testing.T) {
	keys := []string{
		"/a", "/a/b", "/a/b/c", "/a/b/", "//", "/ spaces and ünïcödé ", "/%2F?#",
		"/" + strings.Repeat("k", 149), "/" + strings.Repeat("k", 150), "/" + strings.Repeat("k", 151),
		"/" + strings.Repeat("y", maxKeyLen-1), "/" + strings.Repeat("€", (maxKeyLen-1)/3),
	}
	for range 200 {
		b := make([]byte, 1+rand.IntN(maxKeyLen-1))
		for j := range b {
			b[j] = byte(1 + rand.IntN(255))
		}
		keys = append(keys, "/"+string(b))
	}
	for _, key := range keys {
		for _, sub := range []int{0, 9, 255} {
			path := KeyPath(key, sub)
			for part := range strings.SplitSeq(path, "/") {
				if len(part) == 0 || len(part) > 255 || part == "." || part == ".." || strings.HasPrefix(part, ".") {
					t.Fatalf("KeyPath(%q) = %q has bad component %q", key, path, part)
				}
			}
			got, gotSub, err := ParseKeyPath(path)
			if err != nil || got != key || gotSub != sub {
				t.Fatalf("ParseKeyPath(KeyPath(%q, %d)) = %q, %d, %v", key, sub, got, gotSub, err)
			}
		}
	}
}

// TestNestedKeysNeverCollide: a key's file must never be a directory another key
// needs, or nginx could not store both /a/b and /a/b/c.
func TestNestedKeysNeverCollide(t *testing.T) {
	files := map[string]string{}
	dirs := map[string]string{}
	base := strings.Repeat("n", 148)
	keys := []string{"/a", "/a/b", "/a/b/c", "/" + base, "/" + base + "x", "/" + base + "xy", "/" + base + "xyz" + base + base}
	for _, key := range keys {
		path := KeyPath(key, 0)
		files[path] = key
		parts := strings.Split(path, "/")
		for i := 1; i < len(parts); i++ {
			dirs[strings.Join(parts[:i], "/")] = key
		}
	}
	for f, k := range files {
		if other, ok := dirs[f]; ok {
			t.Errorf("file of %q is a directory of %q: %s", k, other, f)
		}
	}
}

func TestParseKeyPathRejectsStrays(t *testing.T) {
	for _, path := range []string{
		"", "sv00", "sv00/aa/bb", "sv00/3e/d1/!!", "sv07/00/00/L2hlbGxv", "xx07/3e/d1/L2hlbGxv",
		"sv07/3e/d1/short.d/L2hlbGxv",
	} {
		if _, _, err := ParseKeyPath(path); !errors.Is(err, ErrNotKeyPath) {
			t.Errorf("ParseKeyPath(%q) = %v, want ErrNotKeyPath", path, err)
		}
	}
}

// TestUploadConnectionReused: the connection an Upload used goes back to the pool and
// serves the next request, even one whose body cannot be sent twice.
func TestUploadConnectionReused(t *testing.T) {
	v := startVolume(t)
	c := NewVolumeClient(200 * time.Millisecond)
	ctx := context.Background()
	u, err := c.StartUpload(ctx, v.Addr, "sv00/aa/bb/up", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)                    // past the upload's write deadline
	once := struct{ io.Reader }{strings.NewReader("def")} // not rewindable
	if err := c.Put(ctx, v.Addr, "sv00/aa/bb/next", once, 3); err != nil {
		t.Fatalf("request on the reused connection: %v", err)
	}
}

// TestReadStatus: the hand parser of volume answers finds the status, frames the body
// and leaves the connection at the next answer, or says it can't be reused.
func TestReadStatus(t *testing.T) {
	tests := []struct {
		name, method, answer string
		status               int
		reuse                bool
		bad                  bool
	}{
		{"created", "PUT", "HTTP/1.1 201 Created\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", 201, true, false},
		{"no content", "DELETE", "HTTP/1.1 204 No Content\r\nServer: nginx\r\n\r\n", 204, true, false},
		{"error page", "PUT", "HTTP/1.1 507 Insufficient Storage\r\ncontent-length: 5\r\n\r\nfull!", 507, true, false},
		{"chunked", "DELETE", "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 409, true, false},
		{"head has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 200, true, false},
		{"interim answer first", "PUT", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201, true, false},
		{"server closes", "PUT", "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 201, false, false},
		{"http/1.0", "DELETE", "HTTP/1.0 204 No Content\r\n\r\n", 204, false, false},
		{"http/1.0 keep-alive", "DELETE", "HTTP/1.0 204 No Content\r\nConnection: Keep-Alive\r\n\r\n", 204, true, false},
		{"body until close", "PUT", "HTTP/1.1 500 Oops\r\n\r\nwhatever", 500, false, false},
		{"garbage", "PUT", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, true},
		{"bad length", "PUT", "HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n", 0, false, true},
		{"header without colon", "PUT", "HTTP/1.1 201 Created\r\nnonsense\r\n\r\n", 0, false, true},
		{"cut short", "PUT", "HTTP/1.1 201 Created\r\nContent-Le", 0, false, true},
		{"body cut short", "PUT", "HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 500\r\n\r\nfull", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const next = "HTTP/1.1 next"
			vc := &volumeConn{r: bufio.NewReader(strings.NewReader(tt.answer + next))}
			status, reuse, err := vc.readStatus(tt.method)
			if tt.bad {
				if err == nil {
					t.Fatalf("got status %d, want an error", status)
				}
				return
			}
			if err != nil || status != tt.status || reuse != tt.reuse {
				t.Fatalf("got %d, reuse %v, %v; want %d, reuse %v", status, reuse, err, tt.status, tt.reuse)
			}
			if rest, _ := io.ReadAll(vc.r); reuse && string(rest) != next {
				t.Errorf("left %q unread, want %q", rest, next)
			}
		})
	}
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

// TestFanOut: PutAll and DeleteAll send to every volume and report each one's fate: a
// volume that doesn't answer costs its own request only, one that refuses is known
// to hold nothing, and a kept-alive connection the server closed is retried.
func TestFanOut(t *testing.T) {
	ctx := context.Background()
	v := startVolume(t)
	frozen := fakeServer(t, func(conn net.Conn) { io.Copy(io.Discard, conn) })
	var requests atomic.Int32
	closer := fakeServer(t, func(conn net.Conn) { // answers one request, then hangs up
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		requests.Add(1)
		io.WriteString(conn, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	c := NewVolumeClient(300 * time.Millisecond)
	defer c.CloseIdle()
	start := time.Now()
	errs := c.PutAll(ctx, []string{frozen, v.Addr, refused}, "sv00/aa/bb/fan", []byte("value"))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v with a frozen volume and a 300ms timeout", took)
	}
	if !isTimeout(errs[0]) || !mayHaveStored(errs[0]) {
		t.Errorf("frozen volume: got %v, want a timeout that may have stored", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("live volume after a frozen one: %v", errs[1])
	}
	if errs[2] == nil || mayHaveStored(errs[2]) {
		t.Errorf("refused volume: got %v, want an error that stored nothing", errs[2])
	}
	if b, err := os.ReadFile(filepath.Join(v.Dir, "sv00/aa/bb/fan")); err != nil || string(b) != "value" {
		t.Errorf("stored %q, %v", b, err)
	}

	for i := range 3 {
		if err := errors.Join(c.PutAll(ctx, []string{closer}, "x", []byte("v"))...); err != nil {
			t.Fatalf("put %d to a server that closes kept-alive connections: %v", i, err)
		}
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("the server answered %d requests, want 3", n)
	}

	for i := range 2 { // the second time the file is already gone: fine
		if err := errors.Join(c.DeleteAll(ctx, []string{v.Addr}, "sv00/aa/bb/fan")...); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(v.Dir, "sv00/aa/bb/fan")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after DeleteAll: %v", err)
	}
}
