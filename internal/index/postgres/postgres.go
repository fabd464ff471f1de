package postgres

// The Index in PostgreSQL (-db postgres://USER@HOST:PORT/DB?schema=NAME), which several
// masters can share: every conditional write is one statement that compares the
// revision the writer read.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"davkv/internal/index"
)

// Index is the Index in the tables of a PostgreSQL schema (see schemaSteps). A
// record's revision is its row's rev, drawn from a sequence by the statement that
// writes it, which compares the revision the writer read (UPDATE ... WHERE rev = $n):
// of two masters that read one revision, only one can write. Each write changes the
// statistics in the same statement, in a shard drawn at random.
//
// An owner is a row of the owners table that the index keeps alive while it is open
// (see heartbeat), judged by the database's clock: when the process dies or loses
// touch with the database for longer than the lease, its row expires, and every
// other master sees the owner gone. A process whose row expired takes a new one.
type Index struct {
	pool   *pgxpool.Pool
	schema string
	// timeout bounds each request, with its tries (see do): long enough to ride out
	// a primary's failover to a standby already promoted, short enough that a client
	// waits no longer for a 503.
	timeout time.Duration
	lease   time.Duration
	// owner is this process's row in owners; stop ends its heartbeat, which done says.
	owner atomic.Int64
	stop  context.CancelFunc
	done  chan struct{}
}

// statsShards is how many rows each state's statistics are spread over.
const statsShards = 16

// openTimeout bounds Open's tries to reach the database and ready the schema.
const openTimeout = 5 * time.Second

// page is how many rows a scan reads at a time.
const page = 1000

// Open connects to the database db names, creates or upgrades the index's schema and
// registers this process as an owner.
func Open(db string) (*Index, error) {
	ix, p, err := dial(db)
	if err != nil {
		return nil, err
	}
	// A database out of reach at start is waited for a while: one failing over, say.
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	err = ix.do(ctx, "create the schema", nil, func(ctx context.Context) error {
		conn, err := ix.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		return migrate(ctx, conn.Conn(), ix.schema)
	})
	if err != nil {
		ix.pool.Close()
		return nil, fmt.Errorf("open index %s: %w", redact(db), err)
	}
	ix.lease = p.Lease
	if err := ix.register(ctx); err != nil {
		ix.pool.Close()
		return nil, fmt.Errorf("open index %s: %w", redact(db), err)
	}
	hctx, stop := context.WithCancel(context.Background())
	ix.stop, ix.done = stop, make(chan struct{})
	go ix.heartbeat(hctx)
	return ix, nil
}

// dial makes the pool of connections to the database db names, with no owner yet;
// pgx connects as the first request needs it.
func dial(db string) (*Index, pgDB, error) {
	p, err := parseDB(db)
	if err != nil {
		return nil, p, err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), p.Pool)
	if err != nil {
		return nil, p, fmt.Errorf("open index %s: %w", redact(db), err)
	}
	return &Index{pool: pool, schema: p.Schema, timeout: 10 * time.Second}, p, nil
}

// Close ends the owner's row, so that another master adopts what this one left at
// once, and closes the connections.
func (ix *Index) Close() error {
	ix.stop()
	<-ix.done
	ctx, cancel := ix.ctx()
	defer cancel()
	err := ix.exec(ctx, "close", nil, `DELETE FROM owners WHERE id = $1`, ix.Owner())
	ix.pool.Close()
	return err
}

// Get returns key's record.
func (ix *Index) Get(key string) (index.Record, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var rec index.Record
	rev, value, err := ix.read(ctx, key)
	switch {
	case err != nil:
		return rec, err
	case rev == 0:
		return rec, fmt.Errorf("index get %q: %w", key, index.ErrNotFound)
	}
	if err := rec.UnmarshalBinary(value); err != nil {
		return rec, fmt.Errorf("index get %q: %w", key, err)
	}
	rec.Rev = rev
	return rec, nil
}

// The statements of Put and Delete. Each changes the statistics of the states the
// record leaves and enters in the same statement as the record, in shard $n, and
// only if the record changed: of a write that lost, nothing is applied. A shard's
// rows are locked in state order, so that two writes never wait for each other's.
//
// updateRecord reads the record's old head (old) in the statement's snapshot. That is
// the head it replaces: if another write changed the row meanwhile, PostgreSQL reads
// the row anew once that write has committed and checks rev = $2 again, which then
// fails (every write changes rev), so the update applies to the row as old read it or
// not at all.
const (
	createRecord = `WITH w AS (
		INSERT INTO records (key, rev, state, size, pending, value)
		VALUES ($1, nextval('revs'), $2, $3, $4, $5)
		ON CONFLICT (key) DO NOTHING
		RETURNING rev
	), s AS (
		INSERT INTO stats AS t (shard, state, keys, bytes)
		SELECT $6, $2, 1, $3 FROM w
		ON CONFLICT (shard, state) DO UPDATE SET keys = t.keys + excluded.keys, bytes = t.bytes + excluded.bytes
	)
	SELECT rev FROM w`
	updateRecord = `WITH w AS (
		UPDATE records r SET rev = nextval('revs'), state = $3, size = $4, pending = $5, value = $6
		FROM (SELECT state, size FROM records WHERE key = $1) AS old
		WHERE r.key = $1 AND r.rev = $2
		RETURNING r.rev, old.state AS old_state, old.size AS old_size
	), s AS (
		INSERT INTO stats AS t (shard, state, keys, bytes)
		SELECT $7, d.state, sum(d.keys), sum(d.bytes)
		FROM w, LATERAL (VALUES (w.old_state, -1, -w.old_size), ($3::smallint, 1, $4::bigint)) AS d (state, keys, bytes)
		GROUP BY d.state HAVING sum(d.keys) <> 0 OR sum(d.bytes) <> 0
		ORDER BY d.state
		ON CONFLICT (shard, state) DO UPDATE SET keys = t.keys + excluded.keys, bytes = t.bytes + excluded.bytes
	)
	SELECT rev FROM w`
	deleteRecord = `WITH d AS (
		DELETE FROM records WHERE key = $1 AND rev = $2 RETURNING state, size
	), s AS (
		INSERT INTO stats AS t (shard, state, keys, bytes)
		SELECT $3, state, -1, -size FROM d
		ON CONFLICT (shard, state) DO UPDATE SET keys = t.keys + excluded.keys, bytes = t.bytes + excluded.bytes
	)
	SELECT count(*) FROM d`
)

// Put stores *rec for key if its record is still at rec.Rev.
func (ix *Index) Put(key string, rec *index.Record) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	stored, b, err := index.Stamped(*rec, ix.Owner())
	if err != nil {
		return err
	}
	shard := rand.IntN(statsShards)
	var rev int64
	// settle: the record holds these bytes (their time is this write's) if the write
	// was applied, and is still at rec.Rev if it was not.
	settle := func(ctx context.Context) (bool, error) {
		cur, value, err := ix.stored(ctx, key)
		switch {
		case err != nil:
			return false, err
		case cur != 0 && bytes.Equal(value, b):
			rev = cur
			return true, nil
		case cur == rec.Rev:
			return false, nil
		}
		return false, errUnknown
	}
	err = ix.do(ctx, "put", settle, func(ctx context.Context) error {
		if rec.Rev == 0 {
			return ix.pool.QueryRow(ctx, createRecord, []byte(key), int16(rec.State), rec.Size, rec.Pending(), b, shard).Scan(&rev)
		}
		return ix.pool.QueryRow(ctx, updateRecord, []byte(key), rec.Rev, int16(rec.State), rec.Size, rec.Pending(), b, shard).Scan(&rev)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("index put %q: %w", key, index.ErrConflict)
	case err != nil:
		return err
	}
	rec.Time, rec.Rev, rec.Owner = stored.Time, rev, stored.Owner
	return nil
}

// Delete removes key if its record is still at rev.
func (ix *Index) Delete(key string, rev int64) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	if rev == 0 {
		switch cur, _, err := ix.read(ctx, key); {
		case err != nil:
			return err
		case cur != 0:
			return fmt.Errorf("index delete %q: %w", key, index.ErrConflict)
		}
		return nil
	}
	// settle: the record is gone if the delete was applied (or another's was, which
	// is the same for the caller), and still at rev if it was not.
	settle := func(ctx context.Context) (bool, error) {
		cur, _, err := ix.stored(ctx, key)
		switch {
		case err != nil:
			return false, err
		case cur == 0:
			return true, nil
		case cur == rev:
			return false, nil
		}
		return false, errUnknown
	}
	n := int64(1) // settled as applied
	err := ix.do(ctx, "delete", settle, func(ctx context.Context) error {
		return ix.pool.QueryRow(ctx, deleteRecord, []byte(key), rev, rand.IntN(statsShards)).Scan(&n)
	})
	switch {
	case err != nil:
		return err
	case n == 0:
		return fmt.Errorf("index delete %q: %w", key, index.ErrConflict)
	}
	return nil
}

// read returns key's revision and stored bytes, zero and nil if it has no record.
func (ix *Index) read(ctx context.Context, key string) (rev int64, value []byte, err error) {
	err = ix.do(ctx, "get", nil, func(ctx context.Context) error {
		rev, value, err = ix.stored(ctx, key)
		return err
	})
	return rev, value, err
}

// stored is one try of read.
func (ix *Index) stored(ctx context.Context, key string) (int64, []byte, error) {
	var rev int64
	var value []byte
	err := ix.pool.QueryRow(ctx, `SELECT rev, value FROM records WHERE key = $1`, []byte(key)).Scan(&rev, &value)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	return rev, value, err
}

// scanned is a record as a scan reads it.
type scanned struct {
	key string
	rec index.Record
}

// Scan calls fn for every key with prefix, from start on, a page at a time.
func (ix *Index) Scan(prefix, start string, fn func(key string, rec index.Record) (bool, error)) error {
	prefix = index.ScanPrefix(prefix)
	from, end := max(start, prefix), index.PrefixEnd(prefix)
	query, args := `SELECT key, rev, value FROM records WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3`, []any{nil, []byte(end), page}
	if end == "" {
		query, args = `SELECT key, rev, value FROM records WHERE key >= $1 ORDER BY key LIMIT $2`, []any{nil, page}
	}
	scan := func(rows pgx.Rows) (scanned, string, error) {
		var key, value []byte
		var rev int64
		var s scanned
		if err := rows.Scan(&key, &rev, &value); err != nil {
			return s, "", err
		}
		s.key = string(key)
		if err := s.rec.UnmarshalBinary(value); err != nil {
			return s, "", fmt.Errorf("index scan at %q: %w", key, err)
		}
		s.rec.Rev = rev
		return s, s.key, nil
	}
	return pages(ix, "scan", query, args, from, scan, func(s scanned) (bool, error) { return fn(s.key, s.rec) })
}

// Pending calls fn for every key with a pending entry.
func (ix *Index) Pending(fn func(key string) (bool, error)) error {
	query := `SELECT key FROM records WHERE pending AND key >= $1 ORDER BY key LIMIT $2`
	scan := func(rows pgx.Rows) (string, string, error) {
		var key []byte
		err := rows.Scan(&key)
		return string(key), string(key), err
	}
	return pages(ix, "pending", query, []any{nil, page}, "", scan, fn)
}

// pages runs query, whose first argument (args[0]) is where it starts and whose last
// is page, a page at a time from from, calling fn for each row that scan reads until
// it returns false or an error; scan also returns the row's key, after which the
// next page starts. A page is read whole before fn sees any of it, so that fn may use
// the index meanwhile (the caller of a scan writes what it scans) and a page tried
// again after an error is seen once.
func pages[T any](ix *Index, op, query string, args []any, from string, scan func(pgx.Rows) (T, string, error), fn func(T) (bool, error)) error {
	args = append([]any(nil), args...)
	for {
		var got []T
		var last string
		ctx, cancel := ix.ctx()
		err := ix.do(ctx, op, nil, func(ctx context.Context) error {
			got = got[:0]
			args[0] = []byte(from)
			rows, err := ix.pool.Query(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				item, key, err := scan(rows)
				if err != nil {
					return err
				}
				got, last = append(got, item), key
			}
			return rows.Err()
		})
		cancel()
		if err != nil {
			return err
		}
		for _, item := range got {
			if more, err := fn(item); err != nil || !more {
				return err
			}
		}
		if len(got) < page {
			return nil
		}
		from = last + "\x00"
	}
}
