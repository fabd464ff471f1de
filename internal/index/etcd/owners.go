package etcd

// Owners: each process that opens the index holds a lease, alive while it can reach etcd.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"davkv/internal/index"
)

// grant takes a new lease with ttl, puts the owner's key under it and makes it the
// owner ID.
func (ix *Index) grant(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	ctx, cancel := context.WithTimeout(ctx, ix.timeout)
	defer cancel()
	lease, err := retry(ix, ctx, func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) {
		return ix.client.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	})
	if err != nil {
		return 0, fmt.Errorf("take an owner lease: %w: %w", index.ErrIndexDown, err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "a host with no name" // the value only tells people who the owner is
	}
	who := fmt.Sprintf("%s pid %d since %s", host, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if _, err := retry(ix, ctx, func(ctx context.Context) (*clientv3.PutResponse, error) {
		return ix.client.Put(ctx, ix.ownerKey(int64(lease.ID)), who, clientv3.WithLease(lease.ID))
	}); err != nil {
		return 0, fmt.Errorf("register owner: %w: %w", index.ErrIndexDown, err)
	}
	ix.owner.Store(int64(lease.ID))
	if err := ix.foldStats(ctx); err != nil {
		// Not folded now, folded by the next owner: the sum is the same.
		slog.Warn("statistics of masters gone not folded into this one's", "err", err)
	}
	return lease.ID, nil
}

// keepAlive keeps the owner's lease alive until ctx ends, then revokes it, so that
// another master adopts what this one left at once. If the lease runs out (etcd was
// out of reach for longer than its TTL), it takes a new one: the old owner is dead
// for good, and its records are adopted like any dead master's.
func (ix *Index) keepAlive(ctx context.Context, id clientv3.LeaseID, ttl time.Duration) {
	defer close(ix.done)
	for {
		if ch, err := ix.client.KeepAlive(ctx, id); err == nil {
			for range ch { // ends when the lease is gone or ctx ends
			}
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.Background(), ix.timeout)
			ix.client.Revoke(rctx, id)
			cancel()
			return
		}
		for {
			var err error
			if id, err = ix.grant(ctx, ttl); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (ix *Index) ownerKey(owner int64) string { return fmt.Sprintf("%sm%016x", ix.prefix, owner) }

// Owner returns the owner lease.
func (ix *Index) Owner() int64 { return ix.owner.Load() }

// Alive reports whether owner's key is still there: its lease is alive.
func (ix *Index) Alive(owner int64) (bool, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	resp, err := ix.get(ctx, ix.ownerKey(owner), clientv3.WithCountOnly())
	if err != nil {
		return false, down("owner", err)
	}
	return resp.Count > 0, nil
}

// Owners lists the owners whose keys are there.
func (ix *Index) Owners() ([]int64, error) {
	var owners []int64
	p := ix.prefix + "m"
	err := ix.rangeKeys("owners", p, index.PrefixEnd(p), func(k string, _ []byte, _ int64) (bool, error) {
		id, err := strconv.ParseUint(k[len(p):], 16, 63)
		if err != nil {
			return false, fmt.Errorf("index owners: %q is not an owner", k)
		}
		owners = append(owners, int64(id))
		return true, nil
	})
	return owners, err
}
