// Package lifecycle is what an S3 bucket's lifecycle configuration says, independent of
// the store: its XML read and checked into the index's rules (config.go), and which
// keys and uploads a rule expires, and when (expiry.go). The master applies it in the
// background (lifecycle.go at the root).
package lifecycle
