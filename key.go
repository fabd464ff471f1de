package main

// Which keys the master accepts: what a key may hold so that every accepted key can be
// stored (see KeyPath) and listed (in JSON, so valid UTF-8).

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"davkv/internal/layout"
)

// maxKeyLen is the longest key, in bytes: the longest the volumes' file names hold.
const maxKeyLen = layout.MaxKeyLen

// The reasons checkKey refuses a key.
var (
	ErrBadKey      = errors.New("bad key")
	ErrReservedKey = errors.New("reserved key")
)

// checkKey returns why key cannot be stored, or nil.
func checkKey(key string) error {
	switch {
	case key == "" || key == "/":
		return fmt.Errorf("%w: empty key", ErrBadKey)
	case key[0] != '/':
		return fmt.Errorf("%w: key must start with /", ErrBadKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrBadKey, maxKeyLen)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key contains a NUL byte", ErrBadKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrBadKey)
	case key == healthPath:
		return fmt.Errorf("%w: %s is the health endpoint", ErrReservedKey, healthPath)
	case key == metricsPath:
		return fmt.Errorf("%w: %s is the metrics endpoint", ErrReservedKey, metricsPath)
	}
	for seg := range strings.SplitSeq(key[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: key has a %q path segment", ErrBadKey, seg)
		}
	}
	return nil
}
