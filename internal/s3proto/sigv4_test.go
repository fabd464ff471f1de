package s3proto

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestParseS3Keys(t *testing.T) {
	tests := []struct {
		in   string
		want Keys
		ok   bool
	}{
		{"AK:SK", Keys{"AK": "SK"}, true},
		{"a:b, c:d:e ,", Keys{"a": "b", "c": "d:e"}, true},
		{"", Keys{}, true},
		{"nocolon", nil, false},
		{":secret", nil, false},
		{"a:", nil, false},
		{"a:b,a:c", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKeys(tt.in)
			if (err == nil) != tt.ok || len(got) != len(tt.want) {
				t.Fatalf("ParseS3Keys(%q) = %v, %v", tt.in, got, err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("ParseS3Keys(%q)[%q] = %q, want %q", tt.in, k, got[k], v)
				}
			}
		})
	}
}

// TestVerifySigV4 signs requests with the AWS SDK's own signer, sends them through a
// real HTTP server, and checks what VerifySigV4 makes of them.
func TestVerifySigV4(t *testing.T) {
	keys := Keys{"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	good := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: keys["AKIDEXAMPLE"]}
	wrongSecret := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "not-the-secret"}
	unknown := aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: "x"}
	now := time.Now()

	var got error
	var gotAuth Auth
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, got = VerifySigV4(r, keys, now)
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()

	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	type req struct {
		method, path, query string
		header              map[string]string
		body                string
	}
	newRequest := func(t *testing.T, q req) *http.Request {
		u, _ := url.Parse(srv.URL)
		u.Path, u.RawPath = q.path, URIEncode(q.path, false)
		u.RawQuery = q.query
		r, err := http.NewRequest(q.method, u.String(), strings.NewReader(q.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range q.header {
			r.Header.Set(k, v)
		}
		return r
	}
	send := func(t *testing.T, r *http.Request) error {
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return got
	}
	sign := func(t *testing.T, r *http.Request, creds aws.Credentials, payload string, at time.Time) {
		r.Header.Set("X-Amz-Content-Sha256", payload)
		if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
			SignHTTP(context.Background(), creds, r, payload, "s3", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
	}
	presign := func(t *testing.T, r *http.Request, creds aws.Credentials, expires time.Duration, at time.Time) *http.Request {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
		r.URL.RawQuery = q.Encode()
		signed, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
			PresignHTTP(context.Background(), creds, r, UnsignedPayload, "s3", "eu-west-3", at)
		if err != nil {
			t.Fatal(err)
		}
		pr, err := http.NewRequest(r.Method, signed, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}

	odd := "/bucket/a key&b+c=d;e:f@g!h$i'j(k)l*m,n~o/ünï/%41"
	tests := []struct {
		name string
		make func(t *testing.T) *http.Request
		want *ErrorCode // nil: the signature is good
	}{
		{"header, unsigned payload", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key", query: "list-type=2&prefix=a%2Fb&delimiter=%2F"})
			sign(t, r, good, UnsignedPayload, now)
			return r
		}, nil},
		{"header, signed payload and extra headers", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "PUT", path: "/bucket/key", body: "", header: map[string]string{"Content-Type": "text/plain", "X-Amz-Meta-Color": "  deep   blue "}})
			sign(t, r, good, emptySHA, now)
			return r
		}, nil},
		{"header, key with characters to escape", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: odd, query: "uploads&prefix=%26%3C%3E%2B%20"})
			sign(t, r, good, UnsignedPayload, now)
			return r
		}, nil},
		{"header, wrong secret", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key"})
			sign(t, r, wrongSecret, UnsignedPayload, now)
			return r
		}, ErrSignatureMismatch},
		{"header, unknown access key", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key"})
			sign(t, r, unknown, UnsignedPayload, now)
			return r
		}, ErrInvalidAccessKeyID},
		{"header, signed 20 minutes ago", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key"})
			sign(t, r, good, UnsignedPayload, now.Add(-20*time.Minute))
			return r
		}, ErrTimeSkewed},
		{"header, path changed after signing", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key"})
			sign(t, r, good, UnsignedPayload, now)
			r.URL.Path, r.URL.RawPath = "/bucket/other", ""
			return r
		}, ErrSignatureMismatch},
		{"header, query changed after signing", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket", query: "prefix=a"})
			sign(t, r, good, UnsignedPayload, now)
			r.URL.RawQuery = "prefix=b"
			return r
		}, ErrSignatureMismatch},
		{"header, signed header changed", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "PUT", path: "/bucket/key", header: map[string]string{"X-Amz-Meta-Color": "blue"}})
			sign(t, r, good, emptySHA, now)
			r.Header.Set("X-Amz-Meta-Color", "red")
			return r
		}, ErrSignatureMismatch},
		{"header, payload hash changed", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "PUT", path: "/bucket/key"})
			sign(t, r, good, emptySHA, now)
			r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
			return r
		}, ErrSignatureMismatch},
		{"header, no payload hash", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key"})
			sign(t, r, good, UnsignedPayload, now)
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}, ErrInvalidRequest},
		{"header, other algorithm", func(t *testing.T) *http.Request {
			r := newRequest(t, req{method: "GET", path: "/bucket/key", header: map[string]string{"Authorization": "AWS AKIDEXAMPLE:c2lnbmF0dXJl"}})
			return r
		}, ErrAuthMalformed},
		{"not signed", func(t *testing.T) *http.Request {
			return newRequest(t, req{method: "GET", path: "/bucket/key"})
		}, ErrAccessDenied},
		{"presigned", func(t *testing.T) *http.Request {
			return presign(t, newRequest(t, req{method: "GET", path: odd}), good, time.Hour, now)
		}, nil},
		{"presigned, expired", func(t *testing.T) *http.Request {
			return presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, time.Minute, now.Add(-2*time.Minute))
		}, ErrAccessDenied},
		{"presigned, valid for more than 7 days", func(t *testing.T) *http.Request {
			return presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, 8*24*time.Hour, now)
		}, ErrAccessDenied},
		{"presigned, valid for 0 seconds", func(t *testing.T) *http.Request {
			return presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, 0, now)
		}, ErrAccessDenied},
		{"presigned, valid for a negative time", func(t *testing.T) *http.Request {
			return presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, -time.Minute, now)
		}, ErrAccessDenied},
		{"presigned, expiry not a number", func(t *testing.T) *http.Request {
			r := presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, time.Hour, now)
			q := r.URL.Query()
			q.Set("X-Amz-Expires", "soon")
			r.URL.RawQuery = q.Encode()
			return r
		}, ErrAuthMalformed},
		{"presigned, other key in the same URL", func(t *testing.T) *http.Request {
			r := presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, time.Hour, now)
			r.URL.Path, r.URL.RawPath = "/bucket/kez", ""
			return r
		}, ErrSignatureMismatch},
		{"presigned, for another method", func(t *testing.T) *http.Request {
			r := presign(t, newRequest(t, req{method: "GET", path: "/bucket/key"}), good, time.Hour, now)
			r.Method = http.MethodDelete
			return r
		}, ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := send(t, tt.make(t))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("verifySigV4: %v, want a good signature", err)
				}
				if gotAuth.Access != "AKIDEXAMPLE" {
					t.Fatalf("signed by %q", gotAuth.Access)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("verifySigV4: %v, want %s", err, tt.want.Code)
			}
		})
	}
}

// TestCanonicalHeaderLatin1: a header value that is not UTF-8 is signed as the
// Latin-1 it is, in UTF-8, as Python's clients sign what they send so.
func TestCanonicalHeaderLatin1(t *testing.T) {
	r, err := http.NewRequest(http.MethodPut, "http://x/b/k", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header["X-Amz-Meta-A"] = []string{"Hello  World\xe9"}
	r.Header["X-Amz-Meta-B"] = []string{"caf\xc3\xa9"}
	if got := canonicalHeader(r, "x-amz-meta-a"); got != "Hello Worldé" {
		t.Errorf("latin-1: %q", got)
	}
	if got := canonicalHeader(r, "x-amz-meta-b"); got != "café" {
		t.Errorf("utf-8: %q", got)
	}
}
