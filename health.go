package main

// Which volumes answer, and which have room: probes every interval, and failures
// reported by requests in between, so that the master redirects only to volumes that
// are up and writes only to those that also have room.

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"davkv/internal/concurrent"
	"davkv/internal/httpconn"
	"davkv/internal/layout"
)

// Probe checks that volume answers at all, with the cheapest request it serves: a HEAD
// of its root listing.
func (c *VolumeClient) Probe(ctx context.Context, volume string) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodHead, volume, "", "", nil, 0)
	if err != nil {
		return err
	}
	httpconn.Drain(resp)
	if resp.StatusCode >= 500 {
		return &VolumeError{Op: http.MethodHead, Volume: volume, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return nil
}

// Health tracks which volumes answer, so that the master can redirect a GET without
// asking a volume first. A probe loop checks every volume each interval, and the master
// reports the failures it sees in between, so a dead volume is noticed at once when
// it is used and within interval+timeout when it is not.
type Health struct {
	// Back, if set, is called when a volume that was down answers a probe again, so
	// that what waits for it (the sweeper's deletes) is retried at once. Set it
	// before Start.
	Back func(volume string)

	client   *VolumeClient
	interval time.Duration
	volumes  []string
	state    map[string]*volumeHealth // fixed at construction; read without locking
}

type volumeHealth struct {
	up      atomic.Bool
	lastErr atomic.Pointer[string]
	// fullUntil is when a volume that refused a write for want of room may be written
	// to again (Unix nanoseconds): one write then tells whether it has room.
	fullUntil atomic.Int64
}

// fullRecheck is how long a volume that is out of room gets no writes before one is
// tried again.
const fullRecheck = 30 * time.Second

// NewHealth tracks volumes, probing each every interval; until Start's first probe,
// every volume counts as up.
func NewHealth(client *VolumeClient, volumes []string, interval time.Duration) *Health {
	h := &Health{client: client, interval: interval, volumes: volumes, state: make(map[string]*volumeHealth, len(volumes))}
	for _, v := range volumes {
		s := &volumeHealth{}
		s.up.Store(true)
		h.state[v] = s
	}
	return h
}

// Start probes every volume once, waiting for the answers, then keeps probing in the
// background, counted in wg, until ctx ends.
func (h *Health) Start(ctx context.Context, wg *sync.WaitGroup) {
	h.probeAll(ctx)
	wg.Go(func() { concurrent.Every(ctx, h.interval, func() { h.probeAll(ctx) }) })
}

func (h *Health) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, v := range h.volumes {
		wg.Go(func() { h.set(v, h.client.Probe(ctx, v)) })
	}
	wg.Wait()
}

func (h *Health) set(volume string, err error) {
	s, ok := h.state[volume]
	if !ok {
		return
	}
	if err != nil {
		msg := err.Error()
		s.lastErr.Store(&msg)
		s.up.Store(false)
		return
	}
	s.lastErr.Store(nil)
	if !s.up.Swap(true) && h.Back != nil {
		h.Back(volume)
	}
}

// Up reports whether volume answered its last probe and has not failed since. Volumes
// Health does not track count as up: the index may name volumes no longer configured;
// so does every volume for a nil Health.
func (h *Health) Up(volume string) bool {
	if h == nil {
		return true
	}
	s, ok := h.state[volume]
	return !ok || s.up.Load()
}

// Full reports whether volume refused a write for want of room less than fullRecheck
// ago. It still serves reads and deletes.
func (h *Health) Full(volume string) bool {
	s, ok := h.state[volume]
	return ok && time.Now().UnixNano() < s.fullUntil.Load()
}

// Writable reports whether volume may take writes: it is up and not full.
func (h *Health) Writable(volume string) bool { return h.Up(volume) && !h.Full(volume) }

// Failed records err from requests to volumes (one error, or several joined): a volume
// that did not answer at all is marked down until a probe sees it back; one that
// refused a write for want of room is marked full for fullRecheck. A nil Health
// ignores them.
func (h *Health) Failed(err error) {
	if h == nil || err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			h.Failed(e)
		}
		return
	}
	var ve *VolumeError
	switch {
	case !errors.As(err, &ve):
	case ve.Unreachable():
		h.set(ve.Volume, err)
	case ve.NoSpace():
		if s, ok := h.state[ve.Volume]; ok {
			s.fullUntil.Store(time.Now().Add(fullRecheck).UnixNano())
		}
	}
}

// Status returns every tracked volume's state, in configuration order.
func (h *Health) Status() []VolumeStatus {
	out := make([]VolumeStatus, len(h.volumes))
	for i, v := range h.volumes {
		s := h.state[v]
		out[i] = VolumeStatus{Volume: v, Up: s.up.Load(), Full: h.Full(v)}
		if e := s.lastErr.Load(); e != nil && !out[i].Up {
			out[i].Error = *e
		}
	}
	return out
}

// StatusIn is Status with where p counts each volume to be (its zone and host) and its
// weight.
func (h *Health) StatusIn(p layout.Placement) []VolumeStatus {
	vols := h.Status()
	for i, v := range vols {
		vols[i].Zone, vols[i].Host, vols[i].Weight = p.Zone(v.Volume), layout.Host(v.Volume), p.Weight(v.Volume)
	}
	return vols
}
