package postgres

// The statistics: each state's keys and bytes in shards, summed when read.

import (
	"context"

	"github.com/jackc/pgx/v5"

	"davkv/internal/index"
)

// Stats sums the shards of the statistics.
func (ix *Index) Stats() (index.Stats, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var total index.Stats
	err := ix.do(ctx, "stats", nil, func(ctx context.Context) error {
		total = index.Stats{}
		rows, err := ix.pool.Query(ctx, `SELECT state, sum(keys)::bigint, sum(bytes)::bigint FROM stats GROUP BY state`)
		if err != nil {
			return err
		}
		var state int16
		var keys, bytes int64
		_, err = pgx.ForEachRow(rows, []any{&state, &keys, &bytes}, func() error {
			if state > 0 && int(state) < len(total.Keys) {
				total.Keys[state], total.Bytes[state] = keys, bytes
			}
			return nil
		})
		return err
	})
	return total, err
}
