package signurl

// Signed redirects: links to a volume that nginx's secure_link module checks, for
// volumes that refuse reads without the secret or a signature (volume.sh with
// DAVKV_SIGNREADS).

import (
	"crypto/md5"
	"encoding/base64"
	"strconv"
)

// Sign appends to u, the address of path on a volume, the signature that volume.sh's
// secure_link checks: e, when the link expires (Unix seconds), and st, the MD5 of e, the
// path's URI and the secret, in unpadded base64url. Without the secret no one can make
// one, and changing the path or e breaks it. Paths are base64url names and hex
// directories (see layout.KeyPath), so the URI nginx hashes is the path as it is.
func Sign(u, path, secret string, expires int64) string {
	e := strconv.FormatInt(expires, 10)
	sum := md5.Sum([]byte(e + "/" + path + " " + secret))
	return u + "?st=" + base64.RawURLEncoding.EncodeToString(sum[:]) + "&e=" + e
}
