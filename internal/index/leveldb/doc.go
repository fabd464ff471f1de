// Package leveldb is the embedded index backend: one LevelDB directory, open in one
// process at a time, its conditional writes serialised by stripes of key locks.
package leveldb
