package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"testing"

	"github.com/jackc/pgx/v5"
)

// Postgres is a real PostgreSQL server from Debian's postgresql package, on a loopback
// port, its data in a temporary directory. Run as root (CI), it runs as the postgres
// user the package creates, since PostgreSQL refuses to run as root.
type Postgres struct {
	Port int
	// Standby says the server was made with pg_basebackup from another and streams
	// from it.
	Standby bool
	dir     string // the data directory
	bin     string
	cred    *syscall.Credential
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
}

// pgUser is davkv's tests' superuser, trusted on loopback.
const pgUser = "davkv"

// StartPostgres starts a server and waits until it answers; cleanup stops it and
// removes its data.
func StartPostgres(t testing.TB, settings ...string) *Postgres {
	t.Helper()
	p, err := LaunchPostgres(settings...)
	if p != nil {
		t.Cleanup(p.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// LaunchPostgres is StartPostgres for TestMain, which has no test to stop it with.
// settings are name=value lines for postgresql.conf.
func LaunchPostgres(settings ...string) (*Postgres, error) {
	p := &Postgres{}
	if err := p.prepare(); err != nil {
		return nil, err
	}
	initdb := []string{filepath.Join(p.bin, "initdb"), "-D", p.dir, "-U", pgUser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"}
	if out, err := p.command(initdb...).CombinedOutput(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// Tests run many clusters at once, each master with a pool of connections; fsync
	// is off because a test kills processes, never the machine, and the kernel keeps
	// what a killed server wrote.
	conf := append([]string{"max_connections = 400", "fsync = off", "full_page_writes = off", "synchronous_commit = on",
		"shared_buffers = 64MB", "wal_level = replica", "max_wal_senders = 5", "log_min_messages = warning"}, settings...)
	if err := p.appendConf(conf...); err != nil {
		p.Stop()
		return nil, err
	}
	return p, p.startOnFreePort()
}

// prepare finds PostgreSQL's binaries and makes the temporary directory, owned by the
// user the server runs as.
func (p *Postgres) prepare() error {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return errors.New("PostgreSQL is not installed: run the tests with 'make test', which installs postgresql")
	}
	slices.SortFunc(bins, func(a, b string) int { return pgMajor(a) - pgMajor(b) })
	p.bin = filepath.Dir(bins[len(bins)-1])
	parent, err := os.MkdirTemp("", "davkv-postgres")
	if err != nil {
		return err
	}
	p.dir = filepath.Join(parent, "data")
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("PostgreSQL refuses to run as root, and the postgres user is missing: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(parent, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// pgMajor is the major version in a path /usr/lib/postgresql/N/bin/postgres.
func pgMajor(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// command is a PostgreSQL command run as the server's user, in a process group of its
// own.
func (p *Postgres) command(args ...string) *exec.Cmd {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	return cmd
}

// appendConf adds lines to the server's postgresql.conf; a later line wins.
func (p *Postgres) appendConf(lines ...string) error {
	f, err := os.OpenFile(filepath.Join(p.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	return errors.Join(err, f.Close())
}

// startOnFreePort starts the server on a new port, trying other ports if it fails
// (another process took the port), three times at most.
func (p *Postgres) startOnFreePort() error {
	var err error
	for range 3 {
		p.Port = FreePort(nil)
		if err = p.Start(); err == nil {
			return nil
		}
		p.Kill()
	}
	return err
}

// Start starts the server (again, on its data) and waits until it takes connections.
func (p *Postgres) Start() error {
	var err error
	if p.log, err = os.OpenFile(filepath.Dir(p.dir)+"/log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666); err != nil {
		return err
	}
	os.Chmod(p.log.Name(), 0o666) // the server's user writes it
	cmd := p.command(filepath.Join(p.bin, "postgres"), "-D", p.dir, "-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+filepath.Dir(p.dir))
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		p.log.Close()
		return err
	}
	Started(cmd, "postgres "+p.dir)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, p.URL("postgres")+"&target_session_attrs=any")
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("postgres exited: %s", p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not start: %w: %s", err, p.logTail())
		}
	}
}

// logTail is the end of the server's log, for an error.
func (p *Postgres) logTail() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b[max(0, len(b)-2000):])
}

// URL is the libpq URL of database db on this server, for pgx.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pgUser, p.Port, db)
}

// DB is the -db of an index in schema on this server.
func (p *Postgres) DB(schema string) string {
	return p.URL("postgres") + "&schema=" + schema
}

// Kill kills the server with SIGKILL, as a crash would: its connections drop, and
// it recovers from its WAL when started again.
func (p *Postgres) Kill() {
	if p.cmd != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		p.cmd = nil
	}
	if p.log != nil {
		p.log.Close()
	}
}

// Stop kills the server and removes its data.
func (p *Postgres) Stop() {
	p.Kill()
	if p.dir != "" {
		os.RemoveAll(filepath.Dir(p.dir))
	}
}

// standbyName is the application_name a standby streams under, which its primary's
// synchronous_standby_names names.
const standbyName = "davkv_standby"

// StartStandby makes a standby of p with pg_basebackup, starts it, and makes p
// commit synchronously to it (synchronous_commit = on, synchronous_standby_names):
// p acknowledges no commit until the standby has it on disk, so that a write
// acknowledged is never lost when p dies and the standby is promoted. Cleanup stops
// it.
func (p *Postgres) StartStandby(t testing.TB) *Postgres {
	t.Helper()
	s := &Postgres{Standby: true}
	t.Cleanup(s.Stop)
	if err := s.prepare(); err != nil {
		t.Fatal(err)
	}
	backup := []string{filepath.Join(s.bin, "pg_basebackup"), "-D", s.dir, "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port),
		"-U", pgUser, "-X", "stream", "-R", "--no-sync", "-c", "fast"}
	if out, err := s.command(backup...).CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	// -R wrote primary_conninfo to postgresql.auto.conf, which postgresql.conf cannot
	// override: the line that names the standby goes after it there.
	f, err := os.OpenFile(filepath.Join(s.dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "primary_conninfo = 'host=127.0.0.1 port=%d user=%s application_name=%s'\n", p.Port, pgUser, standbyName)
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	if err := s.startOnFreePort(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{`ALTER SYSTEM SET synchronous_standby_names = 'davkv_standby'`, `SELECT pg_reload_conf()`} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var state string
		err := conn.QueryRow(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`, standbyName).Scan(&state)
		if err == nil && state == "sync" {
			return s
		}
		if ctx.Err() != nil {
			t.Fatalf("the standby does not stream synchronously: %q, %v: %s", state, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Promote makes a standby the primary, and waits until it is.
func (p *Postgres) Promote() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL("postgres")+"&target_session_attrs=any")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var done bool
	if err := conn.QueryRow(ctx, `SELECT pg_promote(true, 30)`).Scan(&done); err != nil || !done {
		return fmt.Errorf("promote the standby: %v, %w", done, err)
	}
	p.Standby = false
	return nil
}

// HostsDB is the -db of an index in schema on servers, a primary and its standbys,
// as masters are given them: libpq's host list, the primary the one that writes.
func HostsDB(schema string, servers ...*Postgres) string {
	var hosts []string
	for _, s := range servers {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", s.Port))
	}
	return fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable&target_session_attrs=read-write&schema=%s", pgUser, strings.Join(hosts, ","), schema)
}
