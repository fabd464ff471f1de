package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestGracefulShutdown sends SIGTERM while a PUT is half sent: the master stops taking
// connections, lets the PUT finish, closes the index and exits 0, and the value is there.
func TestGracefulShutdown(t *testing.T) {
	vols := []*testenv.Volume{testenv.StartVolume(t), testenv.StartVolume(t), testenv.StartVolume(t)}
	args := []string{"-volumes", strings.Join([]string{vols[0].Addr, vols[1].Addr, vols[2].Addr}, ","), "-db", filepath.Join(t.TempDir(), "db"), "server"}
	cmd, stderr, url := startServer(t, args...)
	value := testenv.RandomBytes(2 * chunkSize)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, url+"/inflight", pr)
	req.ContentLength = int64(len(value))
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	pw.Write(value[:chunkSize])
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	if _, err := http.Get(url + "/health"); err == nil {
		t.Error("master still takes new connections after SIGTERM")
	}
	pw.Write(value[chunkSize:])
	pw.Close()
	if status := <-answered; status != http.StatusCreated {
		t.Fatalf("PUT in flight during shutdown: %d", status)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr)
	}
	_, _, url = startServer(t, args...)
	c := &testCluster{t: t, URL: url, client: &http.Client{Timeout: 10 * time.Second}}
	if status, got := c.Get("/inflight"); status != http.StatusOK || !bytes.Equal(got, value) {
		t.Fatalf("value of the PUT that finished during shutdown: %d", status)
	}
}
