package main

// How the commands talk to a running master (rebalance -master, verify -master,
// thrash): requests, redirects followed, listings paged.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"davkv/internal/httpconn"
)

// MasterClient is how commands talk to a running master, with a VolumeClient.
type MasterClient struct {
	host string // host:port
	// master carries the requests to the master; client and secure those to the
	// volumes it redirects to, over http and https.
	master, client, secure *VolumeClient
	// auth is the Authorization header line sent to the master, or "".
	auth string
}

// NewMasterClient talks to the master at addr, host:port or an http:// or https://
// URL (trusting the system's certificates, or those of $SSL_CERT_FILE), with key
// (ID:SECRET, for a master with -auth; "" sends none), and to the volumes it
// redirects to with client.
func NewMasterClient(addr, key string, client *VolumeClient) *MasterClient {
	m := &MasterClient{client: client, master: client, secure: NewVolumeClient(client.Timeout, client.Secret).UseTLS(nil)}
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		addr, m.master = rest, NewVolumeClient(client.Timeout, "").UseTLS(nil)
	}
	m.host = strings.TrimSuffix(strings.TrimPrefix(addr, "http://"), "/")
	if key != "" {
		m.auth = "Authorization: Bearer " + key + "\r\n"
	}
	return m
}

// Do sends method for key to the master, with query and a body of size bytes (-1 if
// unknown). A GET or HEAD that is redirected to a volume is followed, like curl -L.
func (m *MasterClient) Do(ctx context.Context, method, key, query string, body io.Reader, size int64) (*http.Response, error) {
	path := strings.TrimPrefix((&url.URL{Path: key}).EscapedPath(), "/")
	if query != "" {
		path += "?" + query
	}
	resp, err := m.master.do(ctx, method, m.host, path, m.auth, body, size)
	if err != nil || resp.StatusCode != http.StatusFound || (method != http.MethodGet && method != http.MethodHead) {
		return resp, err
	}
	httpconn.Drain(resp)
	loc, err := url.Parse(resp.Header.Get("Location"))
	volumes := m.client
	if err == nil && loc.Scheme == "https" {
		volumes = m.secure
	} else if err != nil || loc.Scheme != "http" {
		return nil, fmt.Errorf("master: %s %s: bad redirect %q", method, key, resp.Header.Get("Location"))
	}
	return volumes.do(ctx, method, loc.Host, strings.TrimPrefix(loc.EscapedPath(), "/")+queryOf(loc), "", nil, 0)
}

// queryOf is loc's query with its "?", or "" (a signed redirect's signature).
func queryOf(loc *url.URL) string {
	if loc.RawQuery == "" {
		return ""
	}
	return "?" + loc.RawQuery
}

// eachKey calls fn for every key of the kinds ("list" for live keys, "unlinked",
// "pending"), a page at a time.
func (m *MasterClient) eachKey(ctx context.Context, kinds []string, fn func(key string) error) error {
	for _, kind := range kinds {
		start := ""
		for {
			q := url.Values{"limit": {"1000"}, "start": {start}}.Encode() + "&" + kind
			resp, err := m.Do(ctx, http.MethodGet, "/", q, nil, 0)
			if err != nil {
				return err
			}
			var page ListPage
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || err != nil {
				return fmt.Errorf("master: ?%s: status %d: %v", kind, resp.StatusCode, err)
			}
			for _, key := range page.Keys {
				if err := fn(key); err != nil {
					return err
				}
			}
			if page.Next == "" {
				break
			}
			start = page.Next
		}
	}
	return nil
}

func (m *MasterClient) count(ctx context.Context) (int64, error) {
	var n int64
	err := m.eachKey(ctx, movableKinds, func(string) error { n++; return nil })
	return n, err
}

// movableKinds are the keys rebalance moves: live and unlinked.
var movableKinds = []string{"list", "unlinked"}

// rebalance asks the master to rebalance key, retrying while another write holds it.
func (m *MasterClient) rebalance(ctx context.Context, key string, dryRun bool) (KeyMove, error) {
	query := ""
	if dryRun {
		query = "dry-run"
	}
	for attempt := 0; ; attempt++ {
		resp, err := m.Do(ctx, "REBALANCE", key, query, nil, 0)
		if err != nil {
			return KeyMove{}, err
		}
		var mv KeyMove
		switch resp.StatusCode {
		case http.StatusOK:
			err = json.NewDecoder(resp.Body).Decode(&mv)
			resp.Body.Close()
			return mv, err
		case http.StatusNotFound:
			resp.Body.Close()
			return KeyMove{Key: key}, nil // deleted meanwhile: nothing to move
		case http.StatusConflict:
			resp.Body.Close()
			if attempt < 100 {
				select {
				case <-time.After(50 * time.Millisecond):
					continue
				case <-ctx.Done():
					return KeyMove{}, ctx.Err()
				}
			}
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return KeyMove{}, fmt.Errorf("master: REBALANCE %s: status %d: %s", key, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
}
