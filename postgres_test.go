package main

// Masters over an index in a real PostgreSQL server, from Debian's postgresql: as on
// etcd, conflicts between masters and one of them killed; then a primary and its
// synchronous standby, the primary SIGKILLed under load and the standby promoted.

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestMasterOnPostgres: a master whose index is in PostgreSQL stores, lists, unlinks
// and deletes keys and keeps S3 buckets, as on LevelDB, and a rebuild writes into
// PostgreSQL.
func TestMasterOnPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	masterOn(t, pg.DB("master"), pg.DB("rebuilt"))
}

// TestMastersConflictOnPostgres is TestMastersConflict on PostgreSQL.
func TestMastersConflictOnPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	mastersConflict(t, startMasters(t, 3, pg.DB("conflict")))
}

// TestMasterKilledOnPostgres is TestMasterKilledOnEtcd on PostgreSQL: the survivors
// adopt the dead master's work once its row in owners has expired, by the database's
// clock.
func TestMasterKilledOnPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	masterKilled(t, startMasters(t, 3, pg.DB("killed")+"&lease=2s"))
}

// TestPostgresFailover: three masters over a primary and its synchronous standby,
// given both hosts (target_session_attrs=read-write), under load. The primary is
// SIGKILLed, and the standby promoted only after longer than a request waits for the
// index, so that requests in the gap answer 503. Then the masters go on by
// themselves on the new primary: every write acknowledged reads back bit-exact
// through every master, a PUT answered 503 (or 409) stored nothing, and nothing is
// left pending.
func TestPostgresFailover(t *testing.T) {
	primary := testenv.StartPostgres(t)
	standby := primary.StartStandby(t)
	ms := startMasters(t, 3, testenv.HostsDB("failover", primary, standby)+"&lease=3s")
	load := ms.startLoad(9, 0, 1, 2)
	time.Sleep(2 * time.Second)
	primary.Kill()
	killed := time.Now()
	time.Sleep(12 * time.Second) // past a request's wait for the index (10 s)
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	t.Logf("standby promoted %v after the primary's death", time.Since(killed).Round(time.Millisecond))
	time.Sleep(4 * time.Second)
	load.Stop()

	statuses := map[int]int{}
	for m := range 3 {
		ok, failed, slowest, st := load.count(m)
		t.Logf("master %d: %d requests answered 2xx, %d not, slowest %v, %v", m, ok, failed, slowest.Round(time.Millisecond), st)
		for s, n := range st {
			statuses[s] += n
		}
	}
	for s := range statuses {
		// 409: the gap outlasted the lease (3 s), so every master's owner row expired
		// and another may have rolled back a write in flight, which then changed
		// nothing.
		if s != http.StatusCreated && s != http.StatusNoContent && s != http.StatusServiceUnavailable && s != http.StatusConflict {
			t.Errorf("answered %d: %v", s, statuses)
		}
	}
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no request answered 503 in the gap: %v", statuses)
	}
	// After the promotion every master writes again, by itself.
	for m := range 3 {
		key := "/after/" + string(rune('a'+m))
		if status, _ := ms.Do(m, http.MethodPut, key, []byte("back")); status != http.StatusCreated {
			t.Fatalf("PUT through master %d after the promotion: %d", m, status)
		}
	}
	values := map[string][]byte{"/after/a": []byte("back"), "/after/b": []byte("back"), "/after/c": []byte("back")}
	load.Values(values)
	for key, o := range load.outcomes {
		if (o.put == http.StatusServiceUnavailable || o.put == http.StatusConflict) && values[key] != nil {
			t.Errorf("%s: PUT answered %d, and the value was stored", key, o.put)
		}
	}
	ms.Check(values, 0, 1, 2)
}

// TestMigratePostgres: migrate between PostgreSQL and each other backend, both ways:
// LevelDB to PostgreSQL, to etcd, to PostgreSQL again (another schema), to LevelDB;
// every record, entry and statistic arrives each time.
func TestMigratePostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	e := testenv.StartEtcd(t, 1)
	dir := t.TempDir()
	chain := []string{filepath.Join(dir, "src"), pg.DB("first"), e.DB("/middle"), pg.DB("second"), filepath.Join(dir, "back")}
	idx, err := openIndex(chain[0], false)
	if err != nil {
		t.Fatal(err)
	}
	fillIndex(t, idx, migrateBatch+300)
	want := dumpIndex(t, idx)
	idx.Close()
	for i, to := range chain[1:] {
		var out strings.Builder
		log := slog.New(slog.NewTextHandler(t.Output(), nil))
		if err := runMigrate(context.Background(), MigrateConfig{DB: chain[i], To: to}, &out, log); err != nil {
			t.Fatalf("migrate %s to %s: %v", chain[i], to, err)
		}
		idx, err := openIndex(to, false)
		if err != nil {
			t.Fatal(err)
		}
		got := dumpIndex(t, idx)
		idx.Close()
		if got != want {
			t.Fatalf("%s holds\n%.2000s\nwant\n%.2000s", to, got, want)
		}
	}
}
