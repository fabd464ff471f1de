package main

import (
	"errors"
	"net/http"
	"testing"
	"time"
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
