package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Placement decides where a key lives: which volumes hold its replicas, in preference
// order, and which file on them. It is pure computation, shared by the master, rebuild and
// rebalance, so that all of them agree on where a key belongs.
type Placement struct {
	// Volumes are the host:port names of all volumes. Their order does not matter:
	// rendezvous hashing ranks them by name.
	Volumes []string
	// Replicas is how many volumes hold each key.
	Replicas int
	// Subvolumes is how many top-level directories (sv00, sv01, ...) a volume is split
	// into, so that a volume can span several disks mounted there.
	Subvolumes int
}

// Rank returns all volumes ordered by how much key prefers them (rendezvous, or highest
// random weight, hashing). Adding a volume moves only the keys that now rank it among
// their first Replicas; the rest keep their places.
func (p Placement) Rank(key string) []string {
	type scored struct {
		volume string
		score  uint64
	}
	s := make([]scored, len(p.Volumes))
	for i, v := range p.Volumes {
		s[i] = scored{v, rendezvousScore(key, v)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.volume, b.volume)
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].volume
	}
	return out
}

// Choose returns the Replicas volumes that should hold key, most preferred first.
func (p Placement) Choose(key string) []string {
	r := p.Rank(key)
	return r[:min(p.Replicas, len(r))]
}

// InRankOrder returns vols ordered by how much key prefers them.
func (p Placement) InRankOrder(key string, vols []string) []string {
	var out []string
	for _, v := range p.Rank(key) {
		if slices.Contains(vols, v) {
			out = append(out, v)
		}
	}
	return out
}

// Subvolume returns the subvolume directory number that key goes to on every volume.
func (p Placement) Subvolume(key string) int {
	h := md5.Sum([]byte(key))
	return int(binary.BigEndian.Uint32(h[4:8]) % uint32(max(p.Subvolumes, 1)))
}

func rendezvousScore(key, volume string) uint64 {
	h := md5.New()
	io.WriteString(h, volume)
	h.Write([]byte{0})
	io.WriteString(h, key)
	var sum [md5.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// nameChunk is the longest file-name component KeyPath writes: file systems and nginx
// cap a name at 255 bytes, and the room left serves suffixes (chunkSuffix and the
// markers that later versions may add).
const nameChunk = 200

// chunkSuffix marks a directory that continues a long key's name. A value's file name
// never has it (base64url has no dot), so /a/b and /a/b/c... never need one name to be
// both a file and a directory.
const chunkSuffix = ".d"

// KeyPath returns where key's value is stored on a volume, relative to its root:
// sv<subvolume>/<md5[0]>/<md5[1]>/<name>. The name is the key in unpadded URL-safe
// base64, so every byte of any key survives, never makes a '/' of its own, and needs
// no escaping in a URL; names longer than nameChunk are split into directories of
// nameChunk characters, each ending in chunkSuffix. The two hash levels spread keys over
// 65536 directories per subvolume.
func KeyPath(key string, sub int) string {
	h := md5.Sum([]byte(key))
	name := base64.RawURLEncoding.EncodeToString([]byte(key))
	b := make([]byte, 0, 16+len(name)+len(name)/nameChunk*(len(chunkSuffix)+1))
	b = append(b, "sv"...)
	if sub < 16 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(sub), 16)
	b = append(b, '/')
	b = hex.AppendEncode(b, h[:1])
	b = append(b, '/')
	b = hex.AppendEncode(b, h[1:2])
	b = append(b, '/')
	for len(name) > nameChunk {
		b = append(b, name[:nameChunk]...)
		b = append(b, chunkSuffix...)
		b = append(b, '/')
		name = name[nameChunk:]
	}
	b = append(b, name...)
	return string(b)
}

// markerSuffix names the empty file that UNLINK puts beside a value on each of its
// volumes, so that rebuild can tell unlinked keys from live ones. Like chunkSuffix it
// has a dot, which no value's file name has.
const markerSuffix = ".unlinked"

// MarkerPath returns where the unlink marker of key is stored on a volume.
func MarkerPath(key string, sub int) string { return KeyPath(key, sub) + markerSuffix }

// ErrNotKeyPath says that a path on a volume is not one KeyPath or MarkerPath makes.
var ErrNotKeyPath = errors.New("not a davkv key path")

// VolumeFile is what a file on a volume is to davkv.
type VolumeFile struct {
	Key string
	Sub int
	// Marker says the file is an unlink marker, not the value.
	Marker bool
}

// ParseVolumePath is the inverse of KeyPath and MarkerPath. It checks that the hash
// directories match, so that stray files are not taken for keys.
func ParseVolumePath(path string) (VolumeFile, error) {
	value, marker := strings.CutSuffix(path, markerSuffix)
	key, sub, err := ParseKeyPath(value)
	return VolumeFile{Key: key, Sub: sub, Marker: marker}, err
}

// ParseKeyPath is the inverse of KeyPath: it returns the key and subvolume stored at
// path, checking that the hash directories match, so that stray files are not taken
// for keys.
func ParseKeyPath(path string) (key string, sub int, err error) {
	parts := strings.Split(path, "/")
	if len(parts) < 4 {
		return "", 0, fmt.Errorf("%w: %q", ErrNotKeyPath, path)
	}
	if _, err := fmt.Sscanf(parts[0], "sv%x", &sub); err != nil {
		return "", 0, fmt.Errorf("%w: %q: bad subvolume", ErrNotKeyPath, path)
	}
	var name strings.Builder
	for _, p := range parts[3 : len(parts)-1] {
		chunk, ok := strings.CutSuffix(p, chunkSuffix)
		if !ok || len(chunk) != nameChunk {
			return "", 0, fmt.Errorf("%w: %q: bad name directory", ErrNotKeyPath, path)
		}
		name.WriteString(chunk)
	}
	name.WriteString(parts[len(parts)-1])
	raw, err := base64.RawURLEncoding.DecodeString(name.String())
	if err != nil || len(raw) == 0 {
		return "", 0, fmt.Errorf("%w: %q: bad name", ErrNotKeyPath, path)
	}
	key = string(raw)
	if KeyPath(key, sub) != path {
		return "", 0, fmt.Errorf("%w: %q: hash directories do not match", ErrNotKeyPath, path)
	}
	return key, sub, nil
}

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

// VolumeClient is the one HTTP client of davkv: the master, rebuild, rebalance and the
// thrasher all use it, for volumes and masters alike, so connection reuse and timeouts
// are tuned in one place.
//
// Its requests are HTTP/1.1 exchanges over kept-alive connections that it pools
// itself (up to maxIdlePerVolume per server), written and read on the calling
// goroutine. net/http's Transport hands every request to two goroutines of its own,
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

	dialer net.Dialer
	mu     sync.Mutex
	idle   map[string][]*volumeConn // by server, most recently used last
}

// maxIdlePerVolume bounds the kept-alive connections to one server; idleTimeout drops
// connections unused for longer, well before nginx's keepalive_timeout (65 s) would.
const (
	maxIdlePerVolume = 256
	idleTimeout      = 30 * time.Second
)

// NewVolumeClient returns a client whose connect and answer waits are bounded by timeout.
func NewVolumeClient(timeout time.Duration) *VolumeClient {
	return &VolumeClient{
		Timeout: timeout,
		dialer:  net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second},
		idle:    map[string][]*volumeConn{},
	}
}

// URL returns the address of path on volume.
func (c *VolumeClient) URL(volume, path string) string {
	return "http://" + volume + "/" + path
}

// volumeConn is a connection to a volume that can carry one request after another.
type volumeConn struct {
	net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	used    time.Time
	volume  string
	client  *VolumeClient
	request http.Request // for ReadResponse: it needs the method
	// writeDeadline says an Upload set a write deadline, which putConn clears.
	writeDeadline bool
}

func (c *VolumeClient) getConn(ctx context.Context, volume string) (vc *volumeConn, reused bool, err error) {
	c.mu.Lock()
	for list := c.idle[volume]; len(list) > 0; list = c.idle[volume] {
		vc = list[len(list)-1]
		c.idle[volume] = list[:len(list)-1]
		if time.Since(vc.used) < idleTimeout {
			c.mu.Unlock()
			return vc, true, nil
		}
		vc.Close()
	}
	c.mu.Unlock()
	conn, err := c.dialer.DialContext(ctx, "tcp", volume)
	if err != nil {
		return nil, false, err
	}
	return &volumeConn{Conn: conn, r: bufio.NewReaderSize(conn, 64<<10), w: bufio.NewWriterSize(conn, 64<<10), volume: volume, client: c}, false, nil
}

// CloseIdle closes the kept-alive connections that no request is using.
func (c *VolumeClient) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for volume, list := range c.idle {
		for _, vc := range list {
			vc.Close()
		}
		delete(c.idle, volume)
	}
}

func (c *VolumeClient) putConn(vc *volumeConn) {
	if vc.writeDeadline { // an Upload's write deadline must not fail the next request
		vc.SetWriteDeadline(time.Time{})
		vc.writeDeadline = false
	}
	// A read deadline left over does no harm: every exchange sets its own before it reads.
	vc.used = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[vc.volume]) >= maxIdlePerVolume {
		vc.Close()
		return
	}
	c.idle[vc.volume] = append(c.idle[vc.volume], vc)
}

// exchange writes one request on vc and reads the answer's header. size is the body's
// length, or -1 to send it chunked.
func (vc *volumeConn) exchange(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Response, error) {
	stop := context.AfterFunc(ctx, vc.interrupt)
	defer stop()
	vc.writeHead(method, path, body != nil, size)
	var werr error
	switch {
	case body == nil:
	case size >= 0:
		var n int64
		n, werr = io.CopyN(vc.w, body, size)
		if werr == nil && n != size {
			werr = io.ErrUnexpectedEOF
		}
	default:
		cw := httputil.NewChunkedWriter(vc.w)
		if _, werr = io.Copy(cw, body); werr == nil {
			werr = cw.Close()
			vc.w.WriteString("\r\n")
		}
	}
	if werr != nil {
		return nil, fmt.Errorf("send body: %w", werr)
	}
	if err := vc.w.Flush(); err != nil {
		return nil, err
	}
	return vc.readAnswer(ctx, method, vc.client.Timeout)
}

// send writes one request with a body held in memory (none unless hasBody).
func (vc *volumeConn) send(method, path string, body []byte, hasBody bool) error {
	vc.writeHead(method, path, hasBody, int64(len(body)))
	vc.w.Write(body)
	return vc.w.Flush()
}

// readStatus reads an answer whose body does not matter, only its status: the header,
// of which it looks at the few fields that frame the body, and the body, which it
// discards. reuse is false if the connection can't carry another request. It parses
// by hand what a volume sends: net/http's ReadResponse, which builds a whole Response,
// header map and all, was a tenth of the master's CPU (its reads included).
func (vc *volumeConn) readStatus(method string) (status int, reuse bool, err error) {
	var length int64
	var chunked bool
	for status < 200 { // an interim answer (1xx) is followed by the real one
		if status, reuse, length, chunked, err = vc.readHead(); err != nil {
			return 0, false, err
		}
	}
	var body io.Reader
	switch {
	case method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified:
		return status, reuse, nil
	case chunked:
		body = httputil.NewChunkedReader(vc.r)
	case length >= 0:
		body = io.LimitReader(vc.r, length)
	default: // the body ends when the connection does
		body, reuse = vc.r, false
	}
	n, err := io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	if err != nil {
		return 0, false, err
	}
	switch {
	case n == 64<<10:
		return status, false, nil
	case !chunked && length >= 0 && n < length:
		return 0, false, fmt.Errorf("answer body: %w", io.ErrUnexpectedEOF)
	}
	for chunked { // the trailer, up to its empty line, which the chunked reader leaves
		line, err := vc.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		chunked = len(bytes.TrimRight(line, "\r\n")) > 0
	}
	return status, reuse, nil
}

// readHead reads an answer's status line and header, and returns what frames its body.
func (vc *volumeConn) readHead() (status int, reuse bool, length int64, chunked bool, err error) {
	line, err := vc.r.ReadSlice('\n')
	if err != nil {
		return 0, false, 0, false, err
	}
	// "HTTP/1.1 201 Created"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, 0, false, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 {
		return 0, false, 0, false, fmt.Errorf("malformed status line %q", bytes.TrimSpace(line))
	}
	reuse = line[7] == '1'
	length = -1
	for {
		line, err := vc.r.ReadSlice('\n')
		if err != nil {
			return 0, false, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return 0, false, 0, false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return 0, false, 0, false, fmt.Errorf("malformed Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			if asciiEqualFold(value, "close") {
				reuse = false
			} else if asciiEqualFold(value, "keep-alive") {
				reuse = true
			}
		}
	}
	return status, reuse, length, chunked, nil
}

// asciiEqualFold reports whether b is s, ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// interrupt makes the connection's blocked reads and writes fail at once.
func (vc *volumeConn) interrupt() { vc.SetDeadline(time.Unix(1, 0)) }

// writeHead buffers a request line and header; the body, if any, follows.
func (vc *volumeConn) writeHead(method, path string, hasBody bool, size int64) {
	w := vc.w
	w.WriteString(method)
	w.WriteString(" /")
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(vc.volume)
	w.WriteString("\r\nUser-Agent: davkv\r\n")
	switch {
	case !hasBody:
	case size >= 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(size, 10))
		w.WriteString("\r\n")
	default:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.WriteString("\r\n")
}

// readAnswer reads an answer's header, waiting at most wait for it. The body returns
// the connection to the pool once it has been read to its end.
func (vc *volumeConn) readAnswer(ctx context.Context, method string, wait time.Duration) (*http.Response, error) {
	vc.SetReadDeadline(time.Now().Add(wait))
	vc.request.Method = method
	resp, err := http.ReadResponse(vc.r, &vc.request)
	if err != nil {
		return nil, err
	}
	vc.SetReadDeadline(time.Time{})
	if ctx.Err() != nil { // the deadline may have been set after the answer came
		resp.Body.Close()
		return nil, ctx.Err()
	}
	resp.Body = &connBody{ReadCloser: resp.Body, vc: vc, reuse: !resp.Close, stop: context.AfterFunc(ctx, vc.interrupt)}
	return resp, nil
}

// Upload is a PUT whose body is written as it comes, straight into the connection: the
// master streams a large value to every replica through one each, with no copy between.
type Upload struct {
	vc           *volumeConn
	volume, path string
	size, sent   int64
	up           func() bool
	stop         func() bool
	err          error
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
	conn, err := c.dialer.DialContext(ctx, "tcp", volume)
	if err != nil {
		return nil, &VolumeError{Op: http.MethodPut, Volume: volume, Path: path, Err: err}
	}
	vc := &volumeConn{Conn: conn, r: bufio.NewReaderSize(conn, 4<<10), w: bufio.NewWriterSize(conn, 4<<10), volume: volume, client: c}
	u := &Upload{vc: vc, volume: volume, path: path, size: size, up: up, stop: context.AfterFunc(ctx, vc.interrupt)}
	vc.writeHead(http.MethodPut, path, true, size)
	if err := vc.w.Flush(); err != nil {
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
	timeout := u.vc.client.Timeout
	giveUp := time.Now().Add(u.vc.client.uploadStall())
	var err error
	for {
		u.vc.SetWriteDeadline(time.Now().Add(timeout))
		u.vc.writeDeadline = true
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
	if resp, rerr := u.vc.readAnswer(context.Background(), http.MethodPut, 100*time.Millisecond); rerr == nil {
		resp.Body.Close()
		return &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return &VolumeError{Op: http.MethodPut, Volume: u.volume, Path: u.path, Err: err}
}

// Finish ends the body, waits for the volume's answer and checks it.
func (u *Upload) Finish() error {
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
	resp, err := u.vc.readAnswer(context.Background(), http.MethodPut, u.vc.client.Timeout)
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
}

// connBody returns its connection to the pool once the answer has been read to its end.
type connBody struct {
	io.ReadCloser
	vc    *volumeConn
	reuse bool
	stop  func() bool
	eof   bool
	done  bool
}

func (b *connBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	} else if err != nil {
		b.reuse = false
	}
	return n, err
}

func (b *connBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof { // read a short rest, so that the connection can serve again
		n, err := io.Copy(io.Discard, io.LimitReader(b.ReadCloser, 64<<10))
		b.eof = err == nil && n < 64<<10
	}
	b.ReadCloser.Close()
	if b.stop() && b.reuse && b.eof {
		b.vc.client.putConn(b.vc)
		return nil
	}
	return b.vc.Close()
}

func (c *VolumeClient) do(ctx context.Context, op, volume, path string, body io.Reader, size int64) (*http.Response, error) {
	if ctx.Err() != nil {
		return nil, &VolumeError{Op: op, Volume: volume, Path: path, Err: ctx.Err()}
	}
	counted := &countingReader{r: body}
	for attempt := 0; ; attempt++ {
		vc, reused, err := c.getConn(ctx, volume)
		if err != nil {
			return nil, &VolumeError{Op: op, Volume: volume, Path: path, Err: err}
		}
		var resp *http.Response
		if body == nil {
			resp, err = vc.exchange(ctx, op, path, nil, size)
		} else {
			resp, err = vc.exchange(ctx, op, path, counted, size)
		}
		if err == nil {
			return resp, nil
		}
		vc.Close()
		// A kept-alive connection that the volume closed meanwhile fails at once:
		// try again on a new one, if the body can be sent again.
		if reused && attempt == 0 && ctx.Err() == nil && counted.rewind() {
			continue
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, &VolumeError{Op: op, Volume: volume, Path: path, Err: err}
	}
}

// fanOutMax is the largest body PutAll sends to its volumes one after another from the
// calling goroutine; a larger one is sent to each from a goroutine of its own, so that
// no volume waits for another's copy.
const fanOutMax = 64 << 10

// PutAll stores data at path on each of volumes, at once, and returns each volume's
// error (nil for success), in order. See Put.
func (c *VolumeClient) PutAll(ctx context.Context, volumes []string, path string, data []byte) []error {
	if len(data) > fanOutMax {
		errs := make([]error, len(volumes))
		parallel(replicaIndexes(len(volumes)), func(i int) error {
			errs[i] = c.Put(ctx, volumes[i], path, bytes.NewReader(data), int64(len(data)))
			return nil
		})
		return errs
	}
	return c.fanOut(ctx, http.MethodPut, volumes, path, data, true, putStored)
}

// putStored says whether a PUT's answer status means the volume stored the value.
func putStored(status int) bool {
	return status == http.StatusCreated || status == http.StatusNoContent
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
	errs := make([]error, len(servers))
	conns := make([]*volumeConn, len(servers))
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
		vc, re, err := c.getConn(ctx, server)
		if err != nil {
			fail(i, 0, err)
			continue
		}
		if err := vc.send(op, path, body, hasBody); err != nil {
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
				vc.interrupt()
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
		status, reuse, err := vc.readStatus(op)
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
			c.putConn(vc)
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
		resp, err := c.do(ctx, op, servers[i], path, r, int64(len(body)))
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
		drain(resp)
		if !ok(resp.StatusCode) {
			fail(i, resp.StatusCode, ErrVolumeStatus)
		}
	}
	return errs
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

// drain reads what is left of an answer so that its connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// ErrVolumeStatus is wrapped by VolumeErrors for answers with an unexpected status.
var ErrVolumeStatus = errors.New("unexpected status")

// Put stores body at path on volume. size is the body's length, or -1 if unknown (the
// body is then sent chunked). nginx writes to a temporary file and renames it into
// place only when the whole body has arrived, so a failed Put leaves no file.
func (c *VolumeClient) Put(ctx context.Context, volume, path string, body io.Reader, size int64) error {
	resp, err := c.do(ctx, http.MethodPut, volume, path, body, size)
	if err != nil {
		return err
	}
	return putStatus(resp, volume, path)
}

// putStatus checks the answer to a PUT and releases it.
func putStatus(resp *http.Response, volume, path string) error {
	defer drain(resp)
	if !putStored(resp.StatusCode) {
		return &VolumeError{Op: http.MethodPut, Volume: volume, Path: path, Status: resp.StatusCode, Err: ErrVolumeStatus}
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
	resp, err := c.do(ctx, http.MethodGet, volume, path, nil, 0)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		drain(resp)
		return nil, 0, &VolumeError{Op: http.MethodGet, Volume: volume, Path: path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return resp.Body, resp.ContentLength, nil
}

// Stat returns the size of path on volume. A missing file is a VolumeError with
// Status 404.
func (c *VolumeClient) Stat(ctx context.Context, volume, path string) (int64, error) {
	resp, err := c.do(ctx, http.MethodHead, volume, path, nil, 0)
	if err != nil {
		return 0, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, &VolumeError{Op: http.MethodHead, Volume: volume, Path: path, Status: resp.StatusCode, Err: ErrVolumeStatus}
	}
	return resp.ContentLength, nil
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
	var ve *VolumeError
	if errors.As(err, &ve) && ve.Status == http.StatusNotFound {
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

// MasterClient is how commands talk to a running master, with a VolumeClient.
type MasterClient struct {
	host   string // host:port
	client *VolumeClient
}

// NewMasterClient talks to the master at addr, host:port or an http:// URL.
func NewMasterClient(addr string, client *VolumeClient) *MasterClient {
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "http://"), "/")
	return &MasterClient{host: addr, client: client}
}

// Do sends method for key to the master, with query and a body of size bytes (-1 if
// unknown). A GET or HEAD that is redirected to a volume is followed, like curl -L.
func (m *MasterClient) Do(ctx context.Context, method, key, query string, body io.Reader, size int64) (*http.Response, error) {
	path := strings.TrimPrefix((&url.URL{Path: key}).EscapedPath(), "/")
	if query != "" {
		path += "?" + query
	}
	resp, err := m.client.do(ctx, method, m.host, path, body, size)
	if err != nil || resp.StatusCode != http.StatusFound || (method != http.MethodGet && method != http.MethodHead) {
		return resp, err
	}
	drain(resp)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme != "http" {
		return nil, fmt.Errorf("master: %s %s: bad redirect %q", method, key, resp.Header.Get("Location"))
	}
	return m.client.do(ctx, method, loc.Host, strings.TrimPrefix(loc.EscapedPath(), "/"), nil, 0)
}

// Probe checks that volume answers at all, with the cheapest request it serves: a HEAD
// of its root listing.
func (c *VolumeClient) Probe(ctx context.Context, volume string) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodHead, volume, "", nil, 0)
	if err != nil {
		return err
	}
	drain(resp)
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
	client   *VolumeClient
	interval time.Duration
	volumes  []string
	state    map[string]*volumeHealth // fixed at construction; read without locking
}

type volumeHealth struct {
	up      atomic.Bool
	lastErr atomic.Pointer[string]
}

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
	wg.Go(func() { every(ctx, h.interval, func() { h.probeAll(ctx) }) })
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
	s.up.Store(true)
}

// Up reports whether volume answered its last probe and has not failed since. Volumes
// Health does not track count as up: the index may name volumes no longer configured.
func (h *Health) Up(volume string) bool {
	s, ok := h.state[volume]
	return !ok || s.up.Load()
}

// Failed records err from requests to volumes (one error, or several joined): a volume
// that did not answer at all is marked down until a probe sees it back.
func (h *Health) Failed(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			h.Failed(e)
		}
		return
	}
	var ve *VolumeError
	if errors.As(err, &ve) && ve.Unreachable() {
		h.set(ve.Volume, err)
	}
}

// VolumeStatus is one volume's entry in GET /health.
type VolumeStatus struct {
	Volume string `json:"volume"`
	Up     bool   `json:"up"`
	Error  string `json:"error,omitempty"`
}

// Status returns every tracked volume's state, in configuration order.
func (h *Health) Status() []VolumeStatus {
	out := make([]VolumeStatus, len(h.volumes))
	for i, v := range h.volumes {
		s := h.state[v]
		out[i] = VolumeStatus{Volume: v, Up: s.up.Load()}
		if e := s.lastErr.Load(); e != nil && !out[i].Up {
			out[i].Error = *e
		}
	}
	return out
}

// md5Hex is the hex form of an MD5 sum, as the index stores it and Content-Md5 carries it.
func md5Hex(sum []byte) string { return hex.EncodeToString(sum) }
