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
	}
	for _, tt := range tests {
		err := p.Check(tt.form, tt.bucket)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	for _, bad := range []string{"not base64!", policy(`{`), policy(`{"expiration": "soon", "conditions": []}`),
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
