package etcd

// The statistics: shards of counts per owner, folded together when their owner is gone.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"davkv/internal/index"
)

// etcdShard is a statistics shard as last seen.
type etcdShard struct {
	rev   int64
	stats index.Stats
}

func (ix *Index) shardKey(owner int64, i int) string {
	return fmt.Sprintf("%ss%016x.%02d", ix.prefix, owner, i)
}

// shard returns the statistics shard at key, as last seen or read now.
func (ix *Index) shard(ctx context.Context, key string) (etcdShard, error) {
	ix.mu.Lock()
	sh, ok := ix.shards[key]
	ix.mu.Unlock()
	if ok {
		return sh, nil
	}
	resp, err := ix.get(ctx, key)
	if err != nil {
		return sh, down("statistics", err)
	}
	return ix.readShard(key, resp.Kvs)
}

// readShard notes the shard at key as kvs hold it (none: not there yet).
func (ix *Index) readShard(key string, kvs []*mvccpb.KeyValue) (etcdShard, error) {
	var sh etcdShard
	if len(kvs) > 0 {
		var err error
		if sh.stats, err = index.DecodeStats(kvs[0].Value); err != nil {
			return sh, fmt.Errorf("statistics %q: %w", key, err)
		}
		sh.rev = kvs[0].ModRevision
	}
	ix.sawShard(key, sh)
	return sh, nil
}

func (ix *Index) sawShard(key string, sh etcdShard) {
	ix.mu.Lock()
	ix.shards[key] = sh
	ix.mu.Unlock()
}

// foldStats adds the statistics shards of owners gone (and of indexes written before
// shards had owners) to this owner's, each in a transaction that deletes the old
// shard, so that of two masters doing it at once only one does.
func (ix *Index) foldStats(ctx context.Context) error {
	owners, err := ix.Owners()
	if err != nil {
		return err
	}
	self := ix.Owner()
	p := ix.prefix + "s"
	var gone []*mvccpb.KeyValue
	err = ix.rangeKeys("statistics", p, index.PrefixEnd(p), func(k string, value []byte, rev int64) (bool, error) {
		owner, err := strconv.ParseUint(strings.TrimPrefix(k, p)[:min(16, len(k)-len(p))], 16, 63)
		if err != nil || int64(owner) != self && !slices.Contains(owners, int64(owner)) {
			gone = append(gone, &mvccpb.KeyValue{Key: []byte(k), Value: value, ModRevision: rev})
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, kv := range gone {
		old, err := index.DecodeStats(kv.Value)
		if err != nil {
			return fmt.Errorf("statistics %q: %w", kv.Key, err)
		}
		mine := ix.shardKey(self, rand.IntN(etcdStatsShards))
		sh, err := ix.shard(ctx, mine)
		if err != nil {
			return err
		}
		sh.stats.AddAll(old)
		resp, err := retry(ix, ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return ix.client.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision), clientv3.Compare(clientv3.ModRevision(mine), "=", sh.rev)).
				Then(clientv3.OpDelete(string(kv.Key)), clientv3.OpPut(mine, string(index.EncodeStats(sh.stats)))).
				Else(clientv3.OpGet(mine)).Commit()
		})
		switch {
		case err != nil:
			return down("statistics", err)
		case resp.Succeeded:
			ix.sawShard(mine, etcdShard{rev: resp.Header.Revision, stats: sh.stats})
		default: // another folded it, or the shard changed: it is read again next time
			if _, err := ix.readShard(mine, resp.Responses[0].GetResponseRange().Kvs); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stats sums the shards of the statistics.
func (ix *Index) Stats() (index.Stats, error) {
	var total index.Stats
	p := ix.prefix + "s"
	err := ix.rangeKeys("stats", p, index.PrefixEnd(p), func(k string, value []byte, _ int64) (bool, error) {
		st, err := index.DecodeStats(value)
		if err != nil {
			return false, fmt.Errorf("statistics %q: %w", k, err)
		}
		total.AddAll(st)
		return true, nil
	})
	return total, err
}
