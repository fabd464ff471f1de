package etcd

// The Index in etcd (-db etcd://HOST:PORT[,HOST:PORT...]/PREFIX), which several
// masters can share: every conditional write is an etcd transaction that compares the
// revision the writer read.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"davkv/internal/index"
)

// etcdScheme starts a -db that names an etcd cluster.
const Scheme = "etcd://"

// EtcdIndex is the Index under a prefix of an etcd cluster. Under the prefix, records
// are at "k" + key, pending entries at "p" + key, entries at "e" + space + "\x00" +
// name, the statistics in shards at "s" + owner + "." + shard (see Stats), with
// the same encodings as LevelIndex, and each owner's key at "m" + owner, an owner
// being its ID in 16 hex digits. Each owner writes its own etcdStatsShards shards, so
// that masters never contend for them; a new owner adds those of owners gone to its
// own. A
// record's revision is its etcd ModRevision, so a write compares it in the
// transaction that writes: of two masters that read one revision, only one can write.
//
// An owner is an etcd lease, which the index keeps alive while it is open, with the
// owner's key attached: when the process dies or loses touch with the cluster for
// longer than the lease's TTL, etcd deletes the key, and every other master sees
// the owner gone. A process whose lease ran out takes a new one.
type Index struct {
	client *clientv3.Client
	prefix string
	// timeout bounds each request to etcd, with its tries (see retry). A cluster
	// that lost its quorum fails requests as soon as the member asked knows it has no
	// leader (an election timeout, a second by default) and the client sees that
	// fewer than a majority of the members answer.
	timeout time.Duration
	// owner is the lease, the owner ID; stop ends its keep-alive, which done says.
	owner atomic.Int64
	stop  context.CancelFunc
	done  chan struct{}

	// mu guards what the index remembers so that a write needs no reads first: the
	// heads of records it read or wrote last, by key, and the statistics shards as it
	// last saw them. A key's ModRevision names one version of its value, so a head
	// remembered at the revision a write compares is that version's; a shard may have
	// changed meanwhile, and then the write's transaction fails and reads it again.
	mu     sync.Mutex
	heads  map[string]etcdHead
	shards map[string]etcdShard
}

// etcdHead is a record's head at a revision.
type etcdHead struct {
	rev  int64
	head index.Head
}

// etcdHeadsMax bounds how many heads the index remembers; past it, it forgets them
// all: a write usually follows the read or write of its key at once.
const etcdHeadsMax = 4096

// remember notes key's head at rev (zero rev: key has no record).
func (ix *Index) remember(key string, rev int64, head index.Head) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.heads) >= etcdHeadsMax {
		clear(ix.heads)
	}
	ix.heads[key] = etcdHead{rev: rev, head: head}
}

// head returns key's head at rev if the index remembers it.
func (ix *Index) head(key string, rev int64) (index.Head, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	h, ok := ix.heads[key]
	return h.head, ok && h.rev == rev
}

// etcdStatsShards is how many keys the statistics are spread over, so that writers
// rarely contend for one; etcdStatsTries bounds how often a write tries again when
// another took its shard meanwhile.
const (
	etcdStatsShards = 16
	etcdStatsTries  = 20
)

// etcdDefaultLease is the TTL of an owner's lease unless -db says (?lease=): how long
// after a master dies its unfinished work waits for another to adopt it, and how
// long a master may lose touch with etcd before its owner ID is given up.
const etcdDefaultLease = 10 * time.Second

// etcdDB is what an etcd -db says.
type etcdDB struct {
	Endpoints []string
	Prefix    string
	Lease     time.Duration
}

// parseEtcdDB reads an etcd -db: etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?lease=TTL].
func parseEtcdDB(db string) (etcdDB, error) {
	rest, ok := strings.CutPrefix(db, Scheme)
	if !ok {
		return etcdDB{}, fmt.Errorf("-db %q is not %sHOST:PORT[,HOST:PORT...]/PREFIX", db, Scheme)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, prefix, _ := strings.Cut(rest, "/")
	e := etcdDB{Lease: etcdDefaultLease}
	for _, h := range strings.Split(hosts, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return etcdDB{}, fmt.Errorf("-db %q: %q is not HOST:PORT", db, h)
		}
		e.Endpoints = append(e.Endpoints, "http://"+h)
	}
	if prefix == "" {
		return etcdDB{}, fmt.Errorf("-db %q: a PREFIX is needed, under which the index lives", db)
	}
	e.Prefix = "/" + strings.Trim(prefix, "/") + "/"
	q, err := url.ParseQuery(query)
	if err != nil {
		return etcdDB{}, fmt.Errorf("-db %q: %w", db, err)
	}
	for name := range q {
		if name != "lease" {
			return etcdDB{}, fmt.Errorf("-db %q: unknown option %q (there is lease=TTL)", db, name)
		}
	}
	if l := q.Get("lease"); l != "" {
		if e.Lease, err = time.ParseDuration(l); err != nil || e.Lease < 2*time.Second {
			return etcdDB{}, fmt.Errorf("-db %q: lease=%q is not a duration of 2s or more", db, l)
		}
	}
	return e, nil
}

// OpenEtcd connects to the etcd cluster db names and takes an owner lease; see
// Open.
func Open(db string) (*Index, error) {
	ix, e, err := dialEtcd(db)
	if err != nil {
		return nil, err
	}
	ix.done = make(chan struct{})
	ctx, stop := context.WithCancel(context.Background())
	id, err := ix.grant(ctx, e.Lease)
	if err != nil {
		stop()
		ix.client.Close()
		return nil, fmt.Errorf("open index %s: %w", db, err)
	}
	ix.stop = stop
	go ix.keepAlive(ctx, id, e.Lease)
	return ix, nil
}

// dialEtcd connects to the etcd cluster db names, with no owner lease yet.
func dialEtcd(db string) (*Index, etcdDB, error) {
	e, err := parseEtcdDB(db)
	if err != nil {
		return nil, e, err
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, e, fmt.Errorf("open index %s: %w", db, err)
	}
	return &Index{client: client, prefix: e.Prefix, timeout: 5 * time.Second, heads: map[string]etcdHead{}, shards: map[string]etcdShard{}}, e, nil
}

// Close gives up the owner lease and closes the connection to etcd.
func (ix *Index) Close() error {
	ix.stop()
	<-ix.done
	return ix.client.Close()
}

func (ix *Index) recordKey(key string) string  { return ix.prefix + "k" + key }
func (ix *Index) pendingKey(key string) string { return ix.prefix + "p" + key }
func (ix *Index) entryKey(space, name string) string {
	return ix.prefix + "e" + space + "\x00" + name
}

// Get returns key's record.
func (ix *Index) Get(key string) (index.Record, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	var rec index.Record
	resp, err := ix.get(ctx, ix.recordKey(key))
	if err != nil {
		return rec, down("get", err)
	}
	if len(resp.Kvs) == 0 {
		return rec, index.ErrNotFound
	}
	if err := rec.UnmarshalBinary(resp.Kvs[0].Value); err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	rec.Rev = resp.Kvs[0].ModRevision
	ix.remember(key, rec.Rev, index.Head{State: rec.State, Size: rec.Size})
	return rec, nil
}

// current reads what is stored at k, if it is at rev, and with record its head (zero
// if there is none), or an error wrapping ErrConflict.
func (ix *Index) current(ctx context.Context, op, k string, rev int64, record bool) (index.Head, error) {
	resp, err := ix.get(ctx, k)
	if err != nil {
		return index.Head{}, down(op, err)
	}
	var head index.Head
	var cur int64
	if len(resp.Kvs) > 0 {
		cur = resp.Kvs[0].ModRevision
		if record {
			if head, err = index.ReadHead(resp.Kvs[0].Value); err != nil {
				return head, fmt.Errorf("index %s: %w", op, err)
			}
		}
	}
	if cur != rev {
		return head, fmt.Errorf("index %s %q: %w", op, k[len(ix.prefix)+1:], index.ErrConflict)
	}
	return head, nil
}

// write commits ops if k is still at rev, with the statistics changed from old to new
// in the same transaction, in one of the owner's shards, whose revision it compares
// too: if the shard changed meanwhile (another write of this process's took it, or a
// try that retry sent again was applied), it tries again with the shard as it is
// now. It returns the revision written.
func (ix *Index) write(ctx context.Context, op, k string, rev int64, old, new index.Head, ops ...clientv3.Op) (int64, error) {
	restat := old.State != new.State || old.Size != new.Size
	shard := ix.shardKey(ix.Owner(), rand.IntN(etcdStatsShards))
	for range etcdStatsTries {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(k), "=", rev)}
		all := ops
		var st index.Stats
		if restat {
			sh, err := ix.shard(ctx, shard)
			if err != nil {
				return 0, fmt.Errorf("index %s: %w", op, err)
			}
			st = sh.stats
			st.Replace(old, new)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(shard), "=", sh.rev))
			all = append(ops[:len(ops):len(ops)], clientv3.OpPut(shard, string(index.EncodeStats(st))))
		}
		orElse := []clientv3.Op{clientv3.OpGet(k)}
		if restat {
			orElse = append(orElse, clientv3.OpGet(shard))
		}
		tries := 0
		resp, err := retry(ix, ctx, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			tries++
			return ix.client.Txn(ctx).If(cmps...).Then(all...).Else(orElse...).Commit()
		})
		if err != nil {
			return 0, down(op, err)
		}
		if resp.Succeeded {
			if restat {
				ix.sawShard(shard, etcdShard{rev: resp.Header.Revision, stats: st})
			}
			return resp.Header.Revision, nil
		}
		if restat {
			if _, err := ix.readShard(shard, resp.Responses[1].GetResponseRange().Kvs); err != nil {
				return 0, fmt.Errorf("index %s: %w", op, err)
			}
		}
		// A try that retry sent again may have been applied, its answer lost. A
		// record's bytes hold the time of its write, so if k holds them, it was; a
		// delete was if k is gone (unless another deleted it in that moment).
		var cur int64
		kvs := resp.Responses[0].GetResponseRange().Kvs
		switch {
		case len(kvs) > 0 && op == "put" && bytes.Equal(kvs[0].Value, ops[0].ValueBytes()):
			return kvs[0].ModRevision, nil
		case len(kvs) > 0:
			cur = kvs[0].ModRevision
		case tries > 1 && ops[0].IsDelete() && rev != 0:
			return resp.Header.Revision, nil
		}
		switch {
		case cur != rev && tries > 1:
			// An earlier try may have been applied, and the key changed after it
			// (another master finished the delete it began, say): whether this write
			// took effect is unknown, never a conflict, which says it did not.
			return 0, down(op, fmt.Errorf("%q changed after a try that may have been applied", k[len(ix.prefix)+1:]))
		case cur != rev:
			return 0, fmt.Errorf("index %s %q: %w", op, k[len(ix.prefix)+1:], index.ErrConflict)
		}
		// Else the shard changed: again, with it as it is now.
	}
	return 0, fmt.Errorf("index %s: the statistics shard %s changed %d times in a row", op, shard, etcdStatsTries)
}

// Put stores *rec for key if its record is still at rec.Rev.
func (ix *Index) Put(key string, rec *index.Record) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.recordKey(key)
	old, ok := ix.head(key, rec.Rev)
	if !ok && rec.Rev != 0 { // zero: no record, and if there is one, a conflict
		var err error
		if old, err = ix.current(ctx, "put", k, rec.Rev, true); err != nil {
			return err
		}
	}
	stored, b, err := index.Stamped(*rec, ix.Owner())
	if err != nil {
		return err
	}
	pending := clientv3.OpDelete(ix.pendingKey(key))
	if rec.Pending() {
		pending = clientv3.OpPut(ix.pendingKey(key), "")
	}
	head := index.Head{State: rec.State, Size: rec.Size}
	rev, err := ix.write(ctx, "put", k, rec.Rev, old, head, clientv3.OpPut(k, string(b)), pending)
	if err != nil {
		return err
	}
	ix.remember(key, rev, head)
	rec.Time, rec.Rev, rec.Owner = stored.Time, rev, stored.Owner
	return nil
}

// Delete removes key if its record is still at rev.
func (ix *Index) Delete(key string, rev int64) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.recordKey(key)
	old, ok := ix.head(key, rev)
	if !ok || rev == 0 {
		var err error
		if old, err = ix.current(ctx, "delete", k, rev, true); err != nil || rev == 0 {
			return err
		}
	}
	_, err := ix.write(ctx, "delete", k, rev, old, index.Head{}, clientv3.OpDelete(k), clientv3.OpDelete(ix.pendingKey(key)))
	if err == nil {
		ix.remember(key, 0, index.Head{})
	}
	return err
}

// etcdPage is how many keys a range read takes at a time.
const etcdPage = 1000

// rangeKeys calls fn for every key from from (inclusive) to end (exclusive), a page at
// a time, until fn returns false or an error.
func (ix *Index) rangeKeys(op, from, end string, fn func(k string, value []byte, rev int64) (bool, error)) error {
	for {
		ctx, cancel := ix.ctx()
		resp, err := ix.get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(etcdPage))
		cancel()
		if err != nil {
			return down(op, err)
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
func (ix *Index) Scan(prefix, start string, fn func(key string, rec index.Record) (bool, error)) error {
	prefix = index.ScanPrefix(prefix)
	from := ix.recordKey(max(start, prefix))
	root := len(ix.recordKey(""))
	return ix.rangeKeys("scan", from, index.PrefixEnd(ix.recordKey(prefix)), func(k string, value []byte, rev int64) (bool, error) {
		var rec index.Record
		if err := rec.UnmarshalBinary(value); err != nil {
			return false, fmt.Errorf("index scan at %q: %w", k[root:], err)
		}
		rec.Rev = rev
		return fn(k[root:], rec)
	})
}

// Pending calls fn for every key with a pending entry.
func (ix *Index) Pending(fn func(key string) (bool, error)) error {
	p := ix.pendingKey("")
	return ix.rangeKeys("pending", p, index.PrefixEnd(p), func(k string, _ []byte, _ int64) (bool, error) {
		return fn(k[len(p):])
	})
}

// GetEntry returns name's value in space.
func (ix *Index) GetEntry(space, name string) ([]byte, int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	resp, err := ix.get(ctx, ix.entryKey(space, name))
	if err != nil {
		return nil, 0, down("get "+space+" entry", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, index.ErrNotFound
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, nil
}

// PutEntry stores value as name in space if the entry is still at rev.
func (ix *Index) PutEntry(space, name string, value []byte, rev int64) (int64, error) {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.entryKey(space, name)
	return ix.write(ctx, "put "+space+" entry", k, rev, index.Head{}, index.Head{}, clientv3.OpPut(k, string(value)))
}

// DeleteEntry removes name from space if the entry is still at rev.
func (ix *Index) DeleteEntry(space, name string, rev int64) error {
	ctx, cancel := ix.ctx()
	defer cancel()
	k := ix.entryKey(space, name)
	if rev == 0 {
		_, err := ix.current(ctx, "delete "+space+" entry", k, 0, false)
		return err
	}
	_, err := ix.write(ctx, "delete "+space+" entry", k, rev, index.Head{}, index.Head{}, clientv3.OpDelete(k))
	return err
}

// Entries calls fn for every entry of space from start on.
func (ix *Index) Entries(space, start string, fn func(name string, value []byte, rev int64) (bool, error)) error {
	p := ix.entryKey(space, "")
	return ix.rangeKeys(space+" entries", p+start, index.PrefixEnd(p), func(k string, value []byte, rev int64) (bool, error) {
		return fn(k[len(p):], value, rev)
	})
}

// etcdIndexExists reports whether anything is stored under db's prefix.
func Exists(db string) (bool, error) {
	ix, _, err := dialEtcd(db)
	if err != nil {
		return false, err
	}
	defer ix.client.Close()
	ctx, cancel := ix.ctx()
	defer cancel()
	resp, err := ix.get(ctx, ix.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return false, down(db, err)
	}
	return resp.Count > 0, nil
}

// removeEtcdIndex deletes everything under db's prefix.
func Remove(db string) error {
	ix, _, err := dialEtcd(db)
	if err != nil {
		return err
	}
	defer ix.client.Close()
	ctx, cancel := ix.ctx()
	defer cancel()
	if _, err := ix.client.Delete(ctx, ix.prefix, clientv3.WithPrefix()); err != nil {
		return down("remove "+db, err)
	}
	return nil
}
