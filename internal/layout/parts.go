package layout

// Where the parts of S3 multipart uploads live on volumes, beside the keys.

import (
	"fmt"
	"strconv"
	"strings"
)

// PartDir is the directory of every volume that holds upload parts, beside the
// subvolumes (sv00...): rebuild skips it, verify checks it against the parts.
const PartDir = "mp"

// PartPath is where a part's file lives on a volume: mp/<upload id>/<part number>.<token>.
func PartPath(id string, n int, token string) string {
	return fmt.Sprintf("%s/%s/%05d.%s", PartDir, id, n, token)
}

// ParsePartPath is the inverse of PartPath; ok is false for any other path.
func ParsePartPath(path string) (id string, n int, token string, ok bool) {
	parts := strings.Split(path, "/")
	if len(parts) != 3 || parts[0] != PartDir || !ValidUploadID(parts[1]) {
		return "", 0, "", false
	}
	num, token, found := strings.Cut(parts[2], ".")
	n, err := strconv.Atoi(num)
	if !found || err != nil || len(num) != 5 || n < 1 || n > MaxParts || token == "" {
		return "", 0, "", false
	}
	return parts[1], n, token, true
}

// MaxParts is the most parts an upload may have, as in S3.
const MaxParts = 10000

// ValidUploadID reports whether id is an upload ID as the master makes them: 32 hex
// digits.
func ValidUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
