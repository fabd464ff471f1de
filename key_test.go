package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		want error
	}{
		{"/a", nil},
		{"/a/b/c.txt", nil},
		{"/a//b", nil},
		{"/.hidden", nil},
		{"/a..b/...", nil},
		{"/" + strings.Repeat("k", maxKeyLen-1), nil},
		{"", ErrBadKey},
		{"/", ErrBadKey},
		{"a", ErrBadKey},
		{"/" + strings.Repeat("k", maxKeyLen), ErrBadKey},
		{"/a\x00b", ErrBadKey},
		{"/a/../b", ErrBadKey},
		{"/..", ErrBadKey},
		{"/./a", ErrBadKey},
		{"/a/.", ErrBadKey},
		{"/\xff", ErrBadKey},
		{healthPath, ErrReservedKey},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.key), func(t *testing.T) {
			err := checkKey(tt.key)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("checkKey = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("reason is not one line: %q", err)
			}
		})
	}
}
