package index

// The index's record of a key, and its versioned binary encoding.

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"davkv/internal/layout"
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
	// Gen is the generation of the value's files (see GenPath): each write's own (see
	// NewGen), or 0 for a key written once by a davkv from before generations were
	// per write, and then one more than any before it for each S3 overwrite.
	Gen uint64
	// Stale are other generations of the key whose files may still be on volumes: the
	// values that overwrites replaced, kept for a grace period so that redirects
	// already sent still land, and the files of an overwrite in flight, or that a
	// crash or a failure left, until they are deleted. Recording them first means that
	// no overwrite leaves files behind untracked.
	Stale []StaleGen
	// Meta are the headers an S3 client stored with the value (Content-Type,
	// Cache-Control, Content-Disposition, x-amz-meta-*), in canonical form, sent back on
	// every S3 GET and HEAD.
	Meta []MetaHeader
	// Modified is when the value was written (or, after a rebuild, its file), in Unix
	// nanoseconds: S3's Last-Modified. Time changes with every write of the record
	// (a rebalance, a sweep); Modified only with the value.
	Modified int64
	// ETag is the value's S3 entity tag, unquoted, when it is not its MD5 (a multipart
	// upload's); empty otherwise.
	ETag string
	// Tombstones are where a DELETE that could not reach every volume left tombstones
	// (see TombstonePath): each entry's Gen is that of its files, Volumes where they
	// are. They go once no file of a generation up to theirs is left (see
	// Record.Stale), so that rebuild never brings a deleted key back.
	Tombstones []StaleGen
	// Unmarked are volumes of an unlinked key's that an UNLINK could not reach: they
	// still lack its unlink marker, which the sweeper writes when they answer.
	Unmarked []string
	// Owner is the master whose work a pending record is (see Index.Owner): the one
	// that wrote it last, whose sweeper finishes it. The index stamps it on every
	// pending record it writes, and clears it on others. When the owner is gone,
	// another master adopts the record (see Master.adopt).
	Owner int64
	// Busy says that Owner is writing the key right now (a PUT storing its replicas):
	// the key is locked for every other master until the owner writes the record
	// again, or is gone. It is the per-key lock that masters sharing an index share.
	Busy bool
	// Parts are the parts of a value that an S3 multipart upload made, in order, so
	// that a read can ask for one part (S3's partNumber); nil for a value written whole.
	Parts []Part
	// Checksum is the value's S3 checksum, as its client sent it (x-amz-checksum-*), or
	// as a multipart upload made it from its parts'; zero if it has none.
	Checksum Checksum
	// Tags are the S3 object tags of the value, in the order the client gave them.
	Tags []Tag
	// Writes are the writes of the key in flight that S3 clients make (see Write):
	// each streams to files of its own generation without holding the key, and is
	// decided when it commits. A key whose only writes are in flight has a writing
	// record that is not Busy, with no Volumes.
	Writes []Write
	// Rev is the index's revision of the record when it was read, which a
	// conditional write compares (see Index); zero for a key that had no record. It
	// is not encoded: each backend keeps its own.
	Rev int64
}

// StaleGen is a generation of a key that is not its value: the volumes that may hold
// its files, and since when (Unix nanoseconds) it has been stale.
type StaleGen struct {
	Gen     uint64
	Time    int64
	Volumes []string
}

// Write is a write of a key in flight: the generation whose files it streams, the
// volumes it may write them to, the master (see Index.Owner) that does it, and when it
// began (Unix nanoseconds). Recording it before any file is written means that no
// write leaves files behind untracked; a write whose master is gone is dropped, its
// files kept as a stale generation for the sweeper.
type Write struct {
	Gen     uint64
	Owner   int64
	Time    int64
	Volumes []string
}

// Part is one part of a value that an S3 multipart upload made: its size, and its
// checksum, base64, of the algorithm of the value's (or empty).
type Part struct {
	Size     int64
	Checksum string
}

// Checksum is an S3 checksum: its algorithm (CRC32, CRC32C, CRC64NVME, SHA1, SHA256),
// its value, base64 (with -N for a composite one of N parts), and its type
// (FULL_OBJECT or COMPOSITE).
type Checksum struct {
	Algorithm, Value, Type string
}

// Tag is one S3 object tag.
type Tag struct {
	Key, Value string
}

// MetaHeader is one header stored with a value.
type MetaHeader struct {
	Name, Value string
}

// Path returns where rec's generation of key's value is stored on a volume.
func (r Record) Path(key string) string { return layout.GenPath(key, r.Sub, r.Gen) }

// MarkerPath returns where rec's generation of key's unlink marker is stored.
func (r Record) MarkerPath(key string) string { return layout.MarkerPath(key, r.Sub, r.Gen) }

// Pending reports whether rec has work left that a crash can interrupt: a write or
// delete unfinished, or files to delete (leftovers, stale generations). The index
// lists such keys (see Index.Pending), for the next master to finish.
func (r Record) Pending() bool {
	return r.State == StateWriting || r.State == StateDeleting || len(r.Leftovers) > 0 || len(r.Stale) > 0 ||
		len(r.Tombstones) > 0 || len(r.Unmarked) > 0 || len(r.Writes) > 0
}

// Owns reports whether rec accounts for file f on volume: a replica or leftover of its
// generation (a marker only if the key is not live), a file of a stale generation, or
// a tombstone.
func (r Record) Owns(f layout.VolumeFile, volume string) bool {
	if f.Tombstone {
		return slices.ContainsFunc(r.Tombstones, func(t StaleGen) bool { return t.Gen == f.Gen && slices.Contains(t.Volumes, volume) })
	}
	if f.Gen == r.Gen && (slices.Contains(r.Volumes, volume) || slices.Contains(r.Leftovers, volume)) {
		return !f.Marker || r.State != StateLive
	}
	for _, sg := range r.Stale {
		if sg.Gen == f.Gen && slices.Contains(sg.Volumes, volume) {
			return true
		}
	}
	return slices.ContainsFunc(r.Writes, func(w Write) bool { return w.Gen == f.Gen && slices.Contains(w.Volumes, volume) })
}

// WriteAt returns the index in r.Writes of the write of generation gen, or -1.
func (r Record) WriteAt(gen uint64) int {
	return slices.IndexFunc(r.Writes, func(w Write) bool { return w.Gen == gen })
}

// NextGen is the first generation past every one of rec's whose files, or tombstones,
// may exist, or that a write in flight writes: the least a write over rec may take
// (see NewGen).
func NextGen(rec Record) uint64 {
	gen := rec.Gen
	for _, sg := range append(slices.Clone(rec.Stale), rec.Tombstones...) {
		gen = max(gen, sg.Gen)
	}
	for _, w := range rec.Writes {
		gen = max(gen, w.Gen)
	}
	return gen + 1
}

// genRandomBits are the low bits of a new generation (see NewGen) that are random
// rather than the clock's: two writes in the same 65 µs on two masters still differ.
const genRandomBits = 16

// NewGen is the generation a write of a key whose record is old (the zero Record if it
// has none) writes its files under: past every generation old names (see NextGen), and
// no less than the clock's nanoseconds, with genRandomBits random. Every write of a
// key so gets files of its own, also after the record that named an older write is
// gone (a write rolled back, a key deleted): a master paused past its lease, whose
// write another master rolled back, can only ever finish files that no record names,
// never replace those of a write acknowledged since. And as long as the masters'
// clocks agree to within the lease, a later write has a larger generation, which is
// what rebuild trusts (see chooseGen).
func NewGen(old Record, now time.Time) uint64 {
	const low = 1<<genRandomBits - 1
	clock := uint64(now.UnixNano())&^low | rand.Uint64()&low
	return max(NextGen(old), clock)
}

// AddStale adds vols to the stale entry of generation gen, making it if needed.
func AddStale(stale []StaleGen, gen uint64, vols ...string) []StaleGen {
	for i := range stale {
		if stale[i].Gen == gen {
			for _, v := range vols {
				if !slices.Contains(stale[i].Volumes, v) {
					stale[i].Volumes = append(stale[i].Volumes, v)
				}
			}
			return stale
		}
	}
	return append(stale, StaleGen{Gen: gen, Volumes: slices.Clone(vols)})
}

// recordVersion is the first byte of every encoded Record. A change to the encoding
// gets a new version, and UnmarshalBinary keeps reading the old ones. Version 1 had no
// Leftovers, version 2 no Gen, Stale, Meta, ETag or Modified, version 3 no Tombstones
// or Unmarked, version 4 no Owner or Busy, version 5 no Parts, Tags or Writes.
const recordVersion = 6

// ErrBadRecord says an index value could not be decoded.
var ErrBadRecord = errors.New("bad index record")

// MarshalBinary encodes r compactly, since an index may hold billions of records and
// every GET decodes one: the version byte, the state byte, then as varints Sub, Size and
// Time, the MD5 as a length byte (0 or 16) and raw bytes, then Volumes and Leftovers,
// each as a count followed by every name's length and bytes; then Gen as a varint, Stale
// as a count and each one's Gen, Time and Volumes, Meta as a count of names and values
// in turn, ETag as one string, Modified as a varint, then Tombstones as Stale is,
// Unmarked as Volumes is, Owner as a varint and Busy as a byte, then Parts as a count
// and each one's Size as a varint and Checksum as a string, Tags as Meta is, Writes as a
// count and each one's Gen, Owner, Time and Volumes, and Checksum as three strings.
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
	b = binary.AppendUvarint(b, r.Gen)
	b = appendGens(b, r.Stale)
	b = appendMeta(b, r.Meta)
	b = appendString(b, r.ETag)
	b = binary.AppendVarint(b, r.Modified)
	b = appendGens(b, r.Tombstones)
	b = appendStrings(b, r.Unmarked)
	b = binary.AppendVarint(b, r.Owner)
	busy := byte(0)
	if r.Busy {
		busy = 1
	}
	b = append(b, busy)
	b = binary.AppendUvarint(b, uint64(len(r.Parts)))
	for _, p := range r.Parts {
		b = binary.AppendVarint(b, p.Size)
		b = appendString(b, p.Checksum)
	}
	b = appendTags(b, r.Tags)
	b = binary.AppendUvarint(b, uint64(len(r.Writes)))
	for _, w := range r.Writes {
		b = binary.AppendUvarint(b, w.Gen)
		b = binary.AppendVarint(b, w.Owner)
		b = binary.AppendVarint(b, w.Time)
		b = appendStrings(b, w.Volumes)
	}
	return appendChecksum(b, r.Checksum), nil
}

// appendGens encodes generations as a count, then each one's Gen, Time and Volumes.
func appendGens(b []byte, gens []StaleGen) []byte {
	b = binary.AppendUvarint(b, uint64(len(gens)))
	for _, sg := range gens {
		b = binary.AppendUvarint(b, sg.Gen)
		b = binary.AppendVarint(b, sg.Time)
		b = appendStrings(b, sg.Volumes)
	}
	return b
}

func appendStrings(b []byte, list []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, v := range list {
		b = appendString(b, v)
	}
	return b
}

// appendMeta encodes headers as a count, then each one's name and value.
func appendMeta(b []byte, meta []MetaHeader) []byte {
	b = binary.AppendUvarint(b, uint64(len(meta)))
	for _, h := range meta {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return b
}

// appendChecksum encodes c as its algorithm, value and type, each a string.
func appendChecksum(b []byte, c Checksum) []byte {
	return appendString(appendString(appendString(b, c.Algorithm), c.Value), c.Type)
}

// appendTags encodes tags as a count, then each one's key and value.
func appendTags(b []byte, tags []Tag) []byte {
	b = binary.AppendUvarint(b, uint64(len(tags)))
	for _, t := range tags {
		b = appendString(b, t.Key)
		b = appendString(b, t.Value)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] < 1 || b[0] > recordVersion {
		return fmt.Errorf("%w: unknown version", ErrBadRecord)
	}
	d := Decoder{b: b[2:]}
	rec := Record{State: RecordState(b[1])}
	rec.Sub = int(d.uvarint())
	rec.Size = d.Varint()
	rec.Time = d.Varint()
	if sum := d.bytes(uint64(d.byte1())); len(sum) > 0 {
		rec.MD5 = hex.EncodeToString(sum)
	}
	rec.Volumes = d.strings()
	if b[0] >= 2 {
		rec.Leftovers = d.strings()
	}
	if b[0] >= 3 {
		rec.Gen = d.uvarint()
		rec.Stale = d.gens()
		rec.Meta = d.meta()
		rec.ETag = d.string1()
		rec.Modified = d.Varint()
	} else {
		// Before version 3 a record was written only with its value.
		rec.Modified = rec.Time
	}
	if b[0] >= 4 {
		rec.Tombstones = d.gens()
		rec.Unmarked = d.strings()
	}
	if b[0] >= 5 {
		rec.Owner = d.Varint()
		switch d.byte1() {
		case 0:
		case 1:
			rec.Busy = true
		default:
			d.err = true
		}
	}
	if b[0] >= 6 {
		if n := d.count(); n > 0 {
			rec.Parts = make([]Part, 0, n)
			for range n {
				rec.Parts = append(rec.Parts, Part{Size: d.Varint(), Checksum: d.string1()})
			}
		}
		rec.Tags = d.tags()
		if n := d.count(); n > 0 {
			rec.Writes = make([]Write, 0, n)
			for range n {
				rec.Writes = append(rec.Writes, Write{Gen: d.uvarint(), Owner: d.Varint(), Time: d.Varint(), Volumes: d.strings()})
			}
		}
		rec.Checksum = d.checksum()
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: truncated or trailing bytes", ErrBadRecord)
	}
	*r = rec
	return nil
}

// recordHead is the start of an encoded record: what LevelIndex reads of the record
// it replaces before every write, its revision (Time) to compare and its state and size
// to keep its statistics.
type Head struct {
	Time  int64
	State RecordState
	Size  int64
}

// readRecordHead reads only the head of an encoded record.
func ReadHead(b []byte) (Head, error) {
	if len(b) < 2 || b[0] < 1 || b[0] > recordVersion {
		return Head{}, fmt.Errorf("%w: unknown version", ErrBadRecord)
	}
	d := Decoder{b: b[2:]}
	d.uvarint()
	h := Head{State: RecordState(b[1]), Size: d.Varint(), Time: d.Varint()}
	if d.err {
		return Head{}, fmt.Errorf("%w: truncated", ErrBadRecord)
	}
	return h, nil
}

// recordDecoder reads the parts of an encoded Record, remembering the first error.
type Decoder struct {
	b   []byte
	err bool
}

func (d *Decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads the length of a list, which cannot be more than the bytes left, so that
// a corrupt record never makes a huge allocation.
func (d *Decoder) count() uint64 {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		return 0
	}
	return n
}

func (d *Decoder) strings() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	list := make([]string, 0, n)
	for i := uint64(0); i < n && !d.err; i++ {
		list = append(list, d.string1())
	}
	return list
}

// gens reads what appendGens wrote.
func (d *Decoder) gens() []StaleGen {
	n := d.count()
	if n == 0 {
		return nil
	}
	gens := make([]StaleGen, 0, n)
	for range n {
		gens = append(gens, StaleGen{Gen: d.uvarint(), Time: d.Varint(), Volumes: d.strings()})
	}
	return gens
}

// meta reads what appendMeta wrote.
func (d *Decoder) meta() []MetaHeader {
	n := d.count()
	if n == 0 {
		return nil
	}
	meta := make([]MetaHeader, 0, n)
	for range n {
		meta = append(meta, MetaHeader{Name: d.string1(), Value: d.string1()})
	}
	return meta
}

// checksum reads what appendChecksum wrote.
func (d *Decoder) checksum() Checksum {
	return Checksum{Algorithm: d.string1(), Value: d.string1(), Type: d.string1()}
}

// tags reads what appendTags wrote.
func (d *Decoder) tags() []Tag {
	var tags []Tag
	for _, h := range d.meta() {
		tags = append(tags, Tag{Key: h.Name, Value: h.Value})
	}
	return tags
}

func (d *Decoder) string1() string { return string(d.bytes(d.uvarint())) }

// varint undoes binary.AppendVarint's zig-zag encoding.
func (d *Decoder) Varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *Decoder) byte1() byte {
	if b := d.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (d *Decoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
