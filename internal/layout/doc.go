// Package layout is where davkv keeps a key on its volumes: which volumes hold its
// replicas (Placement: weighted rendezvous hashing spread over zones and hosts) and which
// files there (KeyPath, GenPath, MarkerPath, TombstonePath), and back from a file to its
// key (ParseVolumePath). It is pure computation, shared by the master and every command
// that reads or writes the volumes, so that all of them agree; it changes only with a
// golden test that says every cluster's files have moved.
package layout
