package main

// A PUT whose body is written as it comes, straight into a new connection: how large
// values stream to each replica.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"davkv/internal/httpconn"
)

// Upload is a PUT whose body is written as it comes, straight into the connection: the
// master streams a large value to every replica through one each, with no copy between.
type Upload struct {
	client       *VolumeClient
	vc           *httpconn.Conn
	volume, path string
	size, sent   int64
	up           func() bool
	stop         func() bool
	err          error
	// start and observed serve VolumeClient.Observe, which hears of an upload once.
	start    time.Time
	observed bool
}

// uploadStall bounds how long one write of an upload's body may wait for a volume that
// still counts as up: long enough for a volume whose disk is busy.
func (c *VolumeClient) uploadStall() time.Duration { return 10 * c.Timeout }

// StartUpload begins a PUT of path on volume with a body of size bytes (-1 to send it
// chunked). up, if not nil, says whether the volume still counts as up: a write that
// waits longer than Timeout fails as soon as it does not. It always dials a new
// connection, since a body sent as it comes cannot be sent again on a kept-alive
// connection that the volume has closed.
func (c *VolumeClient) StartUpload(ctx context.Context, volume, path string, size int64, up func() bool) (*Upload, error) {
	vc, err := c.conns.Dial(ctx, volume, 4<<10)
	if err != nil {
		return nil, &VolumeError{Op: http.MethodPut, Volume: volume, Path: path, Err: err}
	}
	u := &Upload{client: c, vc: vc, volume: volume, path: path, size: size, up: up, stop: context.AfterFunc(ctx, vc.Interrupt), start: time.Now()}
	vc.WriteHead(http.MethodPut, path, "", true, size)
	if err := vc.Flush(); err != nil {
		u.Abort()
		return nil, u.fail(err)
	}
	return u, nil
}

// Write sends p as the next part of the body.
func (u *Upload) Write(p []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	if u.size >= 0 && u.sent+int64(len(p)) > u.size {
		u.err = &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Err: fmt.Errorf("body longer than its %d bytes", u.size)}
		return 0, u.err
	}
	bufs := net.Buffers{p}
	if u.size < 0 {
		bufs = net.Buffers{[]byte(strconv.FormatInt(int64(len(p)), 16) + "\r\n"), p, []byte("\r\n")}
	}
	// Wait for the volume to take the bytes Timeout at a time, while it counts as up,
	// up to uploadStall. WriteTo consumes what it wrote, so a retry sends the rest.
	timeout := u.client.Timeout
	giveUp := time.Now().Add(u.client.uploadStall())
	var err error
	for {
		u.vc.SetUploadDeadline(time.Now().Add(timeout))
		_, err = bufs.WriteTo(u.vc.Conn)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() || time.Now().After(giveUp) || (u.up != nil && !u.up()) {
			break
		}
	}
	if err != nil {
		u.err = u.fail(err)
		return 0, u.err
	}
	u.sent += int64(len(p))
	return len(p), nil
}

// fail makes err a VolumeError. A volume that answered before taking the whole body
// (to refuse it) and closed the connection is heard out, so that its status is told.
func (u *Upload) fail(err error) error {
	if resp, rerr := u.vc.ReadAnswer(context.Background(), http.MethodPut, 100*time.Millisecond); rerr == nil {
		resp.Body.Close()
		return &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Err: err}
}

// Finish ends the body, waits for the volume's answer and checks it.
func (u *Upload) Finish() error {
	err := u.finish()
	u.observe(err)
	return err
}

func (u *Upload) finish() error {
	defer u.stop()
	if u.err != nil {
		u.vc.Close()
		return u.err
	}
	if u.size >= 0 && u.sent != u.size {
		u.vc.Close()
		return &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Err: fmt.Errorf("body of %d bytes, not %d", u.sent, u.size)}
	}
	if u.size < 0 {
		if _, err := u.vc.Conn.Write([]byte("0\r\n\r\n")); err != nil {
			u.vc.Close()
			return u.fail(err)
		}
	}
	resp, err := u.vc.ReadAnswer(context.Background(), http.MethodPut, u.client.Timeout)
	if err != nil {
		u.vc.Close()
		return &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Err: err}
	}
	return putStatus(resp, u.volume, u.path)
}

// Abort gives up the upload: the volume sees the body end early and keeps nothing.
func (u *Upload) Abort() {
	u.stop()
	u.vc.Close()
	u.observe(errUploadAborted)
}

func (u *Upload) observe(err error) {
	if !u.observed {
		u.observed = true
		u.client.observe(u.volume, http.MethodPut, u.start, u.sent, err)
	}
}

// errUploadAborted is what Observe hears of an upload that was abandoned.
var errUploadAborted = errors.New("upload aborted")
