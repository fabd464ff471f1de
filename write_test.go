package main

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

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

func TestPutBodies(t *testing.T) {
	c := startCluster(t, 3, nil)
	sizes := []int{1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 17}
	for _, size := range sizes {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/chunked=%v", size, chunked), func(t *testing.T) {
				value := testenv.RandomBytes(size)
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
	if _, err := c.Master.index.Get("/empty"); !errors.Is(err, index.ErrNotFound) {
		t.Errorf("index has /empty: %v", err)
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Errorf("files: %q", files)
	}
}

func TestContentMD5(t *testing.T) {
	c := startCluster(t, 3, nil)
	for _, size := range []int{100, 2*chunkSize + 5} {
		value := testenv.RandomBytes(size)
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
					if files := keyFiles(c, key); len(files) > 0 {
						t.Fatalf("refused value stored: %+v", files)
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
	value := testenv.RandomBytes(64 << 20)
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
		if strings.HasSuffix(f, c.Record("/u/a").MarkerPath("/u/a")) {
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
