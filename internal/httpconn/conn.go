package httpconn

// The HTTP/1.1 exchange with volumes (and masters): kept-alive connections,
// pooled per server, each carrying one request after another from the calling
// goroutine. net/http's Transport hands every request to two goroutines of its own;
// this costs the master a third of that (see davkv's VolumeClient).
//
// Invariants:
//   - A connection in the pool is between exchanges: no request half-written, no answer
//     half-read, no write deadline set (Put clears an Upload's). A read deadline
//     may be left over: every exchange sets its own before it reads.
//   - A connection goes back to the pool only once its answer's body has been read to
//     its end (connBody.Close, ReadStatus) and the server did not ask to close it;
//     anything else closes it. connBody.WriteTo may take a body of known length from
//     the socket itself, past the HTTP reader, which is then never read again.
//   - A context that ends interrupts the connection's blocked reads and writes
//     (Interrupt sets a deadline in the past); an interrupted connection is closed,
//     never pooled.
//   - A request that fails on a reused connection is sent again once, on a new one, and
//     only if its body can be sent again (the callers: davkv's VolumeClient): the server may have
//     closed an idle connection just as it was taken.
//   - Nothing here knows keys or the layout of files: paths are given.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// Pool keeps the idle connections to each server, and dials new ones.
type Pool struct {
	// TLS, if set, makes every connection TLS with this configuration; an empty
	// ServerName is the server's host. Nil: plain TCP.
	TLS *tls.Config
	// timeout bounds connecting and waiting for an answer's header.
	timeout time.Duration
	// header is sent with every request: header lines, "Name: value\r\n" each.
	header string
	dialer net.Dialer
	mu     sync.Mutex
	idle   map[string][]*Conn // by server, most recently used last
}

// NewPool returns a pool whose connects and answers wait at most timeout, and
// whose requests carry header.
func NewPool(timeout time.Duration, header string) *Pool {
	return &Pool{timeout: timeout, header: header, dialer: net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}, idle: map[string][]*Conn{}}
}

// Conn is a connection to a volume that can carry one request after another.
type Conn struct {
	net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	used    time.Time
	volume  string
	pool    *Pool
	request http.Request // for ReadResponse: it needs the method
	// writeDeadline says an Upload set a write deadline, which Put clears.
	writeDeadline bool
}

// MaxIdlePerServer bounds the kept-alive connections to one server; idleTimeout drops
// connections unused for longer, well before nginx's keepalive_timeout (65 s) would.
const (
	MaxIdlePerServer = 256
	idleTimeout      = 30 * time.Second
)

// Get returns a kept-alive connection to server (reused) or a new one.
func (c *Pool) Get(ctx context.Context, server string) (vc *Conn, reused bool, err error) {
	c.mu.Lock()
	for list := c.idle[server]; len(list) > 0; list = c.idle[server] {
		vc = list[len(list)-1]
		c.idle[server] = list[:len(list)-1]
		if time.Since(vc.used) < idleTimeout {
			c.mu.Unlock()
			return vc, true, nil
		}
		vc.Close()
	}
	c.mu.Unlock()
	vc, err = c.Dial(ctx, server, 64<<10)
	return vc, false, err
}

// Dial connects to server anew, with buffers of size bytes.
func (c *Pool) Dial(ctx context.Context, server string, size int) (*Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	if c.TLS != nil {
		cfg := c.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(server)
		}
		tc := tls.Client(conn, cfg)
		hctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	return &Conn{Conn: conn, r: bufio.NewReaderSize(conn, size), w: bufio.NewWriterSize(conn, size), volume: server, pool: c}, nil
}

// Put takes vc back, between exchanges, for another request.
func (c *Pool) Put(vc *Conn) {
	if vc.writeDeadline { // an Upload's write deadline must not fail the next request
		vc.Conn.SetWriteDeadline(time.Time{})
		vc.writeDeadline = false
	}
	// A read deadline left over does no harm: every exchange sets its own before it reads.
	vc.used = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[vc.volume]) >= MaxIdlePerServer {
		vc.Close()
		return
	}
	c.idle[vc.volume] = append(c.idle[vc.volume], vc)
}

// CloseIdle closes the kept-alive connections that no request is using.
func (c *Pool) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for volume, list := range c.idle {
		for _, vc := range list {
			vc.Close()
		}
		delete(c.idle, volume)
	}
}

// Exchange writes one request on vc and reads the answer's header. extra is header
// lines to add ("Name: value\r\n" each), size the body's length, or -1 to send it
// chunked.
func (vc *Conn) Exchange(ctx context.Context, method, path, extra string, body io.Reader, size int64) (*http.Response, error) {
	stop := context.AfterFunc(ctx, vc.Interrupt)
	defer stop()
	vc.WriteHead(method, path, extra, body != nil, size)
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
	return vc.ReadAnswer(ctx, method, vc.pool.timeout)
}

// Send writes one request with a body held in memory (none unless hasBody).
func (vc *Conn) Send(method, path string, body []byte, hasBody bool) error {
	vc.WriteHead(method, path, "", hasBody, int64(len(body)))
	vc.w.Write(body)
	return vc.w.Flush()
}

// WriteHead buffers a request line and header; the body, if any, follows.
func (vc *Conn) WriteHead(method, path, extra string, hasBody bool, size int64) {
	w := vc.w
	w.WriteString(method)
	w.WriteString(" /")
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(vc.volume)
	w.WriteString("\r\nUser-Agent: davkv\r\n")
	w.WriteString(vc.pool.header)
	w.WriteString(extra)
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

// ReadAnswer reads an answer's header, waiting at most wait for it. The body returns
// the connection to the pool once it has been read to its end.
func (vc *Conn) ReadAnswer(ctx context.Context, method string, wait time.Duration) (*http.Response, error) {
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
	resp.Body = &connBody{ReadCloser: resp.Body, vc: vc, length: resp.ContentLength, reuse: !resp.Close, stop: context.AfterFunc(ctx, vc.Interrupt)}
	return resp, nil
}

// ReadStatus reads an answer whose body does not matter, only its status: the header,
// of which it looks at the few fields that frame the body, and the body, which it
// discards. reuse is false if the connection can't carry another request. It parses
// by hand what a volume sends: net/http's ReadResponse, which builds a whole Response,
// header map and all, was a tenth of the master's CPU (its reads included).
func (vc *Conn) ReadStatus(method string) (status int, reuse bool, err error) {
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
func (vc *Conn) readHead() (status int, reuse bool, length int64, chunked bool, err error) {
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

// Flush sends what is buffered of a request.
func (vc *Conn) Flush() error { return vc.w.Flush() }

// SetUploadDeadline sets a write deadline, which put clears before the connection
// carries another request.
func (vc *Conn) SetUploadDeadline(t time.Time) error {
	vc.writeDeadline = true
	return vc.Conn.SetWriteDeadline(t)
}

// Interrupt makes the connection's blocked reads and writes fail at once.
func (vc *Conn) Interrupt() { vc.SetDeadline(time.Unix(1, 0)) }

// connBody returns its connection to the pool once the answer has been read to its end.
type connBody struct {
	io.ReadCloser
	vc     *Conn
	length int64 // the body's Content-Length, or -1
	reuse  bool
	stop   func() bool
	eof    bool
	done   bool
	// read says Read was called; spliced that WriteTo took the body from the socket,
	// past ReadCloser, which must then not be read or drained.
	read, spliced bool
}

func (b *connBody) Read(p []byte) (int, error) {
	if b.spliced {
		return 0, errors.New("read of an answer body already copied")
	}
	b.read = true
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	} else if err != nil {
		b.reuse = false
	}
	return n, err
}

// WriteTo copies the rest of the body to dst. A body of known length that nothing has
// read yet goes straight from the volume's socket to dst: what the connection's reader
// holds first, then the rest through dst's ReadFrom, which for an http.ResponseWriter
// over TCP is splice(2), so a value streamed to a client never passes through the
// master's memory. io.Copy calls WriteTo.
func (b *connBody) WriteTo(dst io.Writer) (int64, error) {
	if b.read || b.spliced || b.length < 0 {
		return io.Copy(dst, struct{ io.Reader }{b})
	}
	b.spliced = true
	vc := b.vc
	var n int64
	if k := min(int64(vc.r.Buffered()), b.length); k > 0 {
		p, _ := vc.r.Peek(int(k))
		w, err := dst.Write(p)
		vc.r.Discard(w)
		n += int64(w)
		if err != nil {
			b.reuse = false
			return n, err
		}
	}
	m, err := io.Copy(dst, &io.LimitedReader{R: vc.Conn, N: b.length - n})
	n += m
	if err == nil && n < b.length {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.reuse = false
		return n, err
	}
	b.eof = true
	return n, nil
}

func (b *connBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	// Unless WriteTo bypassed it (draining it would then wait for bytes gone), read a
	// short rest, so that the connection can serve again.
	if !b.spliced {
		if !b.eof {
			n, err := io.Copy(io.Discard, io.LimitReader(b.ReadCloser, 64<<10))
			b.eof = err == nil && n < 64<<10
		}
		b.ReadCloser.Close()
	}
	if b.stop() && b.reuse && b.eof {
		b.vc.pool.Put(b.vc)
		return nil
	}
	return b.vc.Close()
}

// Drain reads what is left of an answer so that its connection can be reused.
func Drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
