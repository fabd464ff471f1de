// Package s3proto is what davkv's S3 API is independent of the store: SigV4 signatures
// in the header or presigned (sigv4.go), aws-chunked bodies and their chunk and trailer
// signatures (chunked.go), the checksums clients send with a body (checksum.go), the
// error codes and the XML error body (errors.go), conditional requests and ranges
// (conditions.go), and bucket names (bucketname.go). The S3 handlers, at the root,
// use it with the index and the volumes.
package s3proto
