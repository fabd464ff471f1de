package etcd

// Requests to etcd, bounded and tried again through elections, and what their errors mean.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"davkv/internal/index"
)

// ctx is a request's context: bounded by the timeout, and refused at once by a member
// that knows it has no leader.
func (ix *Index) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(context.Background()), ix.timeout)
}

// get reads from etcd, again while it cannot serve the read now (see retry).
func (ix *Index) get(ctx context.Context, k string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return retry(ix, ctx, func(ctx context.Context) (*clientv3.GetResponse, error) { return ix.client.Get(ctx, k, opts...) })
}

// etcdAttempt bounds one try of a request: one sent to a leader that just died waits
// for an answer that never comes.
const etcdAttempt = 1500 * time.Millisecond

// retry sends req to etcd, and again while etcd says that it cannot serve it now but
// may soon, until ctx ends: a member with no leader (an election under way, which
// takes one to two election timeouts), a member gone, a try that had no answer in
// etcdAttempt. It gives up at once when fewer than a majority of the members answer:
// no election can succeed then. (The client tries reads again itself while a member
// has no leader, so a read that has no leader looks like one that had no answer.) A write that may have been applied before such an
// error is safe to send again: every write compares the revisions it read, so a
// second copy changes nothing and fails as a conflict.
func retry[T any](ix *Index, ctx context.Context, req func(context.Context) (T, error)) (T, error) {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		actx, cancel := context.WithTimeout(ctx, etcdAttempt)
		resp, err := req(actx)
		timedOut := actx.Err() != nil
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return resp, err
		case (timedOut || errors.Is(err, rpctypes.ErrNoLeader)) && ix.noQuorum():
			return resp, fmt.Errorf("%w, and fewer than a majority of its members answer", err)
		case !unavailable(err) && !timedOut:
			return resp, err
		}
		select {
		case <-ctx.Done():
			return resp, err
		case <-time.After(delay):
		}
	}
}

// noQuorum reports whether fewer than a majority of the etcd cluster's members answer.
// It asks without requiring a leader, which a member that has none cannot offer.
func (ix *Index) noQuorum() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	list, err := ix.client.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return false
	}
	var up atomic.Int32
	var wg sync.WaitGroup
	for _, m := range list.Members {
		if len(m.ClientURLs) > 0 {
			wg.Go(func() {
				if _, err := ix.client.Status(ctx, m.ClientURLs[0]); err == nil {
					up.Add(1)
				}
			})
		}
	}
	wg.Wait()
	return int(up.Load()) <= len(list.Members)/2
}

// unavailable reports whether err is etcd's, or gRPC's, "unavailable": no leader, a
// leader changed or lost, a member out of reach.
func unavailable(err error) bool {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	return status.Code(err) == codes.Unavailable
}

// down wraps an error of a request to etcd: the index is out of reach, or cannot
// write.
func down(op string, err error) error {
	return fmt.Errorf("index %s: %w: %w", op, index.ErrIndexDown, err)
}
