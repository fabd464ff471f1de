package s3proto

import (
	"encoding/base64"
	"errors"
	"io"
	"testing"
	"time"
)

func TestPostPolicy(t *testing.T) {
	policy := func(json string) string { return base64.StdEncoding.EncodeToString([]byte(json)) }
	p, err := ParsePolicy(policy(`{"expiration": "2030-01-01T00:00:00.000Z", "conditions": [{"bucket": "b"}, ["starts-with", "$key", "u/"], ["eq", "$Content-Type", "text/plain"], ["content-length-range", 1, 10], {"x-amz-meta-a": "1"}]}`))
	if err != nil || !p.Expiration.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || p.MinLength != 1 || p.MaxLength != 10 || len(p.Conditions) != 4 {
		t.Fatalf("ParsePolicy: %+v, %v", p, err)
	}
	tests := []struct {
		name   string
		form   PostForm
		bucket string
		ok     bool
	}{
		{"all hold", PostForm{"key": "u/x", "content-type": "text/plain", "x-amz-meta-a": "1", "policy": "p", "x-amz-signature": "s"}, "b", true},
		{"another bucket", PostForm{"key": "u/x", "content-type": "text/plain", "x-amz-meta-a": "1"}, "c", false},
		{"key outside", PostForm{"key": "v/x", "content-type": "text/plain", "x-amz-meta-a": "1"}, "b", false},
		{"type differs", PostForm{"key": "u/x", "content-type": "text/html", "x-amz-meta-a": "1"}, "b", false},
		{"field missing", PostForm{"key": "u/x", "content-type": "text/plain"}, "b", false},
		{"extra field", PostForm{"key": "u/x", "content-type": "text/plain", "x-amz-meta-a": "1", "x-amz-meta-b": "2"}, "b", false},
		{"ignored field", PostForm{"key": "u/x", "content-type": "text/plain", "x-amz-meta-a": "1", "x-ignore-me": "2"}, "b", true},
		{"checksum field", PostForm{"key": "u/x", "content-type": "text/plain", "x-amz-meta-a": "1", "x-amz-checksum-crc32": "AAAAAA=="}, "b", true},
		{"key of the file's name", PostForm{"key": "${filename}", "content-type": "text/plain", "x-amz-meta-a": "1"}, "b", false},
	}
	for _, tt := range tests {
		err := p.Check(tt.form, tt.bucket, "note.txt")
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	// The file's name in the key: u/${filename} starts with u/ as given, and
	// ${filename} does once note.txt is in its place.
	p2, _ := ParsePolicy(policy(`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["starts-with", "$key", "note"]]}`))
	if err := p2.Check(PostForm{"key": "${filename}"}, "b", "note.txt"); err != nil {
		t.Errorf("${filename} of note.txt: %v", err)
	}
	if err := p2.Check(PostForm{"key": "${filename}"}, "b", "other.txt"); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("${filename} of other.txt: %v", err)
	}
	for _, bad := range []string{"not base64!", policy(`{`), policy(`{"expiration": "soon", "conditions": []}`),
		policy(`{"EXPIRATION": "2030-01-01T00:00:00Z", "conditions": []}`), policy(`{"expiration": "2030-01-01T00:00:00Z", "Conditions": []}`),
		policy(`{"expiration": "2030-01-01T00:00:00Z"}`),
		policy(`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 5, 1]]}`),
		policy(`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["matches", "$key", "x"]]}`)} {
		if _, err := ParsePolicy(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParsePolicy(%q): %v", bad, err)
		}
	}
	l := LengthRange{Min: 2, Max: 4}
	if err := l.Count(1, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Count(0, io.EOF); !errors.Is(err, ErrEntityTooSmall) {
		t.Fatalf("1 byte of at least 2: %v", err)
	}
	l = LengthRange{Min: 2, Max: 4}
	if err := l.Count(5, nil); !errors.Is(err, ErrEntityTooLarge) {
		t.Fatalf("5 bytes of at most 4: %v", err)
	}
}

// TestVerifyPostV2 checks a form signed with SigV2, whose signature Python's hmac
// computed: the base64 HMAC-SHA1 of the policy with the secret.
func TestVerifyPostV2(t *testing.T) {
	const policy = "eyJleHBpcmF0aW9uIjogIjIwMzAtMDEtMDFUMDA6MDA6MDBaIiwgImNvbmRpdGlvbnMiOiBbXX0="
	const signature = "6Xr+qYihALjuk0POnagvkLA9Ync="
	keys := Keys{"ak": "secret"}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		form PostForm
		now  time.Time
		want *ErrorCode // nil: signed by ak
	}{
		{"signed", PostForm{"awsaccesskeyid": "ak", "policy": policy, "signature": signature}, now, nil},
		{"another signature", PostForm{"awsaccesskeyid": "ak", "policy": policy, "signature": "7Xr+qYihALjuk0POnagvkLA9Ync="}, now, ErrSignatureMismatch},
		{"unknown key", PostForm{"awsaccesskeyid": "other", "policy": policy, "signature": signature}, now, ErrInvalidAccessKeyID},
		{"no signature", PostForm{"awsaccesskeyid": "ak", "policy": policy}, now, ErrInvalidArgument},
		{"expired", PostForm{"awsaccesskeyid": "ak", "policy": policy, "signature": signature}, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ErrAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			access, _, err := VerifyPost(tt.form, keys, tt.now)
			switch {
			case tt.want == nil && (err != nil || access != "ak"):
				t.Fatalf("VerifyPost = %q, %v; want ak", access, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("VerifyPost = %q, %v; want %s", access, err, tt.want.Code)
			}
		})
	}
	p, _ := ParsePolicy(policy)
	if err := p.Check(tests[0].form, "b", ""); err != nil {
		t.Fatalf("a policy need not name SigV2's fields: %v", err)
	}
}
