package main

// Which index backend a -db names, and opening, finding and removing the index there.

import (
	"fmt"
	"regexp"
	"strings"

	"davkv/internal/index"
	"davkv/internal/index/etcd"
	"davkv/internal/index/leveldb"
	"davkv/internal/index/postgres"
)

// backend is what opens, finds and removes the indexes of one kind of -db.
type backend struct {
	open   func(db string, sync bool) (index.Index, error)
	exists func(db string) (bool, error)
	remove func(db string) error
}

// backends are the kinds of index a -db may name: etcd://HOST:PORT,.../PREFIX a
// prefix of an etcd cluster, postgres://USER@HOST:PORT/DB?schema=NAME a schema of a
// PostgreSQL database (both of which several masters may share), and anything else
// a LevelDB directory. sync makes every LevelDB write reach the disk before it
// returns, so that it survives a power loss, not only a crash of the process; etcd
// and PostgreSQL make every write durable themselves.
var (
	etcdBackend = backend{
		open:   func(db string, _ bool) (index.Index, error) { return asIndex(etcd.Open(db)) },
		exists: etcd.Exists,
		remove: etcd.Remove,
	}
	postgresBackend = backend{
		open:   func(db string, _ bool) (index.Index, error) { return asIndex(postgres.Open(db)) },
		exists: postgres.Exists,
		remove: postgres.Remove,
	}
	levelDBBackend = backend{
		open:   func(db string, sync bool) (index.Index, error) { return asIndex(leveldb.Open(db, sync)) },
		exists: leveldb.Exists,
		remove: leveldb.Remove,
	}
)

// asIndex returns a backend's index as an Index, nil (not a nil pointer in one) if
// it failed.
func asIndex[T index.Index](ix T, err error) (index.Index, error) {
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// urlScheme matches a -db that starts with a URL scheme (RFC 3986): such a -db names
// a server, never a directory.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// backendOf returns the backend of db, or an error if db has a URL scheme no backend
// knows (it would otherwise be taken as a directory, "postgres:" or "mysql:", made in
// the working directory).
func backendOf(db string) (backend, error) {
	switch {
	case strings.HasPrefix(db, etcd.Scheme):
		return etcdBackend, nil
	case postgres.Is(db):
		return postgresBackend, nil
	case urlScheme.MatchString(db):
		return backend{}, fmt.Errorf("-db %q: unknown kind of index %q (there are etcd://, postgres:// and a LevelDB directory)", db, urlScheme.FindString(db))
	}
	return levelDBBackend, nil
}

// openIndex opens, or creates, the index that db names (see backends).
func openIndex(db string, sync bool) (index.Index, error) {
	b, err := backendOf(db)
	if err != nil {
		return nil, err
	}
	return b.open(db, sync)
}

// indexExists reports whether db holds an index already, so that rebuild does not
// overwrite one by mistake.
func indexExists(db string) (bool, error) {
	b, err := backendOf(db)
	if err != nil {
		return false, err
	}
	return b.exists(db)
}

// removeIndex deletes the index that db names, for rebuild -force.
func removeIndex(db string) error {
	b, err := backendOf(db)
	if err != nil {
		return err
	}
	return b.remove(db)
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
