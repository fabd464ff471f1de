package postgres

// The entries beside the keys (buckets, uploads, parts), with conditional writes as
// records have.

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"davkv/internal/index"
)

// GetEntry returns name's value in space.
func (ix *Index) GetEntry(space, name string) ([]byte, int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var value []byte
	var rev int64
	err := ix.do(ctx, "get "+space+" entry", nil, func(ctx context.Context) error {
		return ix.pool.QueryRow(ctx, `SELECT value, rev FROM entries WHERE space = $1 AND name = $2`, space, []byte(name)).Scan(&value, &rev)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("index get %s entry %q: %w", space, name, index.ErrNotFound)
	}
	return value, rev, err
}

// PutEntry stores value as name in space if the entry is still at rev. A write whose
// connection failed once sent is not settled: an entry's bytes need not differ from
// the last write's.
func (ix *Index) PutEntry(space, name string, value []byte, rev int64) (int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var next int64
	err := ix.do(ctx, "put "+space+" entry", cannotSettle, func(ctx context.Context) error {
		if rev == 0 {
			return ix.pool.QueryRow(ctx, `INSERT INTO entries (space, name, rev, value) VALUES ($1, $2, nextval('revs'), $3)
				ON CONFLICT (space, name) DO NOTHING RETURNING rev`, space, []byte(name), value).Scan(&next)
		}
		return ix.pool.QueryRow(ctx, `UPDATE entries SET rev = nextval('revs'), value = $4
			WHERE space = $1 AND name = $2 AND rev = $3 RETURNING rev`, space, []byte(name), rev, value).Scan(&next)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("index put %s entry %q: %w", space, name, index.ErrConflict)
	}
	return next, err
}

// DeleteEntry removes name from space if the entry is still at rev.
func (ix *Index) DeleteEntry(space, name string, rev int64) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	op := "delete " + space + " entry"
	var n int64
	if rev == 0 {
		err := ix.do(ctx, op, nil, func(ctx context.Context) error {
			return ix.pool.QueryRow(ctx, `SELECT count(*) FROM entries WHERE space = $1 AND name = $2`, space, []byte(name)).Scan(&n)
		})
		if err == nil && n > 0 {
			err = fmt.Errorf("index %s %q: %w", op, name, index.ErrConflict)
		}
		return err
	}
	// settle: the entry is gone if the delete was applied, still at rev if not.
	settle := func(ctx context.Context) (bool, error) {
		var cur int64
		switch err := ix.pool.QueryRow(ctx, `SELECT rev FROM entries WHERE space = $1 AND name = $2`, space, []byte(name)).Scan(&cur); {
		case errors.Is(err, pgx.ErrNoRows):
			return true, nil
		case err != nil:
			return false, err
		case cur == rev:
			return false, nil
		}
		return false, errUnknown
	}
	n = 1 // settled as applied
	err := ix.do(ctx, op, settle, func(ctx context.Context) error {
		return ix.pool.QueryRow(ctx, `WITH d AS (DELETE FROM entries WHERE space = $1 AND name = $2 AND rev = $3 RETURNING 1)
			SELECT count(*) FROM d`, space, []byte(name), rev).Scan(&n)
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("index %s %q: %w", op, name, index.ErrConflict)
	}
	return err
}

// Entries calls fn for every entry of space from start on.
func (ix *Index) Entries(space, start string, fn func(name string, value []byte, rev int64) (bool, error)) error {
	type entry struct {
		name  string
		value []byte
		rev   int64
	}
	query := `SELECT name, value, rev FROM entries WHERE name >= $1 AND space = $2 ORDER BY name LIMIT $3`
	scan := func(rows pgx.Rows) (entry, string, error) {
		var e entry
		var name []byte
		err := rows.Scan(&name, &e.value, &e.rev)
		e.name = string(name)
		return e, e.name, err
	}
	return pages(ix, space+" entries", query, []any{nil, space, page}, start, scan, func(e entry) (bool, error) {
		return fn(e.name, e.value, e.rev)
	})
}
