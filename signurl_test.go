package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"davkv/internal/signurl"
)

// testSecret is the volumes' secret in the tests that set one.
const testSecret = "davkv-test.secret+0123456789"

// TestSignedReads: with DAVKV_SIGNREADS=1 the volumes serve only the master's signed
// redirects (and Range on them), or requests carrying the secret (the master's own,
// verify's); unsigned, tampered, expired and other keys' links get 403.
func TestSignedReads(t *testing.T) {
	c := startClusterEnv(t, 3, []string{"DAVKV_SECRET=" + testSecret, "DAVKV_SIGNREADS=1"}, func(cfg *ServerConfig) {
		cfg.Secret, cfg.SignReads = testSecret, time.Hour
	})
	c.Put("/signed", []byte("hello, signed"))
	c.Put("/other", []byte("another"))
	if status, got := c.Get("/signed"); status != http.StatusOK || string(got) != "hello, signed" {
		t.Fatalf("GET through a signed redirect: %d %q", status, got)
	}
	loc, err := url.Parse(c.Do(http.MethodGet, "/signed", nil).Header.Get("Location"))
	if err != nil || loc.Query().Get("st") == "" || loc.Query().Get("e") == "" {
		t.Fatalf("redirect %v: not signed (%v)", loc, err)
	}
	if until := time.Until(time.Unix(mustAtoi(t, loc.Query().Get("e")), 0)); until > time.Hour || until < 50*time.Minute {
		t.Fatalf("the link expires in %v, want -signreads (1h)", until)
	}
	get := func(u string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, got := get(loc.String(), "Range", "bytes=7-12"); status != http.StatusPartialContent || got != "signed" {
		t.Fatalf("Range on a signed link: %d %q", status, got)
	}
	path := strings.TrimPrefix(loc.Path, "/")
	plain := "http://" + loc.Host + loc.Path
	q := loc.Query()
	tampered := q.Get("st")
	tampered = map[bool]string{true: "A", false: "B"}[tampered[0] != 'A'] + tampered[1:]
	otherRec := c.Record("/other")
	for _, tt := range []struct{ name, url string }{
		{"unsigned", plain},
		{"tampered", plain + "?st=" + tampered + "&e=" + q.Get("e")},
		{"expiry changed", plain + "?st=" + q.Get("st") + "&e=" + q.Get("e") + "0"},
		{"expired", signurl.Sign(plain, path, testSecret, time.Now().Add(-time.Minute).Unix())},
		{"another key's signature", "http://" + loc.Host + "/" + otherRec.Path("/other") + "?" + loc.RawQuery},
		{"signed with another secret", signurl.Sign(plain, path, "not-the-secret-0123", time.Now().Add(time.Hour).Unix())},
	} {
		if status, _ := get(tt.url); status != http.StatusForbidden {
			t.Errorf("%s link: %d, want 403", tt.name, status)
		}
	}
	if status, got := get(plain, secretHeader, testSecret); status != http.StatusOK || got != "hello, signed" {
		t.Fatalf("GET with the secret: %d", status)
	}
	// What the master reads itself carries the secret: verify through it, deep.
	var out strings.Builder
	cfg := VerifyConfig{Master: c.URL, ClusterConfig: ClusterConfig{Secret: testSecret}, CheckOptions: CheckOptions{Deep: true}, BatchConfig: BatchConfig{Workers: 2, VolTimeout: time.Second}}
	if err := runVerify(context.Background(), cfg, &out, testLogger(t)); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if strings.Contains(c.Logs.String(), testSecret) {
		t.Fatal("the secret is in the master's log")
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
