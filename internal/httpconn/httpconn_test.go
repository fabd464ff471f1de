package httpconn

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestReadStatus: the hand parser of volume answers finds the status, frames the body
// and leaves the connection at the next answer, or says it can't be reused.
func TestReadStatus(t *testing.T) {
	tests := []struct {
		name, method, answer string
		status               int
		reuse                bool
		bad                  bool
	}{
		{"created", "PUT", "HTTP/1.1 201 Created\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", 201, true, false},
		{"no content", "DELETE", "HTTP/1.1 204 No Content\r\nServer: nginx\r\n\r\n", 204, true, false},
		{"error page", "PUT", "HTTP/1.1 507 Insufficient Storage\r\ncontent-length: 5\r\n\r\nfull!", 507, true, false},
		{"chunked", "DELETE", "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 409, true, false},
		{"head has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 200, true, false},
		{"interim answer first", "PUT", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201, true, false},
		{"server closes", "PUT", "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 201, false, false},
		{"http/1.0", "DELETE", "HTTP/1.0 204 No Content\r\n\r\n", 204, false, false},
		{"http/1.0 keep-alive", "DELETE", "HTTP/1.0 204 No Content\r\nConnection: Keep-Alive\r\n\r\n", 204, true, false},
		{"body until close", "PUT", "HTTP/1.1 500 Oops\r\n\r\nwhatever", 500, false, false},
		{"garbage", "PUT", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, true},
		{"bad length", "PUT", "HTTP/1.1 201 Created\r\nContent-Length: -1\r\n\r\n", 0, false, true},
		{"header without colon", "PUT", "HTTP/1.1 201 Created\r\nnonsense\r\n\r\n", 0, false, true},
		{"cut short", "PUT", "HTTP/1.1 201 Created\r\nContent-Le", 0, false, true},
		{"body cut short", "PUT", "HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 500\r\n\r\nfull", 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const next = "HTTP/1.1 next"
			vc := &Conn{r: bufio.NewReader(strings.NewReader(tt.answer + next))}
			status, reuse, err := vc.ReadStatus(tt.method)
			if tt.bad {
				if err == nil {
					t.Fatalf("got status %d, want an error", status)
				}
				return
			}
			if err != nil || status != tt.status || reuse != tt.reuse {
				t.Fatalf("got %d, reuse %v, %v; want %d, reuse %v", status, reuse, err, tt.status, tt.reuse)
			}
			if rest, _ := io.ReadAll(vc.r); reuse && string(rest) != next {
				t.Errorf("left %q unread, want %q", rest, next)
			}
		})
	}
}

// TestBodyWriteTo: an answer copied with io.Copy (connBody.WriteTo, past the HTTP
// reader) arrives whole, whether it was partly buffered or not, and its connection
// carries the next request.
func TestBodyWriteTo(t *testing.T) {
	value := testenv.RandomBytes(300 << 10)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(value)))
		w.Write(value)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	pool := NewPool(time.Second, "")
	defer pool.CloseIdle()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for i := range 3 {
		vc, _, err := pool.Get(context.Background(), addr)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := vc.Exchange(context.Background(), http.MethodGet, "v", "", nil, 0)
		if err != nil || resp.ContentLength != int64(len(value)) {
			t.Fatalf("GET: %v, %v", resp, err)
		}
		var got bytes.Buffer
		if _, err := io.Copy(&got, resp.Body); err != nil || !bytes.Equal(got.Bytes(), value) {
			t.Fatalf("copy %d: %d bytes, %v", i, got.Len(), err)
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Fatal("a body copied by WriteTo can still be read")
		}
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 3 requests, want 1", n)
	}
}
