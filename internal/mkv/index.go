package mkv

// Reading minikeyvalue's LevelDB index, read-only, while no minikeyvalue master has it.

import (
	"errors"
	"fmt"
	"os"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// ErrInUse says another process (a minikeyvalue master) holds the index's lock.
var ErrInUse = errors.New("the index is in use: stop the minikeyvalue master first")

// Index is minikeyvalue's index, open read-only.
type Index struct {
	db *leveldb.DB
}

// OpenIndex opens minikeyvalue's index at dir read-only. LevelDB's lock file makes it
// fail with ErrInUse while a minikeyvalue master runs on it: its writes would go on
// unseen.
func OpenIndex(dir string) (*Index, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("minikeyvalue index: %w", err)
	}
	db, err := leveldb.OpenFile(dir, &opt.Options{ReadOnly: true, ErrorIfMissing: true})
	if err != nil {
		if isLocked(dir) {
			return nil, fmt.Errorf("minikeyvalue index %s: %w (%w)", dir, ErrInUse, err)
		}
		return nil, fmt.Errorf("minikeyvalue index %s: %w", dir, err)
	}
	return &Index{db: db}, nil
}

// Each calls fn with every key and its record, in key order, from after start on,
// until fn returns false or an error, which Each returns. A record that does not
// decode is given with its error, for fn to report.
func (ix *Index) Each(start string, fn func(key string, rec Record, err error) (bool, error)) error {
	it := ix.db.NewIterator(nil, nil)
	defer it.Release()
	ok := it.First()
	if start != "" {
		ok = it.Seek([]byte(start))
		if ok && string(it.Key()) == start {
			ok = it.Next()
		}
	}
	for ; ok; ok = it.Next() {
		rec, err := ParseRecord(it.Value())
		more, err := fn(string(it.Key()), rec, err)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// Close releases the index.
func (ix *Index) Close() error { return ix.db.Close() }
