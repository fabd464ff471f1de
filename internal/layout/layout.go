package layout

// Where a key's value and unlink marker live on a volume (KeyPath, GenPath, MarkerPath),
// and back from a path to its key (ParseVolumePath), for rebuild and verify.

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxKeyLen is the longest key, in bytes, that KeyPath stores: its files' paths stay
// within what file systems and nginx hold.
const MaxKeyLen = 1024

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

// genSuffix begins the suffix of a generation's files: ".g" and the generation in hex.
// Each write of a key has files of its own (see newGen), so that a reader sees the old
// value or the new one whole, never a mix, and a writer that was thought gone can
// never replace another write's value. Like chunkSuffix it has a dot, which no
// base64url name has.
const genSuffix = ".g"

// GenPath returns where generation gen of key's value is stored: KeyPath with
// genSuffix and gen in hex after it, or KeyPath itself for gen 0, which is where
// davkv wrote a key's first value before every write had a generation of its own, so
// that rebuild and verify read volumes written then as they are.
func GenPath(key string, sub int, gen uint64) string {
	path := KeyPath(key, sub)
	if gen == 0 {
		return path
	}
	return path + genSuffix + strconv.FormatUint(gen, 16)
}

// markerSuffix names the empty file that UNLINK puts beside a value on each of its
// volumes, so that rebuild can tell unlinked keys from live ones. Like chunkSuffix it
// has a dot, which no value's file name has.
const markerSuffix = ".unlinked"

// MarkerPath returns where the unlink marker of generation gen of key is stored on a
// volume: beside its value.
func MarkerPath(key string, sub int, gen uint64) string { return GenPath(key, sub, gen) + markerSuffix }

// tombstoneSuffix names the empty file that a DELETE leaves on the volumes it reached
// when others could not be reached: it tells rebuild that the key was deleted, with
// every generation up to its own, so that a replica left on a volume that was away
// does not bring the key back. The master removes it once those replicas are gone.
const tombstoneSuffix = ".deleted"

// TombstonePath returns where the tombstone of key's generations up to gen is stored.
func TombstonePath(key string, sub int, gen uint64) string {
	return GenPath(key, sub, gen) + tombstoneSuffix
}

// ErrNotKeyPath says that a path on a volume is not one that GenPath, MarkerPath or
// TombstonePath makes.
var ErrNotKeyPath = errors.New("not a davkv key path")

// VolumeFile is what a file on a volume is to davkv.
type VolumeFile struct {
	Key string
	Sub int
	// Gen is the generation of the value (see GenPath).
	Gen uint64
	// Marker says the file is an unlink marker, not the value.
	Marker bool
	// Tombstone says the file is a tombstone (see TombstonePath).
	Tombstone bool
}

// ParseVolumePath is the inverse of GenPath, MarkerPath and TombstonePath. It checks
// that the hash directories match and that a generation is written as GenPath writes
// it, so that stray files are not taken for keys.
func ParseVolumePath(path string) (VolumeFile, error) {
	value, marker := strings.CutSuffix(path, markerSuffix)
	value, tombstone := strings.CutSuffix(value, tombstoneSuffix)
	if marker && tombstone {
		return VolumeFile{}, fmt.Errorf("%w: %q: both a marker and a tombstone", ErrNotKeyPath, path)
	}
	var gen uint64
	if i := strings.LastIndex(value, genSuffix); i > strings.LastIndexByte(value, '/') {
		digits := value[i+len(genSuffix):]
		g, err := strconv.ParseUint(digits, 16, 64)
		if err != nil || g == 0 || strconv.FormatUint(g, 16) != digits {
			return VolumeFile{}, fmt.Errorf("%w: %q: bad generation", ErrNotKeyPath, path)
		}
		value, gen = value[:i], g
	}
	key, sub, err := ParseKeyPath(value)
	return VolumeFile{Key: key, Sub: sub, Gen: gen, Marker: marker, Tombstone: tombstone}, err
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
