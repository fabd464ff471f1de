package main

// The Index in etcd (-db etcd://HOST:PORT[,HOST:PORT...]/PREFIX), which several
// masters can share: every conditional write is an etcd transaction that compares the
// revision the writer read.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdScheme starts a -db that names an etcd cluster.
const etcdScheme = "etcd://"

// EtcdIndex is the Index under a prefix of an etcd cluster. Under the prefix, records
// are at "k" + key, pending entries at "p" + key, entries at "e" + space + "\x00" +
// name, and the statistics in etcdStatsShards shards at "s" + shard (see IndexStats),
// with the same encodings as LevelIndex. A record's revision is its etcd ModRevision,
// so a write compares it in the transaction that writes: of two masters that read one
// revision, only one can write.
type EtcdIndex struct {
	client *clientv3.Client
	prefix string
	// timeout bounds each request to etcd: a cluster that lost its quorum fails
	// writes after it, instead of holding them.
	timeout time.Duration
}

// etcdStatsShards is how many keys the statistics are spread over, so that writers
// rarely contend for one; etcdStatsTries bounds how often a write tries again when
// another took its shard meanwhile.
const (
	etcdStatsShards = 16
	etcdStatsTries  = 20
)

// parseEtcdDB splits an etcd -db into its endpoints and prefix.
func parseEtcdDB(db string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(db, etcdScheme)
	if !ok {
		return nil, "", fmt.Errorf("-db %q is not %sHOST:PORT[,HOST:PORT...]/PREFIX", db, etcdScheme)
	}
	hosts, prefix, _ := strings.Cut(rest, "/")
	for _, h := range strings.Split(hosts, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return nil, "", fmt.Errorf("-db %q: %q is not HOST:PORT", db, h)
		}
		endpoints = append(endpoints, "http://"+h)
	}
	if prefix == "" {
		return nil, "", fmt.Errorf("-db %q: a PREFIX is needed, under which the index lives", db)
	}
	return endpoints, "/" + strings.Trim(prefix, "/") + "/", nil
}

// OpenEtcdIndex connects to the etcd cluster db names; see OpenIndex.
func OpenEtcdIndex(db string) (*EtcdIndex, error) {
	endpoints, prefix, err := parseEtcdDB(db)
	if err != nil {
		return nil, err
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", db, err)
	}
	return &EtcdIndex{client: client, prefix: prefix, timeout: 5 * time.Second}, nil
}

// Close closes the connection to etcd.
func (ix *EtcdIndex) Close() error { return ix.client.Close() }

func (ix *EtcdIndex) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), ix.timeout)
}

func (ix *EtcdIndex) recordKey(key string) string  { return ix.prefix + "k" + key }
func (ix *EtcdIndex) pendingKey(key string) string { return ix.prefix + "p" + key }
func (ix *EtcdIndex) entryKey(space, name string) string {
	return ix.prefix + "e" + space + "\x00" + name
}

// Get returns key's record.
func (ix *EtcdIndex) Get(key string) (Record, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var rec Record
	resp, err := ix.client.Get(ctx, ix.recordKey(key))
	if err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return rec, ErrNotFound
	}
	if err := rec.UnmarshalBinary(resp.Kvs[0].Value); err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	rec.Rev = resp.Kvs[0].ModRevision
	return rec, nil
}

// current reads what is stored at k, if it is at rev, and with record its head (zero
// if there is none), or an error wrapping ErrConflict.
func (ix *EtcdIndex) current(ctx context.Context, op, k string, rev int64, record bool) (recordHead, error) {
	resp, err := ix.client.Get(ctx, k)
	if err != nil {
		return recordHead{}, fmt.Errorf("index %s: %w", op, err)
	}
	var head recordHead
	var cur int64
	if len(resp.Kvs) > 0 {
		cur = resp.Kvs[0].ModRevision
		if record {
			if head, err = readRecordHead(resp.Kvs[0].Value); err != nil {
				return head, fmt.Errorf("index %s: %w", op, err)
			}
		}
	}
	if cur != rev {
		return head, fmt.Errorf("index %s %q: %w", op, k[len(ix.prefix)+1:], ErrConflict)
	}
	return head, nil
}

// write commits ops if k is still at rev, with the statistics changed from old to new
// in the same transaction, in a shard it compares too: if another writer changed the
// shard meanwhile, it tries again with another. It returns the revision written.
func (ix *EtcdIndex) write(ctx context.Context, op, k string, rev int64, old, new recordHead, ops ...clientv3.Op) (int64, error) {
	for range etcdStatsTries {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", rev)}
		all := ops
		if old.State != new.State || old.Size != new.Size {
			shard := fmt.Sprintf("%ss%02d", ix.prefix, rand.IntN(etcdStatsShards))
			resp, err := ix.client.Get(ctx, shard)
			if err != nil {
				return 0, fmt.Errorf("index %s: %w", op, err)
			}
			var st IndexStats
			var shardRev int64
			if len(resp.Kvs) > 0 {
				if st, err = decodeStats(resp.Kvs[0].Value); err != nil {
					return 0, fmt.Errorf("index %s: %w", op, err)
				}
				shardRev = resp.Kvs[0].ModRevision
			}
			st.replace(old, new)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(shard), "=", shardRev))
			all = append(ops[:len(ops):len(ops)], clientv3.OpPut(shard, string(encodeStats(st))))
		}
		resp, err := ix.client.Txn(ctx).If(cmps...).Then(all...).Commit()
		if err != nil {
			return 0, fmt.Errorf("index %s: %w", op, err)
		}
		if resp.Succeeded {
			return resp.Header.Revision, nil
		}
		if _, err := ix.current(ctx, op, k, rev, false); err != nil {
			return 0, err // the record changed: a conflict; else the shard did: again
		}
	}
	return 0, fmt.Errorf("index %s: the statistics were changed by others %d times in a row", op, etcdStatsTries)
}

// Put stores *rec for key if its record is still at rec.Rev.
func (ix *EtcdIndex) Put(key string, rec *Record) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.recordKey(key)
	old, err := ix.current(ctx, "put", k, rec.Rev, true)
	if err != nil {
		return err
	}
	stored := *rec
	stored.Time = time.Now().UnixNano()
	b, err := stored.MarshalBinary()
	if err != nil {
		return err
	}
	pending := clientv3.OpDelete(ix.pendingKey(key))
	if rec.Pending() {
		pending = clientv3.OpPut(ix.pendingKey(key), "")
	}
	rev, err := ix.write(ctx, "put", k, rec.Rev, old, recordHead{State: rec.State, Size: rec.Size}, clientv3.OpPut(k, string(b)), pending)
	if err != nil {
		return err
	}
	rec.Time, rec.Rev = stored.Time, rev
	return nil
}

// Delete removes key if its record is still at rev.
func (ix *EtcdIndex) Delete(key string, rev int64) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.recordKey(key)
	old, err := ix.current(ctx, "delete", k, rev, true)
	if err != nil || rev == 0 {
		return err
	}
	_, err = ix.write(ctx, "delete", k, rev, old, recordHead{}, clientv3.OpDelete(k), clientv3.OpDelete(ix.pendingKey(key)))
	return err
}

// etcdPage is how many keys a range read takes at a time.
const etcdPage = 1000

// rangeKeys calls fn for every key from from (inclusive) to end (exclusive), a page at
// a time, until fn returns false or an error.
func (ix *EtcdIndex) rangeKeys(op, from, end string, fn func(k string, value []byte, rev int64) (bool, error)) error {
	for {
		ctx, cancel := ix.ctx()
		resp, err := ix.client.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(etcdPage))
		cancel()
		if err != nil {
			return fmt.Errorf("index %s: %w", op, err)
		}
		for _, kv := range resp.Kvs {
			more, err := fn(string(kv.Key), kv.Value, kv.ModRevision)
			if err != nil || !more {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Scan calls fn for every key with prefix, from start on, a page at a time.
func (ix *EtcdIndex) Scan(prefix, start string, fn func(key string, rec Record) (bool, error)) error {
	prefix = scanPrefix(prefix)
	from := ix.recordKey(max(start, prefix))
	root := len(ix.recordKey(""))
	return ix.rangeKeys("scan", from, prefixEnd(ix.recordKey(prefix)), func(k string, value []byte, rev int64) (bool, error) {
		var rec Record
		if err := rec.UnmarshalBinary(value); err != nil {
			return false, fmt.Errorf("index scan at %q: %w", k[root:], err)
		}
		rec.Rev = rev
		return fn(k[root:], rec)
	})
}

// Pending calls fn for every key with a pending entry.
func (ix *EtcdIndex) Pending(fn func(key string) (bool, error)) error {
	p := ix.pendingKey("")
	return ix.rangeKeys("pending", p, prefixEnd(p), func(k string, _ []byte, _ int64) (bool, error) {
		return fn(k[len(p):])
	})
}

// Stats sums the shards of the statistics.
func (ix *EtcdIndex) Stats() (IndexStats, error) {
	var total IndexStats
	p := ix.prefix + "s"
	err := ix.rangeKeys("stats", p, prefixEnd(p), func(k string, value []byte, _ int64) (bool, error) {
		st, err := decodeStats(value)
		if err != nil {
			return false, fmt.Errorf("statistics %q: %w", k, err)
		}
		total.addAll(st)
		return true, nil
	})
	return total, err
}

// GetEntry returns name's value in space.
func (ix *EtcdIndex) GetEntry(space, name string) ([]byte, int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	resp, err := ix.client.Get(ctx, ix.entryKey(space, name))
	if err != nil {
		return nil, 0, fmt.Errorf("index get %s entry: %w", space, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, ErrNotFound
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// PutEntry stores value as name in space if the entry is still at rev.
func (ix *EtcdIndex) PutEntry(space, name string, value []byte, rev int64) (int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.entryKey(space, name)
	return ix.write(ctx, "put "+space+" entry", k, rev, recordHead{}, recordHead{}, clientv3.OpPut(k, string(value)))
}

// DeleteEntry removes name from space if the entry is still at rev.
func (ix *EtcdIndex) DeleteEntry(space, name string, rev int64) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.entryKey(space, name)
	if rev == 0 {
		_, err := ix.current(ctx, "delete "+space+" entry", k, 0, false)
		return err
	}
	_, err := ix.write(ctx, "delete "+space+" entry", k, rev, recordHead{}, recordHead{}, clientv3.OpDelete(k))
	return err
}

// Entries calls fn for every entry of space from start on.
func (ix *EtcdIndex) Entries(space, start string, fn func(name string, value []byte, rev int64) (bool, error)) error {
	p := ix.entryKey(space, "")
	return ix.rangeKeys(space+" entries", p+start, prefixEnd(p), func(k string, value []byte, rev int64) (bool, error) {
		return fn(k[len(p):], value, rev)
	})
}

// etcdIndexExists reports whether anything is stored under db's prefix.
func etcdIndexExists(db string) (bool, error) {
	ix, err := OpenEtcdIndex(db)
	if err != nil {
		return false, err
	}
	defer ix.Close()
	ctx, cancel := ix.ctx()
	defer cancel()
	resp, err := ix.client.Get(ctx, ix.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("index %s: %w", db, err)
	}
	return resp.Count > 0, nil
}

// removeEtcdIndex deletes everything under db's prefix.
func removeEtcdIndex(db string) error {
	ix, err := OpenEtcdIndex(db)
	if err != nil {
		return err
	}
	defer ix.Close()
	ctx, cancel := ix.ctx()
	defer cancel()
	if _, err := ix.client.Delete(ctx, ix.prefix, clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("remove index %s: %w", db, err)
	}
	return nil
}
