// Package auth is who may use a master: the access keys (the administrators' from
// -s3keys, and the ones davkv keys adds to the index, each with its policy), the
// credentials a native request carries (HTTP basic, or a bearer token), the buckets'
// policies, and the limit on failed attempts per client address.
//
// Keys and bucket policies live in the index, so that every master sharing it knows
// the same ones; each master keeps what it read for a second (Store.TTL), so that a
// key added or revoked through one master holds on every other within that time.
package auth
