// Package layout is where davkv keeps a key on its volumes: which volumes hold its
// replicas (Placement: weighted rendezvous hashing spread over zones and hosts), which
// files there (KeyPath, GenPath, MarkerPath, TombstonePath, and PartPath for the parts
// of S3 multipart uploads), and back from a file to what it is (ParseVolumePath,
// ParsePartPath). It is pure computation, shared by the master and every command that
// reads or writes the volumes, so that all of them agree; it changes only with a golden
// test that says every cluster's files have moved.
package layout
