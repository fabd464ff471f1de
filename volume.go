package main

// The VolumeClient: the one HTTP client of davkv, for volumes and masters alike, with
// its requests (Put, Get, Stat, List, Copy, Delete) and its errors (VolumeError).

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"davkv/internal/httpconn"
)

// VolumeError is a failed request to a volume. Status is the HTTP status the volume
// answered, or 0 if it did not answer at all.
type VolumeError struct {
	Op     string
	Volume string
	Path   string
	Status int
	Err    error
}

func (e *VolumeError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("volume %s: %s /%s: status %d", e.Volume, e.Op, e.Path, e.Status)
	}
	return fmt.Sprintf("volume %s: %s /%s: %v", e.Volume, e.Op, e.Path, e.Err)
}

func (e *VolumeError) Unwrap() error { return e.Err }

// Unreachable reports whether the volume did not answer at all (refused, reset, timed
// out), as opposed to answering with an error status. Only the former says the volume
// is down.
func (e *VolumeError) Unreachable() bool { return e.Status == 0 && !errors.Is(e.Err, context.Canceled) }

// NoSpace reports whether a write failed for want of room on the volume: 507, or the
// 500 that nginx answers when its disk fills under a body (its temporary file cannot
// grow; seen on a full tmpfs). A write that fails so may succeed on another volume.
func (e *VolumeError) NoSpace() bool {
	return e.Op == http.MethodPut && (e.Status == http.StatusInsufficientStorage || e.Status == http.StatusInternalServerError)
}

// isTimeout reports whether err is a request that ran out of time: a volume that may
// still do what was asked, as opposed to one that refused it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// VolumeClient is the one HTTP client of davkv: the master, rebuild, rebalance and the
// thrasher all use it, for volumes and masters alike, so connection reuse and timeouts
// are tuned in one place.
//
// Its requests are HTTP/1.1 exchanges over kept-alive connections that it pools
// itself (internal/httpconn: up to MaxIdlePerServer per server), written and read on
// the calling goroutine. net/http's Transport hands every request to two goroutines of its own,
// which cost the master about 45 µs of CPU per volume request, most of its cost per
// key; this costs a third of that. PutAll and DeleteAll send a small request to
// several volumes from one goroutine and parse the answers by hand (see fanOut),
// which took another tenth off the master's CPU per key; the other requests' answers
// are parsed by net/http.
type VolumeClient struct {
	// Timeout bounds connecting to a server and waiting for its answer once the
	// request is sent. Nothing bounds the whole request, since values may be
	// gigabytes: a context does.
	Timeout time.Duration
	// Secret, if set, is sent with every request as the secretHeader, which volumes
	// started with the same secret require of writes (and, with signed reads, of
	// reads without a signature). Empty sends none.
	Secret string
	// Observe, if set, hears of every request to a server once its answer's head is in
	// or it failed, for the master's metrics; it must be quick. Nil tells no one.
	Observe func(VolumeRequest)

	conns *httpconn.Pool
	// scheme is how URL names the servers: http, or https after UseTLS.
	scheme string
}

// VolumeRequest is one request to a volume (or master), as VolumeClient.Observe hears
// of it.
type VolumeRequest struct {
	Volume, Op string
	// Took is from the request's start to its answer's head, or its failure.
	Took time.Duration
	// Sent is how many bytes of body were sent.
	Sent int64
	Err  error
}

// observe tells Observe of a request that began at start.
func (c *VolumeClient) observe(volume, op string, start time.Time, sent int64, err error) {
	if c.Observe != nil {
		c.Observe(VolumeRequest{Volume: volume, Op: op, Took: time.Since(start), Sent: sent, Err: err})
	}
}

// secretHeader carries the volumes' shared secret (see VolumeClient.Secret and
// volume.sh).
const secretHeader = "X-Davkv-Secret"

// NewVolumeClient returns a client whose connect and answer waits are bounded by
// timeout, and that sends the volumes' secret (empty: none; see Secret).
func NewVolumeClient(timeout time.Duration, secret string) *VolumeClient {
	header := ""
	if secret != "" {
		header = secretHeader + ": " + secret + "\r\n"
	}
	return &VolumeClient{Timeout: timeout, Secret: secret, conns: httpconn.NewPool(timeout, header), scheme: "http"}
}

// UseTLS makes c speak HTTPS to every server, with cfg (nil: the system's trusted
// certificates, or those of $SSL_CERT_FILE), before its first request.
func (c *VolumeClient) UseTLS(cfg *tls.Config) *VolumeClient {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c.conns.TLS, c.scheme = cfg, "https"
	return c
}

// CloseIdle closes the kept-alive connections that no request is using.
func (c *VolumeClient) CloseIdle() { c.conns.CloseIdle() }

// URL returns the address of path on volume.
func (c *VolumeClient) URL(volume, path string) string {
	return c.scheme + "://" + volume + "/" + path
}

func (c *VolumeClient) do(ctx context.Context, op, volume, path, extra string, body io.Reader, size int64) (*http.Response, error) {
	var start time.Time
	if c.Observe != nil {
		start = time.Now()
	}
	resp, sent, err := c.do1(ctx, op, volume, path, extra, body, size)
	if c.Observe != nil {
		c.observe(volume, op, start, sent, err)
	}
	return resp, err
}

// do1 is do's work; it also returns how much of body it sent.
func (c *VolumeClient) do1(ctx context.Context, op, volume, path, extra string, body io.Reader, size int64) (*http.Response, int64, error) {
	if ctx.Err() != nil {
		return nil, 0, &VolumeError{Op: op, Volume: volume, Path: path, Err: ctx.Err()}
	}
	counted := &countingReader{r: body}
	for attempt := 0; ; attempt++ {
		vc, reused, err := c.conns.Get(ctx, volume)
		if err != nil {
			return nil, counted.n, &VolumeError{Op: op, Volume: volume, Path: path, Err: err}
		}
		var resp *http.Response
		if body == nil {
			resp, err = vc.Exchange(ctx, op, path, extra, nil, size)
		} else {
			resp, err = vc.Exchange(ctx, op, path, extra, counted, size)
		}
		if err == nil {
			return resp, counted.n, nil
		}
		vc.Close()
		// A kept-alive connection that the volume closed meanwhile fails at once:
		// try again on a new one, if the body can be sent again. One that timed out
		// had the request, which may still be at work: no second copy.
		if reused && attempt == 0 && ctx.Err() == nil && !isTimeout(err) && counted.rewind() {
			continue
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, counted.n, &VolumeError{Op: op, Volume: volume, Path: path, Err: err}
	}
}

// putStored says whether a PUT's answer status means the volume stored the value.
func putStored(status int) bool {
	return status == http.StatusCreated || status == http.StatusNoContent
}

// countingReader tells whether a body can be sent again: if none of it was read, or
// if it can seek back to its start.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) rewind() bool {
	if c.n == 0 {
		return true
	}
	if s, ok := c.r.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekStart); err == nil {
			c.n = 0
			return true
		}
	}
	return false
}

// ErrVolumeStatus is wrapped by VolumeErrors for answers with an unexpected status.
var ErrVolumeStatus = errors.New("unexpected status")

// Put stores body at path on volume. size is the body's length, or -1 if unknown (the
// body is then sent chunked). nginx writes to a temporary file and renames it into
// place only when the whole body has arrived, so a failed Put leaves no file.
func (c *VolumeClient) Put(ctx context.Context, volume, path string, body io.Reader, size int64) error {
	resp, err := c.do(ctx, http.MethodPut, volume, path, "", body, size)
	if err != nil {
		return err
	}
	return putStatus(resp, volume, path)
}

// putStatus checks the answer to a PUT and releases it.
func putStatus(resp *http.Response, volume, path string) error {
	defer httpconn.Drain(resp)
	if !putStored(resp.StatusCode) {
		return &VolumeError{Op: http.MethodPut, Volume: volume, Path: path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return nil
}

// Move renames path from to path to on volume, with WebDAV MOVE: on one file system
// a rename (no byte is copied, the inode stays); across file systems (subvolumes on
// disks of their own) nginx copies the file on the volume's machine, never over the
// network. A destination that exists is replaced. A missing source is a VolumeError
// with Status 404.
func (c *VolumeClient) Move(ctx context.Context, volume, from, to string) error {
	resp, err := c.do(ctx, "MOVE", volume, from, "Destination: "+c.URL(volume, to)+"\r\n", nil, 0)
	if err != nil {
		return err
	}
	defer httpconn.Drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
		return &VolumeError{Op: "MOVE", Volume: volume, Path: from, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return nil
}

// Delete removes path from volume. A file that is already gone is not an error.
func (c *VolumeClient) Delete(ctx context.Context, volume, path string) error {
	return c.DeleteAll(ctx, []string{volume}, path)[0]
}

// Get opens path on volume for reading; the caller closes the body. A missing file is a
// VolumeError with Status 404.
func (c *VolumeClient) Get(ctx context.Context, volume, path string) (io.ReadCloser, int64, error) {
	return c.get(ctx, volume, path, "", http.StatusOK)
}

// GetRange opens n bytes of path on volume from offset off for reading; the caller
// closes the body. A file shorter than off+n is a VolumeError with Status 416.
func (c *VolumeClient) GetRange(ctx context.Context, volume, path string, off, n int64) (io.ReadCloser, error) {
	extra := "Range: bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10) + "\r\n"
	body, got, err := c.get(ctx, volume, path, extra, http.StatusPartialContent)
	if err == nil && got != n {
		body.Close()
		return nil, &VolumeError{Op: http.MethodGet, Volume: volume, Path: path, Err: fmt.Errorf("range of %d bytes, not %d", got, n)}
	}
	return body, err
}

// get sends a GET with extra header lines and opens the body of an answer with status
// want.
func (c *VolumeClient) get(ctx context.Context, volume, path, extra string, want int) (io.ReadCloser, int64, error) {
	resp, err := c.do(ctx, http.MethodGet, volume, path, extra, nil, 0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != want {
		httpconn.Drain(resp)
		return nil, 0, &VolumeError{Op: http.MethodGet, Volume: volume, Path: path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return resp.Body, resp.ContentLength, nil
}

// Stat returns the size of path on volume. A missing file is a VolumeError with
// Status 404.
func (c *VolumeClient) Stat(ctx context.Context, volume, path string) (int64, error) {
	size, _, err := c.StatFile(ctx, volume, path)
	return size, err
}

// StatFile is Stat with the file's modification time (zero if nginx gave none).
func (c *VolumeClient) StatFile(ctx context.Context, volume, path string) (int64, time.Time, error) {
	resp, err := c.do(ctx, http.MethodHead, volume, path, "", nil, 0)
	if err != nil {
		return 0, time.Time{}, err
	}
	httpconn.Drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, time.Time{}, &VolumeError{Op: http.MethodHead, Volume: volume, Path: path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	modified, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return resp.ContentLength, modified, nil
}

// DirEntry is one entry of a volume's directory listing (nginx's JSON autoindex).
type DirEntry struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // "file" or "directory"
	Size  int64  `json:"size"`
	MTime string `json:"mtime"` // as HTTP dates are written
}

// Modified returns when the entry was last changed, or the zero time if nginx did not say.
func (e DirEntry) Modified() time.Time {
	t, _ := http.ParseTime(e.MTime)
	return t
}

// List returns the entries of directory dir on volume ("" for the root). A directory
// that does not exist has no entries.
func (c *VolumeClient) List(ctx context.Context, volume, dir string) ([]DirEntry, error) {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	body, _, err := c.Get(ctx, volume, dir)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var entries []DirEntry
	if err := json.NewDecoder(body).Decode(&entries); err != nil {
		return nil, &VolumeError{Op: "LIST", Volume: volume, Path: dir, Err: err}
	}
	return entries, nil
}

// ErrCopyMismatch says a copied value did not have the size or MD5 it should have.
var ErrCopyMismatch = errors.New("copy does not match")

// Copy streams path from volume src to volume dst, never holding the value in memory,
// and checks that it has size bytes and, if wantMD5 is not empty, that MD5. A copy that
// turns out wrong is deleted from dst.
func (c *VolumeClient) Copy(ctx context.Context, src, dst, path string, size int64, wantMD5 string) error {
	body, n, err := c.Get(ctx, src, path)
	if err != nil {
		return err
	}
	defer body.Close()
	if n != size {
		return fmt.Errorf("%w: %s/%s has %d bytes, want %d", ErrCopyMismatch, src, path, n, size)
	}
	h := md5.New()
	if err := c.Put(ctx, dst, path, io.TeeReader(body, h), size); err != nil {
		return err
	}
	if got := md5Hex(h.Sum(nil)); wantMD5 != "" && got != wantMD5 {
		err := fmt.Errorf("%w: %s/%s has MD5 %s, want %s", ErrCopyMismatch, src, path, got, wantMD5)
		return errors.Join(err, c.Delete(ctx, dst, path))
	}
	return nil
}

// md5Hex is the hex form of an MD5 sum, as the index stores it and Content-Md5 carries it.
func md5Hex(sum []byte) string { return hex.EncodeToString(sum) }

// isNotFound reports whether err is a volume's 404: the file is not there.
func isNotFound(err error) bool {
	var ve *VolumeError
	return errors.As(err, &ve) && ve.Status == http.StatusNotFound
}
