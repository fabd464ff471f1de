package signurl

import (
	"testing"
)

// TestSignURLGolden pins the signature to what nginx's secure_link computes (checked
// with openssl md5 -binary | base64url), so that it never changes by accident.
func TestSignURLGolden(t *testing.T) {
	got := Sign("http://v:1/sv07/3e/d1/L2hlbGxv", "sv07/3e/d1/L2hlbGxv", "abcdefghijklmnop", 2000000000)
	if want := "http://v:1/sv07/3e/d1/L2hlbGxv?st=5QP9wQiIF8trQcvgP9L4kg&e=2000000000"; got != want {
		t.Fatalf("signURL = %s, want %s", got, want)
	}
}
