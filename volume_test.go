package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVolumeSecret: volumes started with DAVKV_SECRET refuse every write that lacks it
// (PUT, DELETE, MKCOL, COPY, MOVE, and the rest but GET and HEAD) with 403 and change
// nothing, while the master, which sends it, works as ever; reads stay open. The secret
// shows in no log, nor in /health or /metrics.
func TestVolumeSecret(t *testing.T) {
	c := startClusterEnv(t, 3, []string{"DAVKV_SECRET=" + testSecret}, func(cfg *ServerConfig) { cfg.Secret = testSecret })
	c.Put("/kept", []byte("the value"))
	c.Put("/gone", []byte("x"))
	if resp := c.Do(http.MethodDelete, "/gone", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE through the master: %d", resp.StatusCode)
	}
	if resp := c.Do("UNLINK", "/kept", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("UNLINK through the master: %d", resp.StatusCode)
	}
	if resp := c.Do(http.MethodDelete, "/kept", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE through the master: %d", resp.StatusCode)
	}
	c.Put("/kept", []byte("the value"))

	rec := c.Record("/kept")
	v := c.Vols[0]
	file := filepath.Join(v.Dir, rec.Path("/kept"))
	value := "http://" + v.Addr + "/" + rec.Path("/kept")
	try := func(method, url string, header ...string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader("overwritten"))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		method, url string
		header      []string
	}{
		{http.MethodPut, value, nil},
		{http.MethodPut, "http://" + v.Addr + "/new/file", nil},
		{http.MethodDelete, value, nil},
		{"MKCOL", "http://" + v.Addr + "/newdir/", nil},
		{"COPY", value, []string{"Destination", "http://" + v.Addr + "/copy"}},
		{"MOVE", value, []string{"Destination", "http://" + v.Addr + "/moved"}},
		{http.MethodPost, value, nil},
		{http.MethodPut, value, []string{secretHeader, "not-the-secret-0123"}},
		{http.MethodPut, value, []string{secretHeader, strings.ToUpper(testSecret)}},
	} {
		if status := try(tt.method, tt.url, tt.header...); status != http.StatusForbidden {
			t.Errorf("%s %s %v without the secret: %d, want 403", tt.method, tt.url, tt.header, status)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "the value" {
		t.Fatalf("the value on the volume after refused writes: %q, %v", b, err)
	}
	for _, name := range []string{"new", "newdir", "copy", "moved"} {
		if _, err := os.Stat(filepath.Join(v.Dir, name)); err == nil {
			t.Errorf("a refused write made %s", name)
		}
	}
	if status := try(http.MethodGet, value); status != http.StatusOK {
		t.Fatalf("GET without the secret: %d, want 200", status)
	}

	// A master without the secret cannot write to these volumes.
	c.Config.Secret = ""
	c.RestartMaster()
	if resp := c.Do(http.MethodPut, "/nosecret", strings.NewReader("x")); resp.StatusCode < 500 {
		t.Fatalf("PUT through a master without the secret: %d, want 5xx", resp.StatusCode)
	}
	if !strings.Contains(c.Logs.String(), "volumes accept writes from anyone") {
		t.Fatal("a master without a secret does not warn")
	}
	c.Config.Secret = testSecret
	c.RestartMaster()
	if status, got := c.Get("/kept"); status != http.StatusOK || string(got) != "the value" {
		t.Fatalf("GET: %d %q", status, got)
	}
	var out bytes.Buffer
	cfg := VerifyConfig{ClusterConfig: ClusterConfig{Secret: testSecret}, Master: c.URL, CheckOptions: CheckOptions{Deep: true, Fix: true}, BatchConfig: BatchConfig{Workers: 2, VolTimeout: time.Second}}
	if err := runVerify(context.Background(), cfg, &out, testLogger(t)); err != nil {
		t.Fatalf("verify -fix: %v\n%s", err, out.String())
	}
	health := readAll(t, c.Do(http.MethodGet, "/health", nil).Body)
	metrics := readAll(t, c.Do(http.MethodGet, metricsPath, nil).Body)
	if strings.Contains(c.Logs.String(), testSecret) || strings.Contains(health, testSecret) || strings.Contains(metrics, testSecret) {
		t.Fatal("the secret is in the master's log, /health or /metrics")
	}
}
