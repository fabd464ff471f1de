package main

// Where a key's value and unlink marker live on a volume (KeyPath, MarkerPath), and
// back from a path to its key (ParseVolumePath), for rebuild and verify.

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// nameChunk is the longest file-name component KeyPath writes: file systems and nginx
// cap a name at 255 bytes, and the room left serves suffixes (chunkSuffix and the
// markers that later versions may add).
const nameChunk = 200

// chunkSuffix marks a directory that continues a long key's name. A value's file name
// never has it (base64url has no dot), so /a/b and /a/b/c... never need one name to be
// both a file and a directory.
const chunkSuffix = ".d"

// KeyPath returns where key's value is stored on a volume, relative to its root:
// sv<subvolume>/<md5[0]>/<md5[1]>/<name>. The name is the key in unpadded URL-safe
// base64, so every byte of any key survives, never makes a '/' of its own, and needs
// no escaping in a URL; names longer than nameChunk are split into directories of
// nameChunk characters, each ending in chunkSuffix. The two hash levels spread keys over
// 65536 directories per subvolume.
func KeyPath(key string, sub int) string {
	h := md5.Sum([]byte(key))
	name := base64.RawURLEncoding.EncodeToString([]byte(key))
	b := make([]byte, 0, 16+len(name)+len(name)/nameChunk*(len(chunkSuffix)+1))
	b = append(b, "sv"...)
	if sub < 16 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(sub), 16)
	b = append(b, '/')
	b = hex.AppendEncode(b, h[:1])
	b = append(b, '/')
	b = hex.AppendEncode(b, h[1:2])
	b = append(b, '/')
	for len(name) > nameChunk {
		b = append(b, name[:nameChunk]...)
		b = append(b, chunkSuffix...)
		b = append(b, '/')
		name = name[nameChunk:]
	}
	b = append(b, name...)
	return string(b)
}

// markerSuffix names the empty file that UNLINK puts beside a value on each of its
// volumes, so that rebuild can tell unlinked keys from live ones. Like chunkSuffix it
// has a dot, which no value's file name has.
const markerSuffix = ".unlinked"

// MarkerPath returns where the unlink marker of key is stored on a volume.
func MarkerPath(key string, sub int) string { return KeyPath(key, sub) + markerSuffix }

// ErrNotKeyPath says that a path on a volume is not one KeyPath or MarkerPath makes.
var ErrNotKeyPath = errors.New("not a davkv key path")

// VolumeFile is what a file on a volume is to davkv.
type VolumeFile struct {
	Key string
	Sub int
	// Marker says the file is an unlink marker, not the value.
	Marker bool
}

// ParseVolumePath is the inverse of KeyPath and MarkerPath. It checks that the hash
// directories match, so that stray files are not taken for keys.
func ParseVolumePath(path string) (VolumeFile, error) {
	value, marker := strings.CutSuffix(path, markerSuffix)
	key, sub, err := ParseKeyPath(value)
	return VolumeFile{Key: key, Sub: sub, Marker: marker}, err
}

// ParseKeyPath is the inverse of KeyPath: it returns the key and subvolume stored at
// path, checking that the hash directories match, so that stray files are not taken
// for keys.
func ParseKeyPath(path string) (key string, sub int, err error) {
	parts := strings.Split(path, "/")
	if len(parts) < 4 {
		return "", 0, fmt.Errorf("%w: %q", ErrNotKeyPath, path)
	}
	if _, err := fmt.Sscanf(parts[0], "sv%x", &sub); err != nil {
		return "", 0, fmt.Errorf("%w: %q: bad subvolume", ErrNotKeyPath, path)
	}
	var name strings.Builder
	for _, p := range parts[3 : len(parts)-1] {
		chunk, ok := strings.CutSuffix(p, chunkSuffix)
		if !ok || len(chunk) != nameChunk {
			return "", 0, fmt.Errorf("%w: %q: bad name directory", ErrNotKeyPath, path)
		}
		name.WriteString(chunk)
	}
	name.WriteString(parts[len(parts)-1])
	raw, err := base64.RawURLEncoding.DecodeString(name.String())
	if err != nil || len(raw) == 0 {
		return "", 0, fmt.Errorf("%w: %q: bad name", ErrNotKeyPath, path)
	}
	key = string(raw)
	if KeyPath(key, sub) != path {
		return "", 0, fmt.Errorf("%w: %q: hash directories do not match", ErrNotKeyPath, path)
	}
	return key, sub, nil
}
