package index

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		{},
		{State: StateWriting, Volumes: []string{"a:1", "b:2", "c:3"}, Sub: 7, Time: 1},
		{State: StateLive, Volumes: []string{"a:1"}, Sub: 255, Size: 1 << 40, MD5: "5d41402abc4b2a76b9719d911017c592", Time: 1763779200000000000},
		{State: StateUnlinked, Volumes: []string{"x:9"}},
		{State: StateDeleting, Volumes: []string{}},
		{State: StateLive, Volumes: []string{"very-long-host-name.example:65535", "b:2", "c:3", "d:4", "e:5"}, Size: -1, Sub: 300, Time: -5},
		{State: StateUnlinked, Volumes: []string{"a:1", "b:2"}, Leftovers: []string{"c:3", "d:4"}},
		{State: StateLive, Volumes: []string{"a:1"}, Gen: 1 << 40, Stale: []StaleGen{{Gen: 7, Time: 99, Volumes: []string{"a:1", "b:2"}}, {Gen: 1<<40 + 1}},
			Meta: []MetaHeader{{"Content-Type", "text/plain; charset=utf-8"}, {"X-Amz-Meta-Ünï", ""}}, ETag: "0123-2", Modified: -7},
		{State: StateDeleting, Gen: 3, Stale: []StaleGen{{Gen: 3, Volumes: []string{"c:3"}}}, Tombstones: []StaleGen{{Gen: 1, Time: 5, Volumes: []string{"a:1"}}, {Gen: 3, Volumes: []string{"a:1", "b:2"}}}},
		{State: StateUnlinked, Volumes: []string{"a:1", "b:2"}, Unmarked: []string{"b:2"}},
		{State: StateLive, Volumes: []string{"a:1"}, Parts: []Part{{5 << 20, "AAAAAA=="}, {5 << 20, "AAAAAQ=="}, {1, ""}}, Tags: []Tag{{"project", "x"}, {"Ünï", ""}},
			Checksum: Checksum{"CRC32", "AAAAAA==-3", "COMPOSITE"}},
		{State: StateWriting, Writes: []Write{{Gen: 1 << 50, Owner: -3, Time: 7, Volumes: []string{"a:1", "b:2"}}, {Gen: 2}}},
	}
	for _, rec := range recs {
		t.Run(rec.State.String(), func(t *testing.T) {
			b, err := rec.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != recordVersion {
				t.Fatalf("version byte %d, want %d", b[0], recordVersion)
			}
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(rec) {
				t.Fatalf("round trip: %+v, want %+v", got, rec)
			}
		})
	}
}

// TestRecordGolden pins every version of the encoding: indexes written by any version
// must stay readable by every later one.
func TestRecordGolden(t *testing.T) {
	body := "\x02\x03\x0a\x54\x10" + "\x5d\x41\x40\x2a\xbc\x4b\x2a\x76\xb9\x71\x9d\x91\x10\x17\xc5\x92" + "\x02\x03a:1\x03b:2"
	v1 := "\x01" + body
	v2 := "\x02" + body + "\x01\x03c:3"
	v3 := "\x03" + body + "\x01\x03c:3" + "\x05" + "\x01\x04\x54\x01\x03a:1" + "\x01\x0cContent-Type\x02t/" + "\x04ab-2" + "\x50"
	want := Record{State: StateLive, Volumes: []string{"a:1", "b:2"}, Sub: 3, Size: 5, MD5: "5d41402abc4b2a76b9719d911017c592", Time: 42, Modified: 42}
	var rec Record
	if err := rec.UnmarshalBinary([]byte(v1)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Fatalf("v1 decoded %+v, %v; want %+v", rec, err, want)
	}
	want.Leftovers = []string{"c:3"}
	if err := rec.UnmarshalBinary([]byte(v2)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Fatalf("v2 decoded %+v, %v; want %+v", rec, err, want)
	}
	want3 := want
	want3.Gen, want3.Stale, want3.Meta, want3.ETag = 5, []StaleGen{{Gen: 4, Time: 42, Volumes: []string{"a:1"}}}, []MetaHeader{{"Content-Type", "t/"}}, "ab-2"
	want3.Modified = 40
	if err := rec.UnmarshalBinary([]byte(v3)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want3) {
		t.Fatalf("v3 decoded %+v, %v; want %+v", rec, err, want3)
	}
	v4 := "\x04" + v3[1:] + "\x01\x02\x06\x01\x03b:2" + "\x01\x03c:3"
	want4 := want3
	want4.Tombstones, want4.Unmarked = []StaleGen{{Gen: 2, Time: 3, Volumes: []string{"b:2"}}}, []string{"c:3"}
	if err := rec.UnmarshalBinary([]byte(v4)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want4) {
		t.Fatalf("v4 decoded %+v, %v; want %+v", rec, err, want4)
	}
	v5 := "\x05" + v4[1:] + "\x8e\x02" + "\x01"
	want5 := want4
	want5.Owner, want5.Busy = 135, true
	if err := rec.UnmarshalBinary([]byte(v5)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want5) {
		t.Fatalf("v5 decoded %+v, %v; want %+v", rec, err, want5)
	}
	v6 := "\x06" + v5[1:] + "\x02\x80\x80\x80\x05\x02c1\x02\x00" + "\x01\x01k\x02vv" + "\x01\x09\x0e\x54\x01\x03d:4" + "\x05CRC32\x04AA==\x0bFULL_OBJECT"
	want6 := want5
	want6.Parts, want6.Tags = []Part{{5 << 20, "c1"}, {1, ""}}, []Tag{{"k", "vv"}}
	want6.Checksum = Checksum{"CRC32", "AA==", "FULL_OBJECT"}
	want6.Writes = []Write{{Gen: 9, Owner: 7, Time: 42, Volumes: []string{"d:4"}}}
	if err := rec.UnmarshalBinary([]byte(v6)); err != nil || fmt.Sprint(rec) != fmt.Sprint(want6) {
		t.Fatalf("v6 decoded %+v, %v; want %+v", rec, err, want6)
	}
	for _, enc := range []string{v1, v2, v3, v4, v5, v6} {
		if h, err := ReadHead([]byte(enc)); err != nil || h != (Head{Time: 42, State: StateLive, Size: 5}) {
			t.Fatalf("readRecordHead(%q) = %+v, %v; want time 42, live, 5 bytes", enc, h, err)
		}
	}
	b, _ := want6.MarshalBinary()
	if string(b) != v6 {
		t.Fatalf("encoded %q, want %q", b, v6)
	}
	for _, bad := range []string{"", "\x07\x02", v6[:len(v6)-1], v6 + "x", "\x06" + v5[1:] + "\x09", "\x05\x02", "\x04\x02", v5[:len(v5)-1], v5 + "x", v5[:len(v5)-1] + "\x02", v4[:len(v4)-1], v4 + "x", v3[:len(v3)-1], v3 + "x", "\x03" + body + "\x00\x00\xff", "\x00\x02", "\x01", "\x01\x02", v1[:len(v1)-1], v1 + "x", v2[:len(v2)-1], v2 + "x", "\x01\x02\x00\x00\x00\x00\xff"} {
		if err := rec.UnmarshalBinary([]byte(bad)); !errors.Is(err, ErrBadRecord) {
			t.Errorf("UnmarshalBinary(%q) = %v, want ErrBadRecord", bad, err)
		}
	}
}

// TestRecordRevNotEncoded: Rev belongs to the index that read the record, not to the
// record, so no encoding carries it.
func TestRecordRevNotEncoded(t *testing.T) {
	b, err := (Record{State: StateLive, Rev: 42}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := (Record{State: StateLive}).MarshalBinary()
	var got Record
	if string(b) != string(want) || got.UnmarshalBinary(b) != nil || got.Rev != 0 {
		t.Fatalf("encoded %q (want %q), decoded Rev %d", b, want, got.Rev)
	}
}

// TestNewGen: a write's generation is past every one its record names and no less
// than the clock's, so that writes never share files and a later one sorts after.
func TestNewGen(t *testing.T) {
	now := time.Unix(0, 1_796_000_000_123_456_789)
	clock := uint64(now.UnixNano()) &^ (1<<genRandomBits - 1)
	tests := []struct {
		name string
		old  Record
		min  uint64
	}{
		{"new key", Record{}, clock},
		{"old S3 overwrite", Record{Gen: 3, Stale: []StaleGen{{Gen: 9}}}, clock},
		{"a generation from a clock ahead", Record{Gen: clock + 1<<40}, clock + 1<<40 + 1},
		{"a tombstone ahead", Record{Tombstones: []StaleGen{{Gen: clock + 1<<30}}}, clock + 1<<30 + 1},
		{"a write in flight ahead", Record{Writes: []Write{{Gen: clock + 1<<35}}}, clock + 1<<35 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[uint64]bool{}
			for range 100 {
				gen := NewGen(tt.old, now)
				if gen < tt.min || gen < NextGen(tt.old) || gen > max(tt.min, clock+1<<genRandomBits-1) {
					t.Fatalf("newGen = %#x, want from %#x to %#x", gen, tt.min, max(tt.min, clock+1<<genRandomBits-1))
				}
				seen[gen] = true
			}
			if tt.min == clock && len(seen) < 90 {
				t.Fatalf("100 writes in one instant got %d generations", len(seen))
			}
		})
	}
	if a, b := NewGen(Record{}, now), NewGen(Record{}, now.Add(1<<genRandomBits)); a >= b {
		t.Fatalf("a write %v later got generation %#x, not after %#x", time.Duration(1<<genRandomBits), b, a)
	}
}
