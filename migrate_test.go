package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/testenv"
)

// fillIndex writes n records in every state, pending ones among them, and entries in
// every space, into index.
func fillIndex(t *testing.T, idx index.Index, n int) {
	for i := range n {
		rec := index.Record{State: index.StateLive, Volumes: []string{"a:1", "b:2"}, Size: int64(i), Modified: int64(i), Meta: []index.MetaHeader{{Name: "Content-Type", Value: "text/plain"}}}
		switch i % 10 {
		case 3:
			rec.State = index.StateUnlinked
		case 5:
			rec.State, rec.Volumes, rec.Tombstones = index.StateDeleting, nil, []index.StaleGen{{Gen: 0, Volumes: []string{"a:1"}}}
		case 7:
			rec.Gen, rec.Stale = 2, []index.StaleGen{{Gen: 1, Time: 42, Volumes: []string{"c:3"}}}
		}
		if err := idx.Put(fmt.Sprintf("/m/%05d", i), &rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, space := range migrateSpaces {
		for i := range 3 {
			if _, err := idx.PutEntry(space, fmt.Sprint(space, i), []byte(fmt.Sprint("value ", i)), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// dumpIndex is everything index holds that a copy must keep, as text.
func dumpIndex(t *testing.T, idx index.Index) string {
	var b strings.Builder
	err := idx.Scan("", "", func(key string, rec index.Record) (bool, error) {
		rec.Time, rec.Rev, rec.Owner = 0, 0, 0
		fmt.Fprintf(&b, "%s %+v pending=%v\n", key, rec, rec.Pending())
		return true, nil
	})
	for _, space := range migrateSpaces {
		if err == nil {
			err = idx.Entries(space, "", func(name string, value []byte, _ int64) (bool, error) {
				fmt.Fprintf(&b, "%s %s %q\n", space, name, value)
				return true, nil
			})
		}
	}
	pending := 0
	if err == nil {
		err = idx.Pending(func(string) (bool, error) { pending++; return true, nil })
	}
	st, err2 := idx.Stats()
	if err != nil || err2 != nil {
		t.Fatal(err, err2)
	}
	fmt.Fprintf(&b, "%d pending, %+v\n", pending, st)
	return b.String()
}

// cancelOnProgress cancels a context at migrate's first progress report: an
// interruption after a batch.
type cancelOnProgress struct {
	slog.Handler
	cancel context.CancelFunc
}

func (h cancelOnProgress) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "migrating" {
		h.cancel()
	}
	return h.Handler.Handle(ctx, r)
}

// TestMigrate copies an index from LevelDB to etcd and back: every record (pending
// ones too, with their pending entries), every entry and the statistics arrive, a
// copy interrupted after a batch resumes where it was, and an index already there
// is not overwritten without -force.
func TestMigrate(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	dir := t.TempDir()
	src, dst, back := filepath.Join(dir, "src"), e.DB("/migrated"), filepath.Join(dir, "back")
	idx, err := openIndex(src, false)
	if err != nil {
		t.Fatal(err)
	}
	fillIndex(t, idx, 2*migrateBatch+500)
	want := dumpIndex(t, idx)
	idx.Close()

	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(cancelOnProgress{slog.NewTextHandler(t.Output(), nil), cancel})
	var out strings.Builder
	err = runMigrate(ctx, MigrateConfig{DB: src, To: dst, Progress: time.Nanosecond}, &out, log)
	if err == nil || !strings.Contains(err.Error(), "run it again to resume") {
		t.Fatalf("interrupted migrate: %v", err)
	}
	if err := runMigrate(context.Background(), MigrateConfig{DB: back, To: dst}, &out, testLogger(t)); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("migrate of no index: %v", err)
	}
	other, err := openIndex(e.DB("/other"), false)
	if err != nil {
		t.Fatal(err)
	}
	fillIndex(t, other, 1)
	other.Close()
	if err := runMigrate(context.Background(), MigrateConfig{DB: e.DB("/other"), To: dst}, &out, testLogger(t)); err == nil || !strings.Contains(err.Error(), "another index") {
		t.Fatalf("resuming with another source: %v", err)
	}
	if err := runMigrate(context.Background(), MigrateConfig{DB: src, To: dst}, &out, testLogger(t)); err != nil {
		t.Fatalf("resumed migrate: %v", err)
	}
	if !strings.Contains(out.String(), "2500 keys and 12 entries copied") {
		t.Fatalf("migrate said %q", out.String())
	}
	check := func(db string) {
		idx, err := openIndex(db, false)
		if err != nil {
			t.Fatal(err)
		}
		defer idx.Close()
		if got := dumpIndex(t, idx); got != want {
			t.Fatalf("%s holds\n%.2000s\nwant\n%.2000s", db, got, want)
		}
	}
	check(dst)
	if err := runMigrate(context.Background(), MigrateConfig{DB: src, To: dst}, &out, testLogger(t)); err == nil || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("migrate over a complete copy: %v", err)
	}

	// Back to LevelDB, with the command line, and over an index there with -force.
	if code, stderr := davkv(t, "migrate", "-db", dst, "-to", back); code != 0 {
		t.Fatalf("davkv migrate: exit %d\n%s", code, stderr)
	}
	if code, stderr := davkv(t, "migrate", "-db", dst, "-to", back, "-force"); code != 0 {
		t.Fatalf("davkv migrate -force: exit %d\n%s", code, stderr)
	}
	check(back)
}
