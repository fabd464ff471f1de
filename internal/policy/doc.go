// Package policy is davkv's subset of S3's policy language: the documents that say which
// access keys may do what to which buckets and objects, as a key's own policy (set with
// davkv keys) or a bucket's (PutBucketPolicy), and how a request is judged against them.
//
// A document has statements, each an Effect (Allow or Deny), Actions (s3:GetObject,
// s3:Get*, *) and Resources (arn:aws:s3:::bucket, arn:aws:s3:::bucket/prefix*), and in a
// bucket's policy a Principal ("*", or access key IDs). An explicit Deny wins over any
// Allow, and what no statement allows is denied. Conditions, NotAction, NotResource and
// NotPrincipal are refused when a document is parsed, never ignored: a policy that
// meant less than it says would give more than its author wanted.
package policy
