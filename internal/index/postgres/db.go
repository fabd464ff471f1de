package postgres

// What a -db postgres://... says: the connection, for pgx, and davkv's own options.

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Schemes start a -db that names a PostgreSQL database, as libpq spells them.
var Schemes = []string{"postgres://", "postgresql://"}

// Is reports whether db names a PostgreSQL database.
func Is(db string) bool {
	for _, s := range Schemes {
		if strings.HasPrefix(db, s) {
			return true
		}
	}
	return false
}

// defaultSchema holds the index unless -db says (?schema=); defaultLease is an owner's
// lease unless it says (?lease=): how long after a master dies its unfinished work
// waits for another to adopt it, and how long a master may lose touch with the
// database before its owner ID is given up; defaultMaxConns bounds the connections of
// one process unless it says (?pool_max_conns=, pgx's own option).
const (
	defaultSchema   = "davkv"
	defaultLease    = 10 * time.Second
	defaultMaxConns = 16
)

// schemaName is what a schema's name may be: a PostgreSQL identifier that needs no
// quoting, so that operators type it in psql as it is.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// pgDB is what a PostgreSQL -db says.
type pgDB struct {
	Pool   *pgxpool.Config
	Schema string
	Lease  time.Duration
}

// parseDB reads a -db postgres://USER@HOST:PORT[,HOST:PORT...]/DB[?OPTIONS]: the
// options schema=NAME and lease=TTL are davkv's, every other one is libpq's (as pgx
// reads them: sslmode, target_session_attrs, pool_max_conns, ...).
func parseDB(db string) (pgDB, error) {
	if !Is(db) {
		return pgDB{}, fmt.Errorf("-db %q is not postgres://USER@HOST:PORT/DATABASE", db)
	}
	base, query, _ := strings.Cut(db, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return pgDB{}, fmt.Errorf("-db %q: %w", redact(db), err)
	}
	p := pgDB{Schema: defaultSchema, Lease: defaultLease}
	if s, ok := q["schema"]; ok {
		p.Schema = s[0]
		if !schemaName.MatchString(p.Schema) {
			return pgDB{}, fmt.Errorf("-db %q: schema=%q is not a lowercase PostgreSQL name (a-z, 0-9, _)", redact(db), p.Schema)
		}
	}
	if l := q.Get("lease"); l != "" {
		if p.Lease, err = time.ParseDuration(l); err != nil || p.Lease < 2*time.Second {
			return pgDB{}, fmt.Errorf("-db %q: lease=%q is not a duration of 2s or more", redact(db), l)
		}
	}
	q.Del("schema")
	q.Del("lease")
	if _, ok := q["pool_max_conns"]; !ok {
		q.Set("pool_max_conns", fmt.Sprint(defaultMaxConns))
	}
	if p.Pool, err = pgxpool.ParseConfig(base + "?" + q.Encode()); err != nil {
		return pgDB{}, fmt.Errorf("-db %q: %w", redact(db), err)
	}
	// Every statement names the tables alone: the connection finds them in the
	// index's schema, so that no statement has a name spliced into it.
	p.Pool.ConnConfig.RuntimeParams["search_path"] = p.Schema
	if _, ok := p.Pool.ConnConfig.RuntimeParams["application_name"]; !ok {
		p.Pool.ConnConfig.RuntimeParams["application_name"] = "davkv"
	}
	return p, nil
}

// redact returns db without its password, for errors and logs.
func redact(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		// A host list (a:1,b:2) is no URL to net/url: cut the password by hand.
		scheme, rest, _ := strings.Cut(db, "://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if user, _, ok := strings.Cut(rest[:at], ":"); ok {
				return scheme + "://" + user + ":xxxxx" + rest[at:]
			}
		}
		return db
	}
	return u.Redacted()
}
