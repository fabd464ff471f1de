package certs

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"davkv/internal/testenv"
)

// TestReload serves with one certificate, reloads another in its files, and checks
// that a client sees each in turn, over HTTP/2; a reload that fails keeps the last.
func TestReload(t *testing.T) {
	first, second := testenv.SelfSigned(t, "first"), testenv.SelfSigned(t, "second")
	dir := t.TempDir()
	certFile, keyFile := dir+"/tls.crt", dir+"/tls.key"
	if _, err := Load(certFile, keyFile); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("Load of missing files: %v", err)
	}
	first.Install(t, certFile, keyFile)
	r, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: r.Config(), Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { w.Write([]byte(req.Proto)) })}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	subject := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		if st.NegotiatedProtocol != "h2" {
			t.Fatalf("negotiated %q, want h2", st.NegotiatedProtocol)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := subject(); got != "first" {
		t.Fatalf("served %s, want first", got)
	}
	second.Install(t, certFile, keyFile)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := subject(); got != "second" {
		t.Fatalf("after Reload served %s, want second", got)
	}
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a bad key succeeded")
	}
	if got := subject(); got != "second" {
		t.Fatalf("after a failed Reload served %s, want second still", got)
	}
}
