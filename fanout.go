package main

// Sending one small request (a PUT of a small value, a DELETE) to several volumes from
// one goroutine, and reading their answers: the master's cheapest path per key.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"davkv/internal/concurrent"
	"davkv/internal/httpconn"
)

// fanOutMax is the largest body PutAll sends to its volumes one after another from the
// calling goroutine; a larger one is sent to each from a goroutine of its own, so that
// no volume waits for another's copy.
const fanOutMax = 64 << 10

// PutAll stores data at path on each of volumes, at once, and returns each volume's
// error (nil for success), in order. See Put.
func (c *VolumeClient) PutAll(ctx context.Context, volumes []string, path string, data []byte) []error {
	if len(data) > fanOutMax {
		errs := make([]error, len(volumes))
		concurrent.Parallel(concurrent.Indexes(len(volumes)), func(i int) error {
			errs[i] = c.Put(ctx, volumes[i], path, bytes.NewReader(data), int64(len(data)))
			return nil
		})
		return errs
	}
	return c.fanOut(ctx, http.MethodPut, volumes, path, data, true, putStored)
}

// DeleteAll removes path from each of volumes, at once, and returns each volume's
// error (nil for success, or for a file already gone), in order.
func (c *VolumeClient) DeleteAll(ctx context.Context, volumes []string, path string) []error {
	return c.fanOut(ctx, http.MethodDelete, volumes, path, nil, false, func(status int) bool {
		return status == http.StatusOK || status == http.StatusNoContent || status == http.StatusNotFound
	})
}

// fanOut sends one small request to several servers and collects the answers, all
// from the calling goroutine: it writes every request, then reads every answer, which
// the servers meanwhile work out in parallel. Compared with a goroutine per server,
// this spares the master the goroutines' start, their stacks' growth and most of
// their wake-ups, for every small PUT and DELETE. A server that can't be reached
// holds up the others' requests for as long as its connect may take (Timeout); the
// master sends none to volumes it knows are down. ok says which statuses succeed.
func (c *VolumeClient) fanOut(ctx context.Context, op string, servers []string, path string, body []byte, hasBody bool, ok func(status int) bool) []error {
	var start time.Time
	if c.Observe != nil {
		start = time.Now()
	}
	errs := make([]error, len(servers))
	conns := make([]*httpconn.Conn, len(servers))
	reused := make([]bool, len(servers))
	fail := func(i int, status int, err error) {
		if status == 0 && ctx.Err() != nil {
			err = ctx.Err()
		}
		errs[i] = &VolumeError{Op: op, Volume: servers[i], Path: path, Status: status, Err: err}
	}
	if err := ctx.Err(); err != nil {
		for i := range servers {
			fail(i, 0, err)
		}
		return errs
	}
	var again []int // requests to send once more: see below
	for i, server := range servers {
		vc, re, err := c.conns.Get(ctx, server)
		if err != nil {
			fail(i, 0, err)
			continue
		}
		if err := vc.Send(op, path, body, hasBody); err != nil {
			vc.Close()
			if re && ctx.Err() == nil {
				again = append(again, i)
			} else {
				fail(i, 0, err)
			}
			continue
		}
		conns[i], reused[i] = vc, re
	}
	stop := context.AfterFunc(ctx, func() {
		for _, vc := range conns {
			if vc != nil {
				vc.Interrupt()
			}
		}
	})
	deadline := time.Now().Add(c.Timeout)
	lost := make([]error, len(servers)) // why a request sent once more failed the first time
	for i, vc := range conns {
		if vc == nil {
			continue
		}
		// Every server has had until deadline to answer. Once it has passed (a server
		// before this one did not answer), an answer that came meanwhile is still taken.
		if late := time.Now().Add(time.Millisecond); late.After(deadline) {
			vc.SetReadDeadline(late)
		} else {
			vc.SetReadDeadline(deadline)
		}
		status, reuse, err := vc.ReadStatus(op)
		switch {
		case err != nil:
			vc.Close()
			conns[i] = nil
			if reused[i] && ctx.Err() == nil && !isTimeout(err) {
				again, lost[i] = append(again, i), err
				continue
			}
			fail(i, 0, err)
			continue
		case !reuse:
			vc.Close()
			conns[i] = nil
		}
		if !ok(status) {
			fail(i, status, ErrVolumeStatus)
		}
	}
	interrupted := !stop()
	for _, vc := range conns {
		switch {
		case vc == nil:
		case interrupted:
			vc.Close()
		default:
			c.conns.Put(vc)
		}
	}
	if c.Observe != nil {
		for i, server := range servers {
			if !slices.Contains(again, i) { // those do observes
				c.observe(server, op, start, int64(len(body)), errs[i])
			}
		}
	}
	// A request whose kept-alive connection turned out closed by the server is sent
	// once more, on a new connection, as net/http's Transport does: a PUT of a whole
	// value and a DELETE can be repeated.
	for _, i := range again {
		var r io.Reader
		if hasBody {
			r = bytes.NewReader(body)
		}
		resp, err := c.do(ctx, op, servers[i], path, "", r, int64(len(body)))
		var ve *VolumeError
		if err != nil && lost[i] != nil && errors.As(err, &ve) && ve.Status == 0 {
			// The first request may have reached the server (mayHaveStored): say
			// that rather than why the second one failed.
			fail(i, 0, lost[i])
			continue
		}
		if err != nil {
			errs[i] = err
			continue
		}
		httpconn.Drain(resp)
		if !ok(resp.StatusCode) {
			fail(i, resp.StatusCode, ErrVolumeStatus)
		}
	}
	return errs
}
