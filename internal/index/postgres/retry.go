package postgres

// Requests to the database, bounded and tried again through a failover, and what their
// errors mean.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"davkv/internal/index"
)

// ctx is a request's context, bounded by the timeout.
func (ix *Index) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ix.timeout)
}

// attempt bounds one try of a request: one sent to a primary that stopped answering
// (its machine gone, a network cut) waits for an answer that never comes.
const attempt = 3 * time.Second

// settleFunc tells, after a write's connection failed once the write had been sent,
// whether the database applied it (true) or not (false, and it is sent again), from
// what is stored now; or errUnknown if what is stored cannot tell. A nil settleFunc
// marks a request that may run twice (a read).
type settleFunc func(ctx context.Context) (applied bool, err error)

// errUnknown says a write's connection failed, and whether the database applied it
// before cannot be told.
var errUnknown = errors.New("the connection failed after the write was sent, and whether it was applied cannot be told")

// cannotSettle is the settleFunc of a write that cannot be told from what is stored.
func cannotSettle(context.Context) (bool, error) { return false, errUnknown }

// do runs req, and again while the database cannot serve it now but may soon, until
// ctx ends: a connection that could not be made or failed (the primary down, the
// standby not yet promoted; a write whose connection failed once sent is settled
// first), a statement refused and not applied for a reason that passes (see
// refusedForNow). It returns req's error as it is if the database answered
// (pgx.ErrNoRows), wrapped if it refused the statement for good, and else wrapping
// index.ErrIndexDown.
func (ix *Index) do(ctx context.Context, op string, settle settleFunc, req func(context.Context) error) error {
	unsettled := false
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		actx, cancel := context.WithTimeout(ctx, attempt)
		var err error
		if unsettled {
			var applied bool
			if applied, err = settle(actx); err == nil {
				if applied {
					cancel()
					return nil
				}
				unsettled = false
			}
		}
		if !unsettled {
			err = req(actx)
		}
		cancel()
		var pe *pgconn.PgError
		switch {
		case errors.Is(err, errUnknown):
			return down(op, err)
		case err == nil || errors.Is(err, pgx.ErrNoRows):
			return err
		case errors.As(err, &pe) && refusedForNow(pe):
			if pe.Code == readOnly {
				// The server this connection reached is a standby now (a switchover
				// demoted it): every connection is made anew, to the host that writes.
				ix.pool.Reset()
			}
		case !connectionFailed(err):
			return fmt.Errorf("index %s: %w", op, err)
		case settle != nil && !unsettled && !notSent(err):
			unsettled = true
		}
		select {
		case <-ctx.Done():
			return down(op, err)
		case <-time.After(delay):
		}
	}
}

// exec runs a statement that returns no rows, through do.
func (ix *Index) exec(ctx context.Context, op string, settle settleFunc, sql string, args ...any) error {
	return ix.do(ctx, op, settle, func(ctx context.Context) error {
		_, err := ix.pool.Exec(ctx, sql, args...)
		return err
	})
}

// readOnly is PostgreSQL's read_only_sql_transaction: a write sent to a standby.
const readOnly = "25006"

// refusedForNow reports whether the database refused a statement, and so did not
// apply it, for a reason that passes: a standby that cannot write yet (or a primary
// that has become one), a server starting up or shutting down that takes no
// connection, too many connections, a transaction that lost a deadlock or a
// serialization conflict.
func refusedForNow(pe *pgconn.PgError) bool {
	switch pe.Code {
	case readOnly, "57P03", "53300", "40001", "40P01":
		return true
	}
	return false
}

// connectionFailed reports whether err is the connection's, not the database's
// answer: it could not be made, it broke, it timed out, or the server ended it (a
// shutdown's "terminating connection", 57P01, may come after a commit).
func connectionFailed(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code[:2] == "08" || pe.Code == "57P01" || pe.Code == "57P02"
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, pgconn.ErrConnClosed) ||
		pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// notSent reports whether err came before the request left: no connection could be
// made, or pgx knows it sent nothing.
func notSent(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || pgconn.SafeToRetry(err)
}

// down wraps an error of a request to the database: it is out of reach, or cannot
// write.
func down(op string, err error) error {
	return fmt.Errorf("index %s: %w: %w", op, index.ErrIndexDown, oneLine{err})
}

// oneLine is an error said on one line: pgx says each host it tried to connect to on
// a line of its own, and davkv's errors are one line each.
type oneLine struct{ err error }

func (e oneLine) Error() string {
	return strings.ReplaceAll(strings.ReplaceAll(e.err.Error(), ":\n\t", ": "), "\n\t", "; ")
}

func (e oneLine) Unwrap() error { return e.err }
