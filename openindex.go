package main

// Which index backend a -db names, and opening, finding and removing the index there.

import (
	"strings"

	"davkv/internal/index"
	"davkv/internal/index/etcd"
	"davkv/internal/index/leveldb"
)

// openIndex opens, or creates, the index that db names: etcd://HOST:PORT,.../PREFIX is a
// prefix of an etcd cluster, which several masters may share, and anything else a
// LevelDB directory. sync makes every LevelDB write reach the disk before it returns,
// so that it survives a power loss, not only a crash of the process; etcd makes every
// write durable itself.
func openIndex(db string, sync bool) (index.Index, error) {
	if strings.HasPrefix(db, etcd.Scheme) {
		ix, err := etcd.Open(db)
		if err != nil {
			return nil, err
		}
		return ix, nil
	}
	ix, err := leveldb.Open(db, sync)
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// indexExists reports whether db holds an index already, so that rebuild does not
// overwrite one by mistake.
func indexExists(db string) (bool, error) {
	if strings.HasPrefix(db, etcd.Scheme) {
		return etcd.Exists(db)
	}
	return leveldb.Exists(db)
}

// removeIndex deletes the index that db names, for rebuild -force.
func removeIndex(db string) error {
	if strings.HasPrefix(db, etcd.Scheme) {
		return etcd.Remove(db)
	}
	return leveldb.Remove(db)
}

// clearIndex readies db to be written anew, for rebuild and migrate: with force, an
// index there is removed. It reports whether one is there still.
func clearIndex(db string, force bool) (bool, error) {
	exists, err := indexExists(db)
	if err != nil || !exists || !force {
		return exists, err
	}
	return false, removeIndex(db)
}
