package main

// The index's record of a key, and its versioned binary encoding.

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// RecordState is where a key is in its life.
type RecordState uint8

const (
	// StateWriting: a PUT is storing the replicas, or died doing so. Not visible to
	// clients; a record left in this state by a crash is a trace for cleanup.
	StateWriting RecordState = 1
	// StateLive: every replica is stored; GET redirects to one.
	StateLive RecordState = 2
	// StateUnlinked: soft-deleted by UNLINK; hidden from GET and ?list, files kept.
	StateUnlinked RecordState = 3
	// StateDeleting: a DELETE is removing the replicas, or failed to; hidden from
	// clients, and a repeated DELETE finishes the job.
	StateDeleting RecordState = 4
)

// String names the state, for logs and reports.
func (s RecordState) String() string {
	switch s {
	case StateWriting:
		return "writing"
	case StateLive:
		return "live"
	case StateUnlinked:
		return "unlinked"
	case StateDeleting:
		return "deleting"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Record is what the index stores for a key.
type Record struct {
	State RecordState
	// Volumes hold the replicas, in placement preference order: where they really
	// are, which after a change of volumes may differ from where placement wants them.
	Volumes []string
	// Sub is the subvolume the replicas are under (see KeyPath).
	Sub int
	// Size is the value's length in bytes.
	Size int64
	// MD5 is the hex MD5 of the value, or empty if it was not computed.
	MD5 string
	// Time is when the record was last written, in Unix nanoseconds, so that cleanup
	// can tell a write in flight from one a crash abandoned.
	Time int64
	// Leftovers are volumes that still hold an old replica (and marker) of the key,
	// which rebalance moved away from: kept for a grace period so that redirects
	// already sent still land, then deleted. Recording them means that no crash
	// can leave them behind untracked.
	Leftovers []string
	// Rev is the index's revision of the record when it was read, which a
	// conditional write compares (see Index); zero for a key that had no record. It
	// is not encoded: each backend keeps its own.
	Rev int64
}

// recordVersion is the first byte of every encoded Record. A change to the encoding
// gets a new version, and UnmarshalBinary keeps reading the old ones. Version 1 had no
// Leftovers.
const recordVersion = 2

// ErrBadRecord says an index value could not be decoded.
var ErrBadRecord = errors.New("bad index record")

// MarshalBinary encodes r compactly, since an index may hold billions of records and
// every GET decodes one: the version byte, the state byte, then as varints Sub, Size and
// Time, the MD5 as a length byte (0 or 16) and raw bytes, then Volumes and Leftovers,
// each as a count followed by every name's length and bytes.
func (r Record) MarshalBinary() ([]byte, error) {
	var sum []byte
	if r.MD5 != "" {
		var err error
		if sum, err = hex.DecodeString(r.MD5); err != nil || len(sum) != md5.Size {
			return nil, fmt.Errorf("encode record: md5 %q is not 32 hex digits", r.MD5)
		}
	}
	b := make([]byte, 0, 40+len(r.Volumes)*24)
	b = append(b, recordVersion, byte(r.State))
	b = binary.AppendUvarint(b, uint64(r.Sub))
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.Time)
	b = append(b, byte(len(sum)))
	b = append(b, sum...)
	b = appendStrings(b, r.Volumes)
	b = appendStrings(b, r.Leftovers)
	return b, nil
}

func appendStrings(b []byte, list []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, v := range list {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] < 1 || b[0] > recordVersion {
		return fmt.Errorf("%w: unknown version", ErrBadRecord)
	}
	d := recordDecoder{b: b[2:]}
	rec := Record{State: RecordState(b[1])}
	rec.Sub = int(d.uvarint())
	rec.Size = d.varint()
	rec.Time = d.varint()
	if sum := d.bytes(uint64(d.byte1())); len(sum) > 0 {
		rec.MD5 = hex.EncodeToString(sum)
	}
	rec.Volumes = d.strings()
	if b[0] >= 2 {
		rec.Leftovers = d.strings()
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: truncated or trailing bytes", ErrBadRecord)
	}
	*r = rec
	return nil
}

// recordTime reads only the Time of an encoded record: LevelIndex compares it, as the
// record's revision, before every write.
func recordTime(b []byte) (int64, error) {
	if len(b) < 2 || b[0] < 1 || b[0] > recordVersion {
		return 0, fmt.Errorf("%w: unknown version", ErrBadRecord)
	}
	d := recordDecoder{b: b[2:]}
	d.uvarint()
	d.varint()
	t := d.varint()
	if d.err {
		return 0, fmt.Errorf("%w: truncated", ErrBadRecord)
	}
	return t, nil
}

// recordDecoder reads the parts of an encoded Record, remembering the first error.
type recordDecoder struct {
	b   []byte
	err bool
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) strings() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	if n == 0 {
		return nil
	}
	list := make([]string, 0, n)
	for i := uint64(0); i < n && !d.err; i++ {
		list = append(list, string(d.bytes(d.uvarint())))
	}
	return list
}

// varint undoes binary.AppendVarint's zig-zag encoding.
func (d *recordDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *recordDecoder) byte1() byte {
	if b := d.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (d *recordDecoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// md5Hex is the hex form of an MD5 sum, as the index stores it and Content-Md5 carries it.
func md5Hex(sum []byte) string { return hex.EncodeToString(sum) }
