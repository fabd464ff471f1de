package postgres

// Owners: each process that opens the index has a row in owners, alive until a time
// that its heartbeat pushes on, by the database's clock.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// register inserts a new owner row, alive for a lease from now, and makes it the
// owner ID; it deletes the rows of owners gone, whose absence says as much.
func (ix *Index) register(ctx context.Context) error {
	host, err := os.Hostname()
	if err != nil {
		host = "a host with no name" // the row only tells people who the owner is
	}
	who := fmt.Sprintf("%s pid %d since %s", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	var id int64
	// A second owner row, of a try whose answer was lost, expires unused.
	err = ix.do(ctx, "register owner", nil, func(ctx context.Context) error {
		return ix.pool.QueryRow(ctx, `INSERT INTO owners (id, who, expires)
			VALUES (nextval('owner_ids'), $1, now() + $2 * interval '1 millisecond') RETURNING id`,
			who, ix.lease.Milliseconds()).Scan(&id)
	})
	if err != nil {
		return err
	}
	ix.owner.Store(id)
	if err := ix.exec(ctx, "owners gone", nil, `DELETE FROM owners WHERE expires < now()`); err != nil {
		slog.Warn("rows of owners gone not deleted", "err", err) // the next owner's register deletes them
	}
	return nil
}

// heartbeat pushes the owner's row on by a lease every third of one until ctx ends.
// A row that expired meanwhile (the database was out of reach, or this process
// paused, for longer than the lease) is never pushed on: the owner is dead for good,
// its records are adopted like any dead master's, and the process registers anew.
func (ix *Index) heartbeat(ctx context.Context) {
	defer close(ix.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(ix.lease / 3):
		}
		var alive bool
		hctx, cancel := context.WithTimeout(ctx, ix.lease)
		err := ix.do(hctx, "heartbeat", nil, func(ctx context.Context) error {
			tag, err := ix.pool.Exec(ctx, `UPDATE owners SET expires = now() + $2 * interval '1 millisecond'
				WHERE id = $1 AND expires > now()`, ix.Owner(), ix.lease.Milliseconds())
			alive = tag.RowsAffected() == 1
			return err
		})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			slog.Warn("owner heartbeat failed", "owner", ix.Owner(), "err", err)
		case !alive:
			slog.Warn("owner expired: registering again", "owner", ix.Owner())
			if err := ix.register(ctx); err != nil && ctx.Err() == nil {
				slog.Warn("owner not registered again", "err", err)
			}
		}
	}
}

// Owner returns this process's owner ID.
func (ix *Index) Owner() int64 { return ix.owner.Load() }

// Alive reports whether owner's row has not yet expired.
func (ix *Index) Alive(owner int64) (bool, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var alive bool
	err := ix.do(ctx, "owner", nil, func(ctx context.Context) error {
		return ix.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM owners WHERE id = $1 AND expires > now())`, owner).Scan(&alive)
	})
	return alive, err
}

// Owners lists the owners whose rows have not expired.
func (ix *Index) Owners() ([]int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var owners []int64
	err := ix.do(ctx, "owners", nil, func(ctx context.Context) error {
		rows, err := ix.pool.Query(ctx, `SELECT id FROM owners WHERE expires > now() ORDER BY id`)
		if err != nil {
			return err
		}
		owners, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	return owners, err
}
