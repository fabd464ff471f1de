package mkv

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var vols = []string{"127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003", "127.0.0.1:3004", "127.0.0.1:3005"}

// TestGolden pins Path and Choose to what minikeyvalue 451d248's key2path and
// key2volume give for these keys on these five volumes, 3 replicas (printed by its
// own code): an import that finds files elsewhere finds nothing.
func TestGolden(t *testing.T) {
	tests := []struct {
		key, path string
		sv10      []string
		sv1       []string
	}{
		{"/hello", "3e/d1/L2hlbGxv", []string{"127.0.0.1:3003/sv07", "127.0.0.1:3005/sv03", "127.0.0.1:3004/sv07"}, []string{"127.0.0.1:3003", "127.0.0.1:3005", "127.0.0.1:3004"}},
		{"/a/b/c", "77/e3/L2EvYi9j", []string{"127.0.0.1:3003/sv04", "127.0.0.1:3005/sv04", "127.0.0.1:3004/sv07"}, []string{"127.0.0.1:3003", "127.0.0.1:3005", "127.0.0.1:3004"}},
		{"/?>>", "6b/c4/Lz8+Pg==", []string{"127.0.0.1:3001/sv04", "127.0.0.1:3005/sv02", "127.0.0.1:3002/sv01"}, []string{"127.0.0.1:3001", "127.0.0.1:3005", "127.0.0.1:3002"}},
		{"/ünï", "45/7f/L8O8bsOv", []string{"127.0.0.1:3002/sv05", "127.0.0.1:3004/sv09", "127.0.0.1:3001/sv01"}, []string{"127.0.0.1:3002", "127.0.0.1:3004", "127.0.0.1:3001"}},
		{"/camera/2024-01-01/frame-000001.jpg", "50/91/L2NhbWVyYS8yMDI0LTAxLTAxL2ZyYW1lLTAwMDAwMS5qcGc=", []string{"127.0.0.1:3001/sv00", "127.0.0.1:3003/sv00", "127.0.0.1:3004/sv02"}, []string{"127.0.0.1:3001", "127.0.0.1:3003", "127.0.0.1:3004"}},
		// Base64 with '/': nested directories, and a run of them that nginx merges.
		{"/???", "27/6f/Lz8/Pw==", []string{"127.0.0.1:3005/sv02", "127.0.0.1:3004/sv02", "127.0.0.1:3001/sv03"}, []string{"127.0.0.1:3005", "127.0.0.1:3004", "127.0.0.1:3001"}},
		{"/\xff\xfe\xfd", "99/74/L//+/Q==", []string{"127.0.0.1:3004/sv02", "127.0.0.1:3002/sv06", "127.0.0.1:3001/sv06"}, []string{"127.0.0.1:3004", "127.0.0.1:3002", "127.0.0.1:3001"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := Path(tt.key); got != tt.path {
				t.Errorf("Path = %q, want %q", got, tt.path)
			}
			if !strings.Contains(tt.path, "//") {
				if key, subdir, err := ParsePath(VolumePath(tt.key, "sv03")); key != tt.key || subdir != "sv03" || err != nil {
					t.Errorf("ParsePath(VolumePath) = %q, %q, %v", key, subdir, err)
				}
			}
			if got := Choose(tt.key, vols, 3, 10); !slices.Equal(got, tt.sv10) {
				t.Errorf("Choose with 10 subvolumes = %q, want %q", got, tt.sv10)
			}
			if got := Choose(tt.key, vols, 3, 1); !slices.Equal(got, tt.sv1) {
				t.Errorf("Choose with 1 subvolume = %q, want %q", got, tt.sv1)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		path, key, subdir string
		err               error
	}{
		{"3e/d1/L2hlbGxv", "/hello", "", nil},
		{"sv07/3e/d1/L2hlbGxv", "/hello", "sv07", nil},
		{"sv0A/27/6f/Lz8/Pw==", "/???", "sv0A", nil},
		{"27/6f/Lz8/Pw==", "/???", "", nil},
		{"99/74/L/+/Q==", "", "", ErrNotPath},  // merged slashes: not readable back
		{"3e/d2/L2hlbGxv", "", "", ErrNotPath}, // wrong hash directory
		{"sv0a/3e/d1/L2hlbGxv", "", "", ErrNotPath},
		{"3e/d1/not base64", "", "", ErrNotPath},
		{"3e/L2hlbGxv", "", "", ErrNotPath},
		{".nginx/x", "", "", ErrNotPath},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			key, subdir, err := ParsePath(tt.path)
			if key != tt.key || subdir != tt.subdir || !errors.Is(err, tt.err) {
				t.Fatalf("ParsePath = %q, %q, %v; want %q, %q, %v", key, subdir, err, tt.key, tt.subdir, tt.err)
			}
		})
	}
	if got := DiskPath("/\xff\xfe\xfd"); got != "99/74/L/+/Q==" {
		t.Errorf("DiskPath = %q", got)
	}
	if Storable("/??") || !Storable("/???") {
		t.Error("Storable: a name ending in / cannot be stored, others can")
	}
}

func TestParseRecord(t *testing.T) {
	tests := []struct {
		in   string
		want Record
		err  error
	}{
		{"127.0.0.1:3001/sv03,127.0.0.1:3002/sv0A", Record{Volumes: []string{"127.0.0.1:3001/sv03", "127.0.0.1:3002/sv0A"}}, nil},
		{"HASH5d41402abc4b2a76b9719d911017c592127.0.0.1:3001", Record{Volumes: []string{"127.0.0.1:3001"}, MD5: "5d41402abc4b2a76b9719d911017c592"}, nil},
		{"DELETEDHASH5d41402abc4b2a76b9719d911017c592a:1/sv00,b:2/sv01", Record{Volumes: []string{"a:1/sv00", "b:2/sv01"}, Deleted: true, MD5: "5d41402abc4b2a76b9719d911017c592"}, nil},
		{"DELETEDa:1", Record{Volumes: []string{"a:1"}, Deleted: true}, nil},
		{"", Record{}, ErrBadRecord},
		{"HASH5d41", Record{}, ErrBadRecord},
		{"HASHzz41402abc4b2a76b9719d911017c592a:1", Record{}, ErrBadRecord},
		{"a:1,", Record{}, ErrBadRecord},
		{"a:1/svXY", Record{}, ErrBadRecord},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.in))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || !errors.Is(err, tt.err) {
				t.Fatalf("ParseRecord = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
