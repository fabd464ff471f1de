package main

// Sending a PUT's body to every replica at once: small values as plain requests with
// fallbacks, large ones streamed through an Upload per volume, the MD5 checked before
// the last chunk goes out.

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"davkv/internal/concurrent"
)

const (
	// chunkSize is how much of a PUT body the master reads at a time. Three such
	// buffers per PUT are all the memory a value costs, however large it is.
	chunkSize = 256 << 10
	// bodyIdleTimeout bounds how long a PUT waits for the client's next bytes.
	bodyIdleTimeout = 60 * time.Second
)

// replicaResult is what replicate did: the value's size and hex MD5, the volumes that
// hold it, and those that failed but may still hold it (and need cleaning up).
type replicaResult struct {
	size             int64
	sum              string
	written, mayHold []string
}

// replicate sends a PUT body to every volume in vols at once. first is the body's
// first chunk, already read; eof says it was all of it. The value must have the MD5
// want, if not nil; with sum its hex MD5 is returned.
//
// A value that fits in one chunk goes out as plain requests, and a volume that does not
// answer or has no room is replaced by the next of spares. For a larger one, a volume
// that cannot be reached at all is replaced before any of the body is sent, and one
// that runs out of room is dropped and, once the others have the value, the value is
// copied from one of them to the next of spares. A larger one streams through an Upload per
// volume, with three chunk buffers: one being written to every volume, one read but
// held back, one being read. The last chunk is held back until the body has ended and
// its MD5 is checked, so that no volume ever sees a complete body that the client did
// not send in full and correctly: a write aborted before then leaves nothing anywhere,
// since nginx only renames a body into place once it is whole.
func (m *Master) replicate(ctx context.Context, rc *http.ResponseController, body io.Reader, first []byte, eof bool, size int64, vols, spares []string, path string, want []byte, sum bool) (res replicaResult, err error) {
	var h hash.Hash
	if sum || want != nil {
		h = md5.New()
	}
	check := func() (string, error) {
		if h == nil {
			return "", nil
		}
		got := h.Sum(nil)
		if want != nil && !bytes.Equal(got, want) {
			return "", fmt.Errorf("%w: got %x, want %x", ErrBadDigest, got, want)
		}
		if !sum {
			return "", nil
		}
		return md5Hex(got), nil
	}

	if eof {
		if h != nil {
			h.Write(first)
		}
		if res.sum, err = check(); err != nil {
			return res, err
		}
		res.size = int64(len(first))
		res.written, res.mayHold, err = m.putSmall(ctx, path, first, vols, spares)
		return res, err
	}

	// Start an upload to every volume; one that cannot be reached is replaced by the
	// next of spares, which is safe as long as no byte of the body has been sent.
	uploads := make([]*Upload, len(vols))
	vols = slices.Clone(vols)
	var sparesMu sync.Mutex
	err = concurrent.Parallel(concurrent.Indexes(len(vols)), func(i int) error {
		for {
			v := vols[i]
			u, err := m.client.StartUpload(ctx, v, path, size, func() bool { return m.health.Up(v) })
			m.health.Failed(err)
			if err == nil {
				uploads[i] = u
				return nil
			}
			var ve *VolumeError
			sparesMu.Lock()
			next := ""
			if errors.As(err, &ve) && ve.Unreachable() && len(spares) > 0 && ctx.Err() == nil {
				next, spares = spares[0], spares[1:]
			}
			sparesMu.Unlock()
			if next == "" {
				return err
			}
			vols[i] = next
		}
	})
	// abort ends every upload early: no volume got the body whole, so none keeps it.
	abort := func(cause error) (replicaResult, error) {
		for _, u := range uploads {
			if u != nil {
				u.Abort()
			}
		}
		return replicaResult{}, cause
	}
	if err != nil {
		return abort(err)
	}
	// dropped are the errors of the uploads given up because their volume ran out of
	// room (their uploads are nil from then on).
	dropped := make([]error, len(vols))
	// send writes chunk to every volume and, meanwhile, adds it to the hash, so that
	// hashing costs no time on a machine with a core to spare.
	send := func(chunk []byte, hashIt bool) <-chan error {
		done := make(chan error, 1)
		go func() {
			hashed := make(chan struct{})
			if hashIt && h != nil {
				go func() { h.Write(chunk); close(hashed) }()
			} else {
				close(hashed)
			}
			err := concurrent.Parallel(concurrent.Indexes(len(uploads)), func(i int) error {
				if uploads[i] == nil {
					return nil // dropped for want of room
				}
				_, err := uploads[i].Write(chunk)
				m.health.Failed(err)
				if ve := (*VolumeError)(nil); errors.As(err, &ve) && ve.NoSpace() {
					// Out of room: drop this replica, which is copied to a spare
					// volume once the others have the value.
					uploads[i].Abort()
					uploads[i], dropped[i] = nil, err
					return nil
				}
				return err
			})
			if err == nil && !slices.ContainsFunc(uploads, func(u *Upload) bool { return u != nil }) {
				err = errors.Join(dropped...)
			}
			<-hashed
			done <- err
		}()
		return done
	}

	b1, b2 := m.buffers.Get().(*[]byte), m.buffers.Get().(*[]byte)
	defer m.buffers.Put(b1)
	defer m.buffers.Put(b2)
	bufs := [3][]byte{first[:cap(first)], *b1, *b2}
	// held is read but not sent; reading is being filled; idle is in flight or unused.
	held, reading, idle := 0, 1, 2
	heldLen := len(first)
	total := int64(len(first))
	var inflight <-chan error
	for !eof {
		var next []byte
		var rerr error
		next, eof, rerr = fill(body, bufs[reading], rc)
		if inflight != nil {
			werr := <-inflight
			inflight = nil // received: a body ending at a chunk's end must not wait again
			if werr != nil {
				return abort(werr)
			}
		}
		if rerr != nil {
			return abort(rerr)
		}
		if len(next) == 0 {
			break
		}
		total += int64(len(next))
		inflight = send(bufs[held][:heldLen], true)
		held, reading, idle = reading, idle, held
		heldLen = len(next)
	}
	if inflight != nil {
		if werr := <-inflight; werr != nil {
			return abort(werr)
		}
	}
	if h != nil {
		h.Write(bufs[held][:heldLen])
	}
	if res.sum, err = check(); err != nil {
		return abort(err)
	}
	if werr := <-send(bufs[held][:heldLen], false); werr != nil {
		return abort(werr)
	}
	results := make([]error, len(vols))
	concurrent.Parallel(concurrent.Indexes(len(vols)), func(i int) error {
		if uploads[i] == nil {
			results[i] = dropped[i]
			return nil
		}
		results[i] = uploads[i].Finish()
		m.health.Failed(results[i])
		return nil
	})
	for i, err := range results {
		if err == nil {
			res.written = append(res.written, vols[i])
		} else if mayHaveStored(err) {
			res.mayHold = append(res.mayHold, vols[i])
		}
	}
	res.size = total
	// A replica refused for want of room is copied from one written to the next
	// spare volume: the body is gone, but the volumes that took it have it whole.
	for i, err := range results {
		var ve *VolumeError
		if !errors.As(err, &ve) || !ve.NoSpace() {
			continue
		}
		for len(spares) > 0 && len(res.written) > 0 && ctx.Err() == nil {
			dst := spares[0]
			spares = spares[1:]
			cerr := m.client.Copy(ctx, res.written[0], dst, path, total, res.sum)
			m.health.Failed(cerr)
			if cerr == nil {
				m.log.Warn("a volume ran out of room during a PUT; the replica was copied to another", "path", path, "full", vols[i], "to", dst)
				res.written, results[i] = append(res.written, dst), nil
				break
			}
			if mayHaveStored(cerr) {
				res.mayHold = append(res.mayHold, dst)
			}
		}
	}
	return res, errors.Join(results...)
}

// fill reads body into buf until buf is full or the body ends. eof says the body ended.
// Each read may wait bodyIdleTimeout for the client (rc's; nil for a body that is not
// a request's). A read that fails is the client's
// fault (it hung up, or sent less than its Content-Length) and wraps ErrClientBody.
func fill(body io.Reader, buf []byte, rc *http.ResponseController) (data []byte, eof bool, err error) {
	n := 0
	for n < len(buf) {
		if rc != nil {
			rc.SetReadDeadline(time.Now().Add(bodyIdleTimeout))
		}
		k, err := body.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			return buf[:n], true, nil
		}
		if err != nil {
			return buf[:n], false, fmt.Errorf("%w: %w", ErrClientBody, err)
		}
	}
	return buf[:n], false, nil
}

// putSmall stores data on every volume of vols at once. A volume that does not answer
// is marked down, and one out of room marked full, and replaced by the next of spares,
// so that a volume dying or filling up under load costs no PUT; one that answers with
// another error fails the PUT.
func (m *Master) putSmall(ctx context.Context, path string, data []byte, vols, spares []string) (written, mayHold []string, err error) {
	var errs []error
	for targets := vols; len(targets) > 0; {
		var next []string
		for i, err := range m.client.PutAll(ctx, targets, path, data) {
			m.health.Failed(err)
			var ve *VolumeError
			switch {
			case err == nil:
				written = append(written, targets[i])
				continue
			case mayHaveStored(err):
				mayHold = append(mayHold, targets[i])
			}
			if errors.As(err, &ve) && (ve.Unreachable() || ve.NoSpace()) && len(spares) > 0 && ctx.Err() == nil {
				next, spares = append(next, spares[0]), spares[1:]
				continue
			}
			errs = append(errs, err)
		}
		targets = next
	}
	return written, mayHold, errors.Join(errs...)
}

// mayHaveStored reports whether a replica write that ended with err (nil for success)
// can have left a complete file on its volume. Only a volume that answered with an error status
// (nginx renames a body into place only on success) or that could not be reached at
// all proves it holds nothing.
func mayHaveStored(err error) bool {
	var ve *VolumeError
	if errors.As(err, &ve) && ve.Status != 0 {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
}
