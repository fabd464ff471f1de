package auth

import (
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/index/leveldb"
	"davkv/internal/policy"
)

func TestFromRequest(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         Credential
		ok           bool
		bad          bool
	}{
		{"none", "", Credential{}, false, false},
		{"basic", "Basic " + "YWs6czpz", Credential{"ak", "s:s"}, true, false}, // ak:s:s
		{"bearer", "Bearer ak:secret", Credential{"ak", "secret"}, true, false},
		{"bearer, any case", "bearer  ak:secret ", Credential{"ak", "secret"}, true, false},
		{"basic not base64", "Basic !!", Credential{}, false, true},
		{"no secret", "Bearer ak", Credential{}, false, true},
		{"empty secret", "Bearer ak:", Credential{}, false, true},
		{"other scheme", "Digest x", Credential{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://127.0.0.1/x", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			c, ok, err := FromRequest(r)
			if tc.bad != errors.Is(err, ErrBadCredentials) || ok != tc.ok || c != tc.want {
				t.Fatalf("FromRequest = %+v, %v, %v", c, ok, err)
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := Limiter{Burst: 3, Rate: 2}
	now := time.Unix(1e9, 0)
	for i := 0; i < 3; i++ {
		if l.Limited("a", now) {
			t.Fatalf("limited after %d failures", i)
		}
		l.Failed("a", now)
	}
	if !l.Limited("a", now) {
		t.Fatal("not limited after Burst failures")
	}
	if l.Limited("b", now) {
		t.Fatal("another address is limited")
	}
	if l.Limited("a", now.Add(500*time.Millisecond)) {
		t.Fatal("still limited once a failure is earned back")
	}
	l.Failed("a", now.Add(500*time.Millisecond))
	if !l.Limited("a", now.Add(500*time.Millisecond)) {
		t.Fatal("not limited after failing again")
	}
	for i := 0; i < maxAddrs+10; i++ {
		l.Failed(string(rune(i)), now)
	}
	if len(l.addrs) > maxAddrs {
		t.Fatalf("%d addresses remembered, at most %d", len(l.addrs), maxAddrs)
	}
}

func TestStore(t *testing.T) {
	idx, err := leveldb.Open(filepath.Join(t.TempDir(), "db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	s := &Store{Root: map[string]string{"admin": "root-secret"}, Index: idx, TTL: time.Hour}
	other := &Store{Root: s.Root, Index: idx, TTL: 50 * time.Millisecond} // another master's
	if err := s.Add("reader", index.AccessKey{Secret: "reader-secret", Policy: policy.Canned["readonly"]}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		add  func() error
	}{
		{"again", ErrKeyExists, func() error { return s.Add("reader", index.AccessKey{Secret: "x", Policy: policy.Canned["readonly"]}) }},
		{"root", ErrRootKey, func() error { return s.Add("admin", index.AccessKey{Secret: "x", Policy: policy.Canned["readonly"]}) }},
		{"bad ID", ErrBadID, func() error { return s.Add("a:b", index.AccessKey{Secret: "x", Policy: policy.Canned["readonly"]}) }},
		{"bad policy", policy.ErrMalformed, func() error { return s.Add("www", index.AccessKey{Secret: "x", Policy: "{}"}) }},
		{"policy of none", ErrUnknownKey, func() error { return s.SetPolicy("none", []byte(policy.Canned["readonly"])) }},
		{"remove none", ErrUnknownKey, func() error { return s.Remove("none") }},
		{"remove root", ErrRootKey, func() error { return s.Remove("admin") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.add(); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	for _, tc := range []struct {
		c  Credential
		ok bool
	}{
		{Credential{"admin", "root-secret"}, true},
		{Credential{"reader", "reader-secret"}, true},
		{Credential{"reader", "reader-secreT"}, false},
		{Credential{"nobody", "reader-secret"}, false},
	} {
		k, err := other.Check(tc.c)
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Check(%+v) = %+v, %v", tc.c, k, err)
		}
	}
	reader, _ := other.Key("reader")
	if ok, err := other.Allows(&reader, "s3:PutObject", "arn:aws:s3:::b/x", ""); ok || err != nil {
		t.Fatalf("readonly may put: %v, %v", ok, err)
	}
	if ok, _ := other.Allows(&reader, "s3:GetObject", "arn:aws:s3:::b/x", ""); !ok {
		t.Fatal("readonly may not get")
	}
	if ok, _ := other.Allows(nil, "s3:GetObject", "arn:aws:s3:::b/x", "b"); ok {
		t.Fatal("anonymous may get, with no bucket policy")
	}
	// A bucket made public, and a key's policy changed and the key revoked, are seen
	// by the other store once its TTL has passed.
	bucket, _ := index.Bucket{Policy: string(policy.PublicRead("b").JSON())}.MarshalBinary()
	if _, err := idx.PutEntry(index.BucketSpace, "b", bucket, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicy("reader", []byte(policy.Canned["readwrite"])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	if ok, err := other.Allows(nil, "s3:GetObject", "arn:aws:s3:::b/x", "b"); !ok || err != nil {
		t.Fatalf("anonymous may not get from a public bucket: %v", err)
	}
	reader, _ = other.Key("reader")
	if ok, _ := other.Allows(&reader, "s3:PutObject", "arn:aws:s3:::b/x", ""); !ok {
		t.Fatal("readwrite may not put")
	}
	if err := s.Remove("reader"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(Credential{"reader", "reader-secret"}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a revoked key is taken by the store that revoked it: %v", err)
	}
	time.Sleep(60 * time.Millisecond)
	if _, err := other.Check(Credential{"reader", "reader-secret"}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a revoked key is taken once TTL passed: %v", err)
	}
	var ids []string
	s.Add("writer", index.AccessKey{Secret: NewSecret(), Policy: policy.Canned["readwrite"]})
	if err := s.List(func(id string, _ index.AccessKey) error { ids = append(ids, id); return nil }); err != nil || len(ids) != 1 || ids[0] != "writer" {
		t.Fatalf("List: %v, %v", ids, err)
	}
}
