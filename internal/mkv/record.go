package mkv

// minikeyvalue's index records: [DELETED][HASH<32 hex>]vol1,vol2,... (its toRecord).

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBadRecord says an index value is not a record as minikeyvalue writes them.
var ErrBadRecord = errors.New("not a minikeyvalue record")

// Record is a key's record in minikeyvalue's LevelDB index.
type Record struct {
	// Volumes hold the key's file, as minikeyvalue names them: host:port, or
	// host:port/svXX with more than one subvolume (see SplitVolume).
	Volumes []string
	// Deleted says the key was UNLINKed, or a PUT or DELETE of it never finished:
	// minikeyvalue marks a key DELETED before it writes or deletes the files.
	Deleted bool
	// MD5 is the value's hex MD5, or empty if minikeyvalue did not keep it (-md5sum
	// false, or a record its rebuild made).
	MD5 string
}

// ParseRecord decodes a record as minikeyvalue's toRecord reads it, and checks it.
func ParseRecord(b []byte) (Record, error) {
	s := string(b)
	var rec Record
	s, rec.Deleted = strings.CutPrefix(s, "DELETED")
	if rest, ok := strings.CutPrefix(s, "HASH"); ok {
		if len(rest) < 32 {
			return Record{}, fmt.Errorf("%w: %q: short HASH", ErrBadRecord, b)
		}
		if _, err := hex.DecodeString(rest[:32]); err != nil {
			return Record{}, fmt.Errorf("%w: %q: HASH is not hex", ErrBadRecord, b)
		}
		rec.MD5, s = strings.ToLower(rest[:32]), rest[32:]
	}
	for v := range strings.SplitSeq(s, ",") {
		if _, _, err := SplitVolume(v); err != nil {
			return Record{}, fmt.Errorf("%w: %q: %w", ErrBadRecord, b, err)
		}
		rec.Volumes = append(rec.Volumes, v)
	}
	return rec, nil
}
