package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
	wantPath := c.Record("/wehave").Path("/wehave")
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
	// A HEAD of a missing key: 404, and no body, as its Content-Length says.
	if resp := c.Do(http.MethodHead, "/wehavenot", nil); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Length") != "0" {
		t.Errorf("HEAD of a missing key: %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
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

func TestIndexSurvivesRestart(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.Put("/persist", []byte("kept"))
	c.RestartMaster()
	if status, got := c.Get("/persist"); status != http.StatusOK || string(got) != "kept" {
		t.Fatalf("after restart: %d %q", status, got)
	}
}
