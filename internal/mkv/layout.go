package mkv

// Where minikeyvalue put a key's file on a volume (its key2path), and which volumes
// and subvolumes it chose for a key (its key2volume).

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Path is where minikeyvalue stored key's file under a (sub)volume's root:
// <md5[0]>/<md5[1]>/<key in padded standard base64>, whose '/'s make directories.
// nginx merges runs of '/' in a URL, so a file's name on disk is Path with each run of
// '/' made one (see DiskPath).
func Path(key string) string {
	h := md5.Sum([]byte(key))
	return fmt.Sprintf("%02x/%02x/%s", h[0], h[1], base64.StdEncoding.EncodeToString([]byte(key)))
}

// VolumePath is where minikeyvalue stored key's file on a volume, under subdir (its
// svXX; empty for a cluster of one subvolume), as a URL path: nginx merges its
// slashes as it did when minikeyvalue wrote it.
func VolumePath(key, subdir string) string {
	if subdir == "" {
		return Path(key)
	}
	return subdir + "/" + Path(key)
}

// DiskPath is Path as nginx stored it: runs of '/' merged.
func DiskPath(key string) string {
	p := Path(key)
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

// Storable reports whether minikeyvalue could have stored key: a base64 name that
// ends in '/' names a directory, which nginx refuses to PUT.
func Storable(key string) bool { return !strings.HasSuffix(Path(key), "/") }

// SplitVolume splits a volume as minikeyvalue's records name it, host:port or
// host:port/svXX, into the host:port and the subvolume directory ("" for none).
func SplitVolume(v string) (addr, subdir string, err error) {
	addr, subdir, _ = strings.Cut(v, "/")
	if addr == "" || !strings.Contains(addr, ":") {
		return "", "", fmt.Errorf("volume %q is not host:port[/svXX]", v)
	}
	if subdir != "" {
		if _, err := ParseSubdir(subdir); err != nil {
			return "", "", fmt.Errorf("volume %q: %w", v, err)
		}
	}
	return addr, subdir, nil
}

// Subdir is the name of subvolume n's directory: sv and two upper-case hex digits.
func Subdir(n int) string { return fmt.Sprintf("sv%02X", n) }

// ParseSubdir is the inverse of Subdir.
func ParseSubdir(dir string) (int, error) {
	digits, ok := strings.CutPrefix(dir, "sv")
	n, err := strconv.ParseUint(digits, 16, 8)
	if !ok || err != nil || Subdir(int(n)) != dir {
		return 0, fmt.Errorf("%q is not a subvolume directory svXX", dir)
	}
	return int(n), nil
}

// score is how much key prefers volume: md5(key, volume), higher first.
func score(key, volume string) [md5.Size]byte {
	return md5.Sum([]byte(key + volume))
}

// Rank returns volumes (host:port) in the order minikeyvalue prefers them for key:
// by md5(key + volume), highest first, ties in the order given.
func Rank(key string, volumes []string) []string {
	type scored struct {
		v string
		s [md5.Size]byte
	}
	s := make([]scored, len(volumes))
	for i, v := range volumes {
		s[i] = scored{v, score(key, v)}
	}
	slices.SortStableFunc(s, func(a, b scored) int { return -bytes.Compare(a.s[:], b.s[:]) })
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].v
	}
	return out
}

// Subvolume is the subvolume minikeyvalue put key in on volume, of subvolumes: the
// last four bytes of the volume's score.
func Subvolume(key, volume string, subvolumes int) int {
	s := score(key, volume)
	return int(binary.BigEndian.Uint32(s[12:]) % uint32(max(subvolumes, 1)))
}

// Choose is minikeyvalue's key2volume: the replicas volumes that hold key, as its
// records name them (with /svXX unless subvolumes is 1).
func Choose(key string, volumes []string, replicas, subvolumes int) []string {
	ranked := Rank(key, volumes)
	out := ranked[:min(replicas, len(ranked))]
	if subvolumes == 1 {
		return out
	}
	for i, v := range out {
		out[i] = v + "/" + Subdir(Subvolume(key, v, subvolumes))
	}
	return out
}

// ErrNotPath says a path on a volume is not one minikeyvalue wrote.
var ErrNotPath = errors.New("not a minikeyvalue file")

// ParsePath is the inverse of a (sub)volume's DiskPath: the key whose file is at path
// (relative to the volume's root, with its svXX directory first when the volume has
// subvolumes) and its subdirectory. The hash directories must match, so that stray
// files are not taken for keys; a name whose slashes nginx merged cannot be read back
// and is ErrNotPath.
func ParsePath(path string) (key, subdir string, err error) {
	parts := strings.Split(path, "/")
	if len(parts) > 0 && strings.HasPrefix(parts[0], "sv") {
		if _, err := ParseSubdir(parts[0]); err == nil {
			subdir, parts = parts[0], parts[1:]
		}
	}
	if len(parts) < 3 {
		return "", "", fmt.Errorf("%w: %q", ErrNotPath, path)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(parts[2:], "/"))
	if err != nil || len(raw) == 0 {
		return "", "", fmt.Errorf("%w: %q: bad name", ErrNotPath, path)
	}
	key = string(raw)
	if parts[0]+"/"+parts[1]+"/"+strings.Join(parts[2:], "/") != Path(key) {
		return "", "", fmt.Errorf("%w: %q: hash directories do not match", ErrNotPath, path)
	}
	return key, subdir, nil
}
