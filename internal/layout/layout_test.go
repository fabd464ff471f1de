package layout

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestKeyPathRoundTrip checks that every key the API accepts maps to a path that a file
// system can hold and that gives the key back.
func TestKeyPathRoundTrip(t *testing.T) {
	keys := []string{
		"/a", "/a/b", "/a/b/c", "/a/b/", "//", "/ spaces and ünïcödé ", "/%2F?#",
		"/" + strings.Repeat("k", 149), "/" + strings.Repeat("k", 150), "/" + strings.Repeat("k", 151),
		"/" + strings.Repeat("y", MaxKeyLen-1), "/" + strings.Repeat("€", (MaxKeyLen-1)/3),
	}
	for range 200 {
		b := make([]byte, 1+rand.IntN(MaxKeyLen-1))
		for j := range b {
			b[j] = byte(1 + rand.IntN(255))
		}
		keys = append(keys, "/"+string(b))
	}
	for _, key := range keys {
		for _, sub := range []int{0, 9, 255} {
			path := KeyPath(key, sub)
			// The longest name a file of the key gets: a write's generation (as
			// large as any) and an unlink marker.
			for part := range strings.SplitSeq(MarkerPath(key, sub, math.MaxUint64), "/") {
				if len(part) == 0 || len(part) > 255 || part == "." || part == ".." || strings.HasPrefix(part, ".") {
					t.Fatalf("KeyPath(%q) = %q has bad component %q", key, path, part)
				}
			}
			got, gotSub, err := ParseKeyPath(path)
			if err != nil || got != key || gotSub != sub {
				t.Fatalf("ParseKeyPath(KeyPath(%q, %d)) = %q, %d, %v", key, sub, got, gotSub, err)
			}
		}
	}
}

// TestNestedKeysNeverCollide: a key's file must never be a directory another key
// needs, or nginx could not store both /a/b and /a/b/c.
func TestNestedKeysNeverCollide(t *testing.T) {
	files := map[string]string{}
	dirs := map[string]string{}
	base := strings.Repeat("n", 148)
	keys := []string{"/a", "/a/b", "/a/b/c", "/" + base, "/" + base + "x", "/" + base + "xy", "/" + base + "xyz" + base + base}
	for _, key := range keys {
		path := KeyPath(key, 0)
		files[path] = key
		parts := strings.Split(path, "/")
		for i := 1; i < len(parts); i++ {
			dirs[strings.Join(parts[:i], "/")] = key
		}
	}
	for f, k := range files {
		if other, ok := dirs[f]; ok {
			t.Errorf("file of %q is a directory of %q: %s", k, other, f)
		}
	}
}

func TestParseKeyPathRejectsStrays(t *testing.T) {
	for _, path := range []string{
		"", "sv00", "sv00/aa/bb", "sv00/3e/d1/!!", "sv07/00/00/L2hlbGxv", "xx07/3e/d1/L2hlbGxv",
		"sv07/3e/d1/short.d/L2hlbGxv",
	} {
		if _, _, err := ParseKeyPath(path); !errors.Is(err, ErrNotKeyPath) {
			t.Errorf("ParseKeyPath(%q) = %v, want ErrNotKeyPath", path, err)
		}
	}
}

// TestGenPathGolden pins the paths of generations, old and new: gen 0 is KeyPath, so
// that values written before generations existed (and a key's first value, before
// every write had a generation of its own) stay where they are; small generations are
// S3 overwrites of those; a write now has a clock-sized one (see newGen).
func TestGenPathGolden(t *testing.T) {
	tests := []struct {
		gen               uint64
		marker, tombstone bool
		path              string
	}{
		{0, false, false, "sv07/3e/d1/L2hlbGxv"},
		{0, true, false, "sv07/3e/d1/L2hlbGxv.unlinked"},
		{1, false, false, "sv07/3e/d1/L2hlbGxv.g1"},
		{0x2a, true, false, "sv07/3e/d1/L2hlbGxv.g2a.unlinked"},
		{1 << 40, false, false, "sv07/3e/d1/L2hlbGxv.g10000000000"},
		{0, false, true, "sv07/3e/d1/L2hlbGxv.deleted"},
		{0x2a, false, true, "sv07/3e/d1/L2hlbGxv.g2a.deleted"},
		{0x18b2f3c4d5e6a7b8, false, false, "sv07/3e/d1/L2hlbGxv.g18b2f3c4d5e6a7b8"},
		{0x18b2f3c4d5e6a7b8, true, false, "sv07/3e/d1/L2hlbGxv.g18b2f3c4d5e6a7b8.unlinked"},
		{0x18b2f3c4d5e6a7b8, false, true, "sv07/3e/d1/L2hlbGxv.g18b2f3c4d5e6a7b8.deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got := GenPath("/hello", 7, tt.gen)
			switch {
			case tt.marker:
				got = MarkerPath("/hello", 7, tt.gen)
			case tt.tombstone:
				got = TombstonePath("/hello", 7, tt.gen)
			}
			if got != tt.path {
				t.Fatalf("path %q, want %q", got, tt.path)
			}
			f, err := ParseVolumePath(got)
			if want := (VolumeFile{Key: "/hello", Sub: 7, Gen: tt.gen, Marker: tt.marker, Tombstone: tt.tombstone}); err != nil || f != want {
				t.Fatalf("ParseVolumePath = %+v, %v; want %+v", f, err, want)
			}
		})
	}
	long := "/" + strings.Repeat("x", 300)
	if f, err := ParseVolumePath(GenPath(long, 0, 3)); err != nil || f.Key != long || f.Gen != 3 {
		t.Fatalf("long key: %+v, %v", f, err)
	}
	for _, bad := range []string{"sv07/3e/d1/L2hlbGxv.g0", "sv07/3e/d1/L2hlbGxv.g01", "sv07/3e/d1/L2hlbGxv.gA", "sv07/3e/d1/L2hlbGxv.g", "sv07/3e/d1/L2hlbGxv.gx.unlinked", "sv07/3e/d1/L2hlbGxv.deleted.unlinked", "sv07/3e/d1/L2hlbGxv.unlinked.deleted"} {
		if _, err := ParseVolumePath(bad); !errors.Is(err, ErrNotKeyPath) {
			t.Errorf("ParseVolumePath(%q) = %v, want ErrNotKeyPath", bad, err)
		}
	}
}

// TestPartPath: a part's path gives its upload, number and token back, and no other
// path passes for a part's.
func TestPartPath(t *testing.T) {
	id := strings.Repeat("0f", 16)
	if got := PartPath(id, 7, "tok"); got != "mp/"+id+"/00007.tok" {
		t.Fatalf("PartPath = %q", got)
	}
	if gotID, n, token, ok := ParsePartPath(PartPath(id, MaxParts, "t")); !ok || gotID != id || n != MaxParts || token != "t" {
		t.Fatalf("ParsePartPath = %q %d %q %v", gotID, n, token, ok)
	}
	for _, path := range []string{"mp/" + id + "/00000.t", "mp/" + id + "/10001.t", "mp/" + id + "/7.t", "mp/" + id + "/00007.",
		"mp/" + id[:30] + "/00007.t", "mp/" + strings.ToUpper(id) + "/00007.t", "sv00/" + id + "/00007.t", "mp/" + id + "/00007.t/x"} {
		if _, _, _, ok := ParsePartPath(path); ok {
			t.Errorf("ParsePartPath(%q) passes for a part", path)
		}
	}
}
