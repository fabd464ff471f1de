package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestHealthFull: a write refused for want of room marks its volume full, not down,
// for fullRecheck; other failures do not.
func TestHealthFull(t *testing.T) {
	h := NewHealth(nil, []string{"a:1", "b:2"}, time.Hour)
	tests := []struct {
		name     string
		err      error
		up, full bool
		writable bool
	}{
		{"507 to a PUT", &VolumeError{Op: http.MethodPut, Volume: "a:1", Status: http.StatusInsufficientStorage}, true, true, false},
		{"500 to a PUT (nginx on a full file system)", &VolumeError{Op: http.MethodPut, Volume: "a:1", Status: http.StatusInternalServerError}, true, true, false},
		{"500 to a GET", &VolumeError{Op: http.MethodGet, Volume: "a:1", Status: http.StatusInternalServerError}, true, false, true},
		{"403 to a PUT", &VolumeError{Op: http.MethodPut, Volume: "a:1", Status: http.StatusForbidden}, true, false, true},
		{"refused", &VolumeError{Op: http.MethodPut, Volume: "a:1", Err: errors.New("connection refused")}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHealth(nil, []string{"a:1"}, time.Hour)
			h.Failed(errors.Join(tt.err))
			if h.Up("a:1") != tt.up || h.Full("a:1") != tt.full || h.Writable("a:1") != tt.writable {
				t.Fatalf("up %v full %v writable %v; want %v %v %v", h.Up("a:1"), h.Full("a:1"), h.Writable("a:1"), tt.up, tt.full, tt.writable)
			}
		})
	}
	// Once fullRecheck has passed, the volume is tried again.
	h.Failed(&VolumeError{Op: http.MethodPut, Volume: "b:2", Status: http.StatusInsufficientStorage})
	if !h.Full("b:2") || h.Full("a:1") {
		t.Fatalf("full: a %v, b %v; want only b", h.Full("a:1"), h.Full("b:2"))
	}
	h.state["b:2"].fullUntil.Store(time.Now().Add(-time.Second).UnixNano())
	if h.Full("b:2") || !h.Writable("b:2") {
		t.Fatalf("still full after fullRecheck")
	}
	if st := h.Status(); st[1].Volume != "b:2" || st[1].Full || !st[1].Up {
		t.Fatalf("Status: %+v", st)
	}
}

// TestHealthPage: /health answers 503 when fewer volumes are up than -replicas, so a
// load balancer takes the master out, and /health?ready answers 503 until start-up
// recovery has finished; both keep the JSON. A volume coming back is reported by Back.
func TestHealthPage(t *testing.T) {
	c := startCluster(t, 3, nil)
	get := func(query string) (int, HealthPage) {
		t.Helper()
		resp := c.Do(http.MethodGet, "/health"+query, nil)
		var page HealthPage
		if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
			t.Fatalf("GET /health%s: %d, %v", query, resp.StatusCode, err)
		}
		return resp.StatusCode, page
	}
	testenv.Eventually(t, 5*time.Second, "recovery did not finish", func() bool { status, _ := get("?ready"); return status == http.StatusOK })
	if status, page := get(""); status != http.StatusOK || !page.Ready || len(page.Volumes) != 3 {
		t.Fatalf("/health with every volume up: %d %+v", status, page)
	}
	// A Health of its own over the first volume, probed by hand, tells when Back runs.
	var back []string
	h := NewHealth(NewVolumeClient(time.Second, ""), []string{c.Vols[0].Addr}, time.Hour)
	h.Back = func(v string) { back = append(back, v) }
	c.Vols[0].Stop()
	testenv.Eventually(t, 5*time.Second, "/health with a volume down is not 503", func() bool { status, _ := get(""); return status == http.StatusServiceUnavailable })
	if _, page := get(""); page.Volumes[0].Up || page.Volumes[0].Error == "" || !page.Volumes[1].Up {
		t.Fatalf("/health with a volume down: %+v", page)
	}
	h.probeAll(context.Background())
	if err := c.Vols[0].Start(); err != nil {
		t.Fatal(err)
	}
	h.probeAll(context.Background())
	h.probeAll(context.Background())
	if len(back) != 1 || back[0] != c.Vols[0].Addr {
		t.Fatalf("Back called for %q, want once for %s", back, c.Vols[0].Addr)
	}
	testenv.Eventually(t, 5*time.Second, "/health with the volume back is not 200", func() bool { status, _ := get(""); return status == http.StatusOK })

	// A master that has not run its recovery is not ready.
	cfg := c.Config
	cfg.DB = filepath.Join(t.TempDir(), "index")
	m, err := NewMaster(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, tt := range []struct {
		query string
		want  int
	}{{"", http.StatusOK}, {"?ready", http.StatusServiceUnavailable}} {
		w := httptest.NewRecorder()
		m.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health"+tt.query, nil))
		if w.Code != tt.want || !strings.Contains(w.Body.String(), `"ready":false`) {
			t.Errorf("/health%s before recovery: %d %s, want %d", tt.query, w.Code, w.Body, tt.want)
		}
	}
}
