package postgres

// The index's tables, created and upgraded by davkv itself, one version at a time.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// schemaSteps are the statements that bring a schema from each version to the next:
// schemaSteps[0] creates version 1 in an empty schema, schemaSteps[n] upgrades version
// n to n+1. A step, once released, is never changed (TestSchemaGolden holds the tables
// it makes): a change of the tables is a new step.
//
// Version 1:
//   - records: a key's record (its versioned encoding, see index.Record) under the
//     key's bytes, so that the primary key sorts as LevelDB and etcd do; rev is the
//     record's revision, from the revs sequence, so that it grows with every write
//     and a key deleted and written again never repeats one; state and size are the
//     record's head, which the statistics follow; pending marks the records with
//     work unfinished, which their partial index lists.
//   - entries: the entries beside the keys (buckets, uploads, parts), by space and
//     name, with revisions from the same sequence.
//   - stats: the statistics in shards (see Stats), each row a state's keys and bytes,
//     so that writers rarely wait for one another's row.
//   - owners: the processes that have the index open, each with the time, by the
//     database's clock, until which it is alive.
var schemaSteps = [][]string{
	{
		`CREATE SEQUENCE revs`,
		`CREATE SEQUENCE owner_ids`,
		`CREATE TABLE records (
			key bytea PRIMARY KEY,
			rev bigint NOT NULL,
			state smallint NOT NULL,
			size bigint NOT NULL,
			pending boolean NOT NULL,
			value bytea NOT NULL
		)`,
		`CREATE INDEX records_pending ON records (key) WHERE pending`,
		`CREATE TABLE entries (
			space text NOT NULL,
			name bytea NOT NULL,
			rev bigint NOT NULL,
			value bytea NOT NULL,
			PRIMARY KEY (space, name)
		)`,
		`CREATE TABLE stats (
			shard smallint NOT NULL,
			state smallint NOT NULL,
			keys bigint NOT NULL,
			bytes bigint NOT NULL,
			PRIMARY KEY (shard, state)
		)`,
		`CREATE TABLE owners (
			id bigint PRIMARY KEY,
			who text NOT NULL,
			expires timestamptz NOT NULL
		)`,
	},
}

// SchemaVersion is the version of the tables this davkv writes.
var SchemaVersion = len(schemaSteps)

// ErrNewerSchema says the schema was written by a newer davkv, whose tables this one
// does not know.
var ErrNewerSchema = errors.New("the index's schema is newer than this davkv")

// migrate creates the schema if it is not there, and brings its tables up to
// SchemaVersion, in one transaction under a lock of the schema's, so that masters
// started at once create it once.
func migrate(ctx context.Context, conn *pgx.Conn, schema string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	h := fnv.New64a()
	h.Write([]byte("davkv schema " + schema))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		// The one statement with a name in it, quoted by pgx: a schema's name cannot be
		// a parameter.
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS meta (name text PRIMARY KEY, value text NOT NULL)`); err != nil {
		return err
	}
	version := 0
	var v string
	switch err := tx.QueryRow(ctx, `SELECT value FROM meta WHERE name = 'schema_version'`).Scan(&v); {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	default:
		if version, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("schema %s: version %q is not a number", schema, v)
		}
	}
	if version > SchemaVersion {
		return fmt.Errorf("schema %s is at version %d, this davkv knows %d: %w", schema, version, SchemaVersion, ErrNewerSchema)
	}
	if version == SchemaVersion {
		return tx.Commit(ctx)
	}
	for _, step := range schemaSteps[version:] {
		for _, stmt := range step {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("schema %s, version %d: %w", schema, version+1, err)
			}
		}
		version++
	}
	if _, err := tx.Exec(ctx, `INSERT INTO meta (name, value) VALUES ('schema_version', $1)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.Itoa(version)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Exists reports whether the schema db names holds an index with any record or entry.
func Exists(db string) (bool, error) {
	var exists bool
	err := withTables(db, "exists", func(ctx context.Context, ix *Index) error {
		return ix.do(ctx, "exists", nil, func(ctx context.Context) error {
			return ix.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM records) OR EXISTS (SELECT 1 FROM entries)`).Scan(&exists)
		})
	})
	return exists, err
}

// Remove empties the index in the schema db names: its records, entries and
// statistics; its tables stay, and so do the owners.
func Remove(db string) error {
	return withTables(db, "remove", func(ctx context.Context, ix *Index) error {
		return ix.exec(ctx, "remove", nil, `TRUNCATE records, entries, stats`)
	})
}

// withTables connects to the database db names, with no owner, and calls fn if the
// schema has davkv's tables.
func withTables(db, op string, fn func(context.Context, *Index) error) error {
	ix, _, err := dial(db)
	if err != nil {
		return err
	}
	defer ix.pool.Close()
	ctx, cancel := ix.ctx()
	defer cancel()
	var exists bool
	err = ix.do(ctx, op, nil, func(ctx context.Context) error {
		return ix.pool.QueryRow(ctx, `SELECT to_regclass('meta') IS NOT NULL`).Scan(&exists)
	})
	if err != nil || !exists {
		return err
	}
	return fn(ctx, ix)
}
