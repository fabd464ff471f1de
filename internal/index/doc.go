// Package index is where davkv keeps every key's Record: the Index interface that the
// master and the commands write through, with conditional writes (a record's revision),
// pending entries for unfinished work, entries beside the keys (S3 buckets, uploads and
// parts) and statistics kept as records are written; and the versioned encodings of
// what it stores. The backends are packages of their own below it (leveldb, etcd, postgres), and
// indextest is the suite they all pass.
package index
