package index

// Access keys: the keys davkv keys adds, each an entry of KeySpace, with its versioned
// encoding.

import (
	"encoding/binary"
	"fmt"
)

// KeySpace is the index's entry space for access keys, named by their IDs.
const KeySpace = "accesskey"

// AccessKey is what the index keeps of an access key: its secret, which SigV4 needs as
// it is (a signature is an HMAC keyed with it, so no hash of it would do), and what it
// may do.
type AccessKey struct {
	// Secret is the key's secret.
	Secret string
	// Policy is the key's policy document, in canonical JSON (package policy).
	Policy string
	// Created is when the key was added, in Unix nanoseconds.
	Created int64
	// Note is what the operator said the key is for.
	Note string
}

// accessKeyVersion is the first byte of an encoded AccessKey; a change to the encoding
// gets a new version, and UnmarshalBinary keeps reading the old ones.
const accessKeyVersion = 1

// MarshalBinary encodes k: the version byte, Secret and Policy as strings, Created as a
// varint and Note as a string.
func (k AccessKey) MarshalBinary() ([]byte, error) {
	out := appendString([]byte{accessKeyVersion}, k.Secret)
	out = appendString(out, k.Policy)
	out = binary.AppendVarint(out, k.Created)
	return appendString(out, k.Note), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (k *AccessKey) UnmarshalBinary(data []byte) error {
	if len(data) < 1 || data[0] != accessKeyVersion {
		return fmt.Errorf("%w: access key of unknown version", ErrBadRecord)
	}
	d := Decoder{b: data[1:]}
	v := AccessKey{Secret: d.string1(), Policy: d.string1(), Created: d.Varint(), Note: d.string1()}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: access key truncated or with trailing bytes", ErrBadRecord)
	}
	*k = v
	return nil
}
