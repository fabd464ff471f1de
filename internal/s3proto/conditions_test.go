package s3proto

import (
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		header string
		off, n int64
		ranged bool
		bad    bool
	}{
		{"", 0, 10, false, false},
		{"bytes=0-3", 0, 4, true, false},
		{"bytes=4-", 4, 6, true, false},
		{"bytes=-3", 7, 3, true, false},
		{"bytes=-30", 0, 10, true, false},
		{"bytes=2-100", 2, 8, true, false},
		{"bytes=9-9", 9, 1, true, false},
		{"bytes=10-", 0, 0, false, true},
		{"bytes=-0", 0, 0, false, true},
		{"bytes=5-2", 0, 10, false, false},
		{"bytes=0-1,3-4", 0, 10, false, false},
		{"items=0-1", 0, 10, false, false},
		{"bytes=x-1", 0, 10, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			off, n, ranged, err := ParseRange(tt.header, 10)
			if (err != nil) != tt.bad || off != tt.off || n != tt.n || ranged != tt.ranged {
				t.Fatalf("parseRange = %d, %d, %v, %v; want %d, %d, %v, bad %v", off, n, ranged, err, tt.off, tt.n, tt.ranged, tt.bad)
			}
		})
	}
}
