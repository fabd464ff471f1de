package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestFanOut: PutAll and DeleteAll send to every volume and report each one's fate: a
// volume that doesn't answer costs its own request only, one that refuses is known
// to hold nothing, and a kept-alive connection the server closed is retried.
func TestFanOut(t *testing.T) {
	ctx := context.Background()
	v := testenv.StartVolume(t)
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

	c := NewVolumeClient(300*time.Millisecond, "")
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
