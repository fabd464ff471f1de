package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"davkv/internal/index"
	"davkv/internal/index/indextest"
	"davkv/internal/testenv"
)

// TestParseDB: -db postgres://USER@HOST:PORT[,HOST:PORT]/DB[?schema=NAME&lease=TTL&libpq's].
func TestParseDB(t *testing.T) {
	tests := []struct {
		db     string
		schema string
		lease  time.Duration
		hosts  string
		ok     bool
	}{
		{"postgres://u@127.0.0.1:5432/db", "davkv", defaultLease, "127.0.0.1:5432", true},
		{"postgresql://u@127.0.0.1:5432/db?schema=team_a&lease=3s", "team_a", 3 * time.Second, "127.0.0.1:5432", true},
		{"postgres://u@a:1,b:2/db?target_session_attrs=read-write", "davkv", defaultLease, "a:1 b:2", true},
		{"postgres://u@a:1/db?schema=Team", "", 0, "", false},
		{"postgres://u@a:1/db?schema=a-b", "", 0, "", false},
		{"postgres://u@a:1/db?schema=", "", 0, "", false},
		{"postgres://u@a:1/db?lease=1s", "", 0, "", false},
		{"postgres://u@a:1/db?lease=x", "", 0, "", false},
		{"postgres://u@a:1/db?sslmode=bogus", "", 0, "", false},
		{"etcd://a:1/x", "", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.db, func(t *testing.T) {
			p, err := parseDB(tt.db)
			if (err == nil) != tt.ok {
				t.Fatalf("parseDB: %v", err)
			}
			if !tt.ok {
				return
			}
			hosts := []string{fmt.Sprintf("%s:%d", p.Pool.ConnConfig.Host, p.Pool.ConnConfig.Port)}
			for _, f := range p.Pool.ConnConfig.Fallbacks { // a host once per TLS mode tried
				if h := fmt.Sprintf("%s:%d", f.Host, f.Port); h != hosts[len(hosts)-1] {
					hosts = append(hosts, h)
				}
			}
			if p.Schema != tt.schema || p.Lease != tt.lease || strings.Join(hosts, " ") != tt.hosts {
				t.Fatalf("parseDB = schema %q lease %v hosts %q", p.Schema, p.Lease, hosts)
			}
			if got := p.Pool.ConnConfig.RuntimeParams["search_path"]; got != tt.schema {
				t.Fatalf("search_path %q, want the schema", got)
			}
			if _, ok := p.Pool.ConnConfig.RuntimeParams["schema"]; ok {
				t.Fatal("schema= passed on to the server")
			}
		})
	}
}

// TestRedact: a password never shows in an error.
func TestRedact(t *testing.T) {
	for db, want := range map[string]string{
		"postgres://u:secret@h:1/db":       "postgres://u:xxxxx@h:1/db",
		"postgres://u:secret@a:1,b:2/db":   "postgres://u:xxxxx@a:1,b:2/db",
		"postgres://u@h:1/db?schema=x":     "postgres://u@h:1/db?schema=x",
		"postgres://u:p@ss@a:1,b:2/db?x=y": "postgres://u:xxxxx@a:1,b:2/db?x=y",
	} {
		if got := redact(db); got != want {
			t.Errorf("redact(%q) = %q, want %q", db, got, want)
		}
	}
	if _, err := parseDB("postgres://u:secret@h:1/db?lease=x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows the password: %v", err)
	}
}

// server is the PostgreSQL server the package's tests share, each in schemas of its own.
var server = struct {
	sync.Mutex
	pg      *testenv.Postgres
	schemas int
}{}

// testDB returns the -db of a new schema on the shared server, started at the first
// call.
func testDB(t *testing.T) string {
	t.Helper()
	server.Lock()
	defer server.Unlock()
	if server.pg == nil {
		pg, err := testenv.LaunchPostgres()
		if err != nil {
			t.Fatal(err)
		}
		server.pg = pg
	}
	server.schemas++
	return server.pg.DB(fmt.Sprintf("test%d", server.schemas))
}

// open opens an index on db, closed at cleanup.
func open(t *testing.T, db string) *Index {
	t.Helper()
	ix, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

// TestMain stops the shared server, and fails the tests if a server they started
// outlives them.
func TestMain(m *testing.M) {
	code := m.Run()
	if server.pg != nil {
		server.pg.Stop()
	}
	os.Exit(testenv.CheckLeft(code))
}

// TestConformance runs the suite every backend passes on PostgreSQL: each test in a
// schema of its own.
func TestConformance(t *testing.T) {
	indextest.Run(t, func(t *testing.T) index.Index { return open(t, testDB(t)) })
}

// TestStatsTwoMasters: the statistics stay exact when two masters (two pools) write
// at once and contend for the shards.
func TestStatsTwoMasters(t *testing.T) {
	db := testDB(t)
	indextest.StatsTwoWriters(t, open(t, db), open(t, db), 200)
}

// TestSchemasApart: two indexes in two schemas of one database never see each other's
// keys, and an empty schema holds no index.
func TestSchemasApart(t *testing.T) {
	dbA, dbB := testDB(t), testDB(t)
	if exists, err := Exists(dbA); err != nil || exists {
		t.Fatalf("Exists before Open: %v, %v", exists, err)
	}
	a, b := open(t, dbA), open(t, dbB)
	if err := a.Put("/k", &index.Record{State: index.StateLive}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get("/k"); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("the other schema's key: %v", err)
	}
	for db, want := range map[string]bool{dbA: true, dbB: false} {
		if exists, err := Exists(db); err != nil || exists != want {
			t.Fatalf("Exists(%s) = %v, %v; want %v", db, exists, err, want)
		}
	}
	if err := Remove(dbA); err != nil {
		t.Fatal(err)
	}
	if exists, err := Exists(dbA); err != nil || exists {
		t.Fatalf("Exists after Remove: %v, %v", exists, err)
	}
	if n, err := index.CountKeys(a); n != 0 || err != nil {
		t.Fatalf("keys after Remove: %d, %v", n, err)
	}
	if st := indextest.ReadStats(t, a); st != (index.Stats{}) {
		t.Fatalf("statistics after Remove: %+v", st)
	}
}

// TestSchemaGolden: the tables that version 1 makes, column by column, so that a
// change to a released step never passes unseen (a change is a new step).
func TestSchemaGolden(t *testing.T) {
	db := testDB(t)
	ix := open(t, db)
	rows, err := ix.pool.Query(context.Background(), `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
		FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`, ix.schema)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	rows, err = ix.pool.Query(context.Background(), `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname`, ix.schema)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(strings.Join(append(cols, indexes...), "\n")+"\n", ix.schema+".", "SCHEMA.")
	want, err := os.ReadFile("testdata/schema-v1.txt")
	if os.Getenv("DAVKV_UPDATE_GOLDEN") != "" {
		os.WriteFile("testdata/schema-v1.txt", []byte(got), 0o644)
		return
	}
	if err != nil || got != string(want) {
		t.Fatalf("schema version 1 changed (%v):\n%s\nwant:\n%s", err, got, want)
	}
	var v string
	if err := ix.pool.QueryRow(context.Background(), `SELECT value FROM meta WHERE name = 'schema_version'`).Scan(&v); err != nil || v != "1" {
		t.Fatalf("schema_version %q, %v", v, err)
	}
}

// TestSchemaNewerRefused: a schema that a newer davkv wrote is refused, and left
// as it is.
func TestSchemaNewerRefused(t *testing.T) {
	db := testDB(t)
	ix := open(t, db)
	if _, err := ix.pool.Exec(context.Background(), `UPDATE meta SET value = '99' WHERE name = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open on version 99: %v, want ErrNewerSchema", err)
	}
}

// TestSchemaCreatedOnce: masters started at once on an empty schema create it once,
// and all open it.
func TestSchemaCreatedOnce(t *testing.T) {
	db := testDB(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ix, err := Open(db)
			if err != nil {
				t.Error(err)
				return
			}
			ix.Close()
		})
	}
	wg.Wait()
}

// TestOwners: an owner is alive while its index is open, and dead for good once it
// closed or its lease ran out; a process whose lease ran out (paused past it)
// registers again under a new ID.
func TestOwners(t *testing.T) {
	db := testDB(t) + "&lease=2s"
	a, b := open(t, db), open(t, db)
	if a.Owner() == 0 || a.Owner() == b.Owner() {
		t.Fatalf("owners %d and %d", a.Owner(), b.Owner())
	}
	alive := func(ix *Index, owner int64) bool {
		ok, err := ix.Alive(owner)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !alive(a, b.Owner()) || !alive(b, a.Owner()) {
		t.Fatal("an open owner is not alive")
	}
	time.Sleep(3 * time.Second) // past the lease: the heartbeats keep both alive
	if owners, err := a.Owners(); err != nil || len(owners) != 2 || !alive(a, b.Owner()) {
		t.Fatalf("after a lease: owners %v, %v", owners, err)
	}
	old := b.Owner()
	b.Close()
	if alive(a, old) {
		t.Fatal("a closed owner is alive")
	}
	// A lease that ran out: the row expires, and a heartbeat may not push it on.
	c, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.Owner()
	if _, err := c.pool.Exec(context.Background(), `UPDATE owners SET expires = now() - interval '1 second' WHERE id = $1`, first); err != nil {
		t.Fatal(err)
	}
	if alive(a, first) {
		t.Fatal("an expired owner is alive")
	}
	testenv.Eventually(t, 5*time.Second, "the expired owner registered again", func() bool {
		return c.Owner() != first && alive(a, c.Owner())
	})
	if alive(a, first) {
		t.Fatal("an expired owner came back to life")
	}
}

// TestFailover: an index given a primary and its synchronous standby, in that order,
// with target_session_attrs=any, so that once the primary is dead it connects to the
// standby before it is promoted, and its writes are refused as read-only (25006).
// A write waits through that, and succeeds once the standby is promoted; what was
// acknowledged before is there.
func TestFailover(t *testing.T) {
	primary := testenv.StartPostgres(t)
	standby := primary.StartStandby(t)
	db := strings.Replace(testenv.HostsDB("failover", primary, standby), "target_session_attrs=read-write", "target_session_attrs=any", 1)
	ix := open(t, db)
	before := index.Record{State: index.StateLive, Size: 1}
	if err := ix.Put("/before", &before); err != nil {
		t.Fatal(err)
	}
	primary.Kill()
	promoted := make(chan error, 1)
	time.AfterFunc(2*time.Second, func() { promoted <- standby.Promote() })
	start := time.Now()
	if err := ix.Put("/after", &index.Record{State: index.StateLive, Size: 2}); err != nil {
		t.Fatalf("write across the failover: %v", err)
	}
	if err := <-promoted; err != nil {
		t.Fatal(err)
	}
	t.Logf("the write waited %v for the promotion", time.Since(start).Round(time.Millisecond))
	if got, err := ix.Get("/before"); err != nil || got.Rev != before.Rev {
		t.Fatalf("the write acknowledged before the failover: %+v, %v", got, err)
	}
	if st := indextest.ReadStats(t, ix); st.Keys[index.StateLive] != 2 || st.Bytes[index.StateLive] != 3 {
		t.Fatalf("statistics after the failover: %+v", st)
	}
}
