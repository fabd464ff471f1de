package main

// Who may do what, on both APIs: a request's credentials (an S3 signature, or for the
// native API HTTP basic or a bearer token), the action and resource it asks for, and
// its judgement by the key's policy and the bucket's. The S3 API checks whenever the
// master has keys (-s3keys); the native API only with -auth, so that minikeyvalue's
// scripts keep working until their operator says otherwise.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"davkv/internal/auth"
	"davkv/internal/policy"
	"davkv/internal/s3proto"
)

// The native API's errors of access control; the S3 API answers S3's codes instead.
var (
	// ErrNoCredentials says the request needs credentials it did not carry: 401.
	ErrNoCredentials = errors.New("credentials needed: Authorization: Basic or Bearer ID:SECRET")
	// ErrAccessDenied says the request's key may not do what it asked: 403.
	ErrAccessDenied = errors.New("access denied")
	// ErrTooManyFailures says the client's address failed to authenticate too often
	// to try again yet: 429.
	ErrTooManyFailures = errors.New("too many failed authentications from this address; try again later")
)

// access is what a request asks for: Action on Resource (see policy.Request) in
// Bucket ("" if none, or several), or, Admin, what only an administrator may do.
type access struct {
	Action, Resource, Bucket string
	Admin                    bool
}

// objectAccess is action on bucket's object key ("" for the bucket itself).
func objectAccess(action, bucket, key string) access {
	res := policy.ARNPrefix + bucket
	if key != "" {
		res += "/" + key
	}
	return access{Action: action, Resource: res, Bucket: bucket}
}

// nativeAccess is what a native request for key asks for; open is true for what
// anyone may do (/health, /metrics).
func nativeAccess(r *http.Request, key string, q url.Values) (a access, open bool) {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case read && (key == healthPath || key == metricsPath):
		return access{}, true
	case key == "/" && q.Has(keysParam), r.Method == "REBALANCE", r.Method == "VERIFY":
		return access{Admin: true}, false
	case read && (q.Has("list") || q.Has("unlinked") || q.Has("pending") || wantsBrowse(r, q)):
		// A listing of /b/... lists bucket b; one of / or /b lists several.
		bucket, _, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/")
		if !ok || bucket == "" {
			return access{Action: "s3:ListBucket", Resource: policy.EveryResource}, false
		}
		return objectAccess("s3:ListBucket", bucket, ""), false
	}
	action := "s3:GetObject"
	switch r.Method {
	case http.MethodPut:
		action = "s3:PutObject"
	case http.MethodDelete, "UNLINK":
		action = "s3:DeleteObject"
	}
	bucket, object, _ := strings.Cut(strings.TrimPrefix(key, "/"), "/")
	return objectAccess(action, bucket, object), false
}

// checkNative says whether a native request for key, whose query is q, may go on: with
// -auth, its credentials must be good and allow it, or the bucket's policy must let
// anyone.
func (m *Master) checkNative(r *http.Request, key string, q url.Values) error {
	// The keys are an administrator's to manage even where the rest is open.
	if m.keys == nil || !m.cfg.Auth && !(key == "/" && q.Has(keysParam)) {
		return nil
	}
	a, open := nativeAccess(r, key, q)
	if open {
		return nil
	}
	who, err := m.authenticate(r, apiNative, func() (*auth.Key, error) {
		c, ok, err := auth.FromRequest(r)
		if err != nil || !ok {
			return nil, err
		}
		k, err := m.keys.Check(c)
		return &k, err
	})
	if err != nil {
		return err
	}
	return m.authorize(who, a, apiNative)
}

// authenticate finds who sent r (nil: nobody, an anonymous request) with check, once
// r's address may still try, and counts a failure against it.
func (m *Master) authenticate(r *http.Request, api string, check func() (*auth.Key, error)) (*auth.Key, error) {
	addr := clientAddr(r)
	now := time.Now()
	if m.limiter.Limited(addr, now) && hasCredentials(r) {
		m.metrics.authFailed(api, "limited")
		return nil, ErrTooManyFailures
	}
	who, err := check()
	if errors.Is(err, auth.ErrBadCredentials) || errors.Is(err, s3proto.ErrInvalidAccessKeyID) || errors.Is(err, s3proto.ErrSignatureMismatch) {
		m.limiter.Failed(addr, now)
		m.metrics.authFailed(api, "credentials")
	}
	return who, err
}

// hasCredentials reports whether r carries any: an anonymous request is judged by
// the bucket's policy, and never limited.
func hasCredentials(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	q := r.URL.Query()
	return q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("Signature") || q.Has("AWSAccessKeyId")
}

// authorize says whether who (nil: anonymous) may do a, as the native API says it:
// ErrNoCredentials if anonymous, ErrAccessDenied if not.
func (m *Master) authorize(who *auth.Key, a access, api string) error {
	ok := a.Admin && who != nil && who.Root
	if !a.Admin {
		var err error
		if ok, err = m.keys.Allows(who, a.Action, a.Resource, a.Bucket); err != nil {
			return err
		}
	}
	if ok {
		return nil
	}
	m.metrics.authFailed(api, "denied")
	what := a.Action + " " + a.Resource
	if a.Admin {
		what = "what only an administrator (-s3keys) may do"
	}
	if who == nil {
		return fmt.Errorf("%w to %s", ErrNoCredentials, what)
	}
	return fmt.Errorf("%w: key %s may not %s", ErrAccessDenied, who.ID, what)
}

// clientAddr is r's client's address, without its port: what failures are limited by.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// The APIs, as metrics name them.
const (
	apiNative = "native"
	apiS3     = "s3"
)

// redactQuery is a query as -v logs it: a presigned URL's or signed link's signature,
// which stands for a key for as long as it holds, replaced by "REDACTED".
func redactQuery(raw string) string {
	if !strings.Contains(raw, "ignature=") && !strings.Contains(raw, "st=") {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		if ok && (strings.EqualFold(name, "X-Amz-Signature") || name == "Signature" || name == "st") {
			parts[i] = name + "=REDACTED"
		}
	}
	return strings.Join(parts, "&")
}
