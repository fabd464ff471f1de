// Package index is where davkv keeps every key's Record: the Index interface that the
// master and the commands write through, with conditional writes (a record's revision),
// pending entries for unfinished work, entries beside the keys (S3 buckets, uploads and
// parts) and statistics kept as records are written; the versioned encodings of what
// it stores; and its two backends, LevelDB (embedded, one master) and etcd (several
// masters), which run the same tests (forEachIndex).
package index
