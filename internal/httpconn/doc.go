// Package httpconn is davkv's own HTTP/1.1 client exchange: connections kept alive
// and pooled per server (Pool), each carrying one request after another on the calling
// goroutine, with answers read by net/http or, for small ones, parsed by hand
// (ReadStatus), and bodies of known length spliced from the socket (see conn.go's
// invariants). It exists for speed: net/http's Transport costs the master three times
// the CPU per volume request. It knows nothing of davkv: davkv's VolumeClient, in
// volume.go, is built on it.
package httpconn
