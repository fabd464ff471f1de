package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// RecordState is where a key is in its life.
type RecordState uint8

const (
	// StateWriting: a PUT is storing the replicas, or died doing so. Not visible to
	// clients; a record left in this state by a crash is a trace for cleanup.
	StateWriting RecordState = 1
	// StateLive: every replica is stored; GET redirects to one.
	StateLive RecordState = 2
	// StateUnlinked: soft-deleted by UNLINK; hidden from GET and ?list, files kept.
	StateUnlinked RecordState = 3
	// StateDeleting: a DELETE is removing the replicas, or failed to; hidden from
	// clients, and a repeated DELETE finishes the job.
	StateDeleting RecordState = 4
)

func (s RecordState) String() string {
	switch s {
	case StateWriting:
		return "writing"
	case StateLive:
		return "live"
	case StateUnlinked:
		return "unlinked"
	case StateDeleting:
		return "deleting"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Record is what the index stores for a key.
type Record struct {
	State RecordState
	// Volumes hold the replicas, in placement preference order: where they really
	// are, which after a change of volumes may differ from where placement wants them.
	Volumes []string
	// Sub is the subvolume the replicas are under (see KeyPath).
	Sub int
	// Size is the value's length in bytes.
	Size int64
	// MD5 is the hex MD5 of the value, or empty if it was not computed.
	MD5 string
	// Time is when the record was last written, in Unix nanoseconds, so that cleanup
	// can tell a write in flight from one a crash abandoned.
	Time int64
	// Leftovers are volumes that still hold an old replica (and marker) of the key,
	// which rebalance moved away from: kept for a grace period so that redirects
	// already sent still land, then deleted. Recording them means that no crash
	// can leave them behind untracked.
	Leftovers []string
}

// recordVersion is the first byte of every encoded Record. A change to the encoding
// gets a new version, and UnmarshalBinary keeps reading the old ones. Version 1 had no
// Leftovers.
const recordVersion = 2

// ErrBadRecord says an index value could not be decoded.
var ErrBadRecord = errors.New("bad index record")

// MarshalBinary encodes r compactly, since an index may hold billions of records and
// every GET decodes one: the version byte, the state byte, then as varints Sub, Size and
// Time, the MD5 as a length byte (0 or 16) and raw bytes, then Volumes and Leftovers,
// each as a count followed by every name's length and bytes.
func (r Record) MarshalBinary() ([]byte, error) {
	var sum []byte
	if r.MD5 != "" {
		var err error
		if sum, err = hex.DecodeString(r.MD5); err != nil || len(sum) != md5.Size {
			return nil, fmt.Errorf("encode record: md5 %q is not 32 hex digits", r.MD5)
		}
	}
	b := make([]byte, 0, 40+len(r.Volumes)*24)
	b = append(b, recordVersion, byte(r.State))
	b = binary.AppendUvarint(b, uint64(r.Sub))
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.Time)
	b = append(b, byte(len(sum)))
	b = append(b, sum...)
	b = appendStrings(b, r.Volumes)
	b = appendStrings(b, r.Leftovers)
	return b, nil
}

func appendStrings(b []byte, list []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, v := range list {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < 2 || b[0] < 1 || b[0] > recordVersion {
		return fmt.Errorf("%w: unknown version", ErrBadRecord)
	}
	d := recordDecoder{b: b[2:]}
	rec := Record{State: RecordState(b[1])}
	rec.Sub = int(d.uvarint())
	rec.Size = d.varint()
	rec.Time = d.varint()
	if sum := d.bytes(uint64(d.byte1())); len(sum) > 0 {
		rec.MD5 = hex.EncodeToString(sum)
	}
	rec.Volumes = d.strings()
	if b[0] >= 2 {
		rec.Leftovers = d.strings()
	}
	if d.err || len(d.b) != 0 {
		return fmt.Errorf("%w: truncated or trailing bytes", ErrBadRecord)
	}
	*r = rec
	return nil
}

// recordDecoder reads the parts of an encoded Record, remembering the first error.
type recordDecoder struct {
	b   []byte
	err bool
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) strings() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	if n == 0 {
		return nil
	}
	list := make([]string, 0, n)
	for i := uint64(0); i < n && !d.err; i++ {
		list = append(list, string(d.bytes(d.uvarint())))
	}
	return list
}

// varint undoes binary.AppendVarint's zig-zag encoding.
func (d *recordDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *recordDecoder) byte1() byte {
	if b := d.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (d *recordDecoder) bytes(n uint64) []byte {
	if n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// Index maps keys to Records in LevelDB. Keys are stored as they are, so LevelDB's order
// is key order and a prefix is a range. Every key starts with '/'; the index's own
// entries sort before them: a pending entry (pendingPrefix + key) marks each record in
// StateWriting or StateDeleting, written in the same batch, so that the writes and
// deletes a crash interrupted are found without reading the whole index.
type Index struct {
	db   *leveldb.DB
	sync bool
}

// OpenIndex opens or creates the index at path. sync makes every write wait for the
// disk, so that it survives a power loss, not only a crash of the process.
func OpenIndex(path string, sync bool) (*Index, error) {
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	return &Index{db: db, sync: sync}, nil
}

// Close closes the index.
func (ix *Index) Close() error { return ix.db.Close() }

// Get returns key's record, or an error wrapping ErrNotFound.
func (ix *Index) Get(key string) (Record, error) {
	var rec Record
	b, err := ix.db.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return rec, ErrNotFound
	}
	if err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	if err := rec.UnmarshalBinary(b); err != nil {
		return rec, fmt.Errorf("index get: %w", err)
	}
	return rec, nil
}

// pendingPrefix starts the index's entries for unfinished writes and deletes.
const pendingPrefix = "\x00pending"

// Put stores rec for key, stamping its Time, and marks or unmarks it as pending.
func (ix *Index) Put(key string, rec Record) error {
	rec.Time = time.Now().UnixNano()
	b, err := rec.MarshalBinary()
	if err != nil {
		return err
	}
	batch := new(leveldb.Batch)
	batch.Put([]byte(key), b)
	if rec.State == StateWriting || rec.State == StateDeleting {
		batch.Put([]byte(pendingPrefix+key), nil)
	} else {
		batch.Delete([]byte(pendingPrefix + key))
	}
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		return fmt.Errorf("index put: %w", err)
	}
	return nil
}

// Delete removes key.
func (ix *Index) Delete(key string) error {
	batch := new(leveldb.Batch)
	batch.Delete([]byte(key))
	batch.Delete([]byte(pendingPrefix + key))
	if err := ix.db.Write(batch, &opt.WriteOptions{Sync: ix.sync}); err != nil {
		return fmt.Errorf("index delete: %w", err)
	}
	return nil
}

// Pending calls fn for every key whose record is in StateWriting or StateDeleting,
// until fn returns false or an error.
func (ix *Index) Pending(fn func(key string) (bool, error)) error {
	it := ix.db.NewIterator(util.BytesPrefix([]byte(pendingPrefix)), nil)
	defer it.Release()
	for it.Next() {
		more, err := fn(string(it.Key()[len(pendingPrefix):]))
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index pending: %w", err)
	}
	return nil
}

// Scan calls fn for every key with prefix, from start on (if start sorts after prefix), in
// key order, until fn returns false or an error. Keys start with '/', so an empty prefix
// is "/": the index's own entries are never scanned.
func (ix *Index) Scan(prefix, start string, fn func(key string, rec Record) (bool, error)) error {
	prefix = "/" + strings.TrimPrefix(prefix, "/")
	it := ix.db.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	ok := it.First()
	if start > prefix {
		ok = it.Seek([]byte(start))
	}
	for ; ok; ok = it.Next() {
		var rec Record
		if err := rec.UnmarshalBinary(it.Value()); err != nil {
			return fmt.Errorf("index scan at %q: %w", it.Key(), err)
		}
		more, err := fn(string(it.Key()), rec)
		if err != nil || !more {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("index scan: %w", err)
	}
	return nil
}

// lockRecord locks key against other writers and reads its record. Unless it fails,
// the caller must unlock.
func (m *Master) lockRecord(key string) (rec Record, unlock func(), err error) {
	unlock, ok := m.locks.tryLock(key)
	if !ok {
		return rec, nil, ErrLocked
	}
	if rec, err = m.index.Get(key); err != nil {
		unlock()
		return rec, nil, err
	}
	return rec, unlock, nil
}

// keyLocks holds the keys that have a PUT, DELETE or UNLINK in flight. A second writer
// is refused at once rather than queued: a client that races itself should hear so.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]struct{}
}

// tryLock locks key and returns its unlock, or false if key is already locked.
func (l *keyLocks) tryLock(key string) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[key]; busy {
		return nil, false
	}
	if l.held == nil {
		l.held = make(map[string]struct{})
	}
	l.held[key] = struct{}{}
	return func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
	}, true
}

// The errors the master answers with; writeError maps each to its status.
var (
	ErrNotFound    = errors.New("key not found")
	ErrExists      = errors.New("key already exists; DELETE it first")
	ErrLocked      = errors.New("another write to this key is in flight")
	ErrBadKey      = errors.New("bad key")
	ErrReservedKey = errors.New("reserved key")
	ErrBadRequest  = errors.New("bad request")
	ErrEmptyBody   = errors.New("empty body")
	ErrBadDigest   = errors.New("value does not match Content-MD5")
	ErrClientBody  = errors.New("reading the request body failed")
	ErrProtected   = errors.New("key is protected; UNLINK it first")
	ErrNoVolumes   = errors.New("not enough volumes up")
	ErrTooManyKeys = errors.New("more than 1000000 keys; use limit")
	ErrMethod      = errors.New("method not allowed")
)

const (
	maxKeyLen   = 1024
	maxListKeys = 1_000_000
	// chunkSize is how much of a PUT body the master reads at a time. Three such
	// buffers per PUT are all the memory a value costs, however large it is.
	chunkSize = 256 << 10
	// bodyIdleTimeout bounds how long a PUT waits for the client's next bytes.
	bodyIdleTimeout = 60 * time.Second
	healthPath      = "/health"
	allowedMethods  = "GET, HEAD, PUT, DELETE, UNLINK, REBALANCE, VERIFY"
)

// checkKey returns why key cannot be stored, or nil.
func checkKey(key string) error {
	switch {
	case key == "" || key == "/":
		return fmt.Errorf("%w: empty key", ErrBadKey)
	case key[0] != '/':
		return fmt.Errorf("%w: key must start with /", ErrBadKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrBadKey, maxKeyLen)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key contains a NUL byte", ErrBadKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrBadKey)
	case key == healthPath:
		return fmt.Errorf("%w: %s is the health endpoint", ErrReservedKey, healthPath)
	}
	for seg := range strings.SplitSeq(key[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: key has a %q path segment", ErrBadKey, seg)
		}
	}
	return nil
}

// Master is the HTTP front of davkv: it owns the index and sends clients to the volumes.
type Master struct {
	cfg        ServerConfig
	index      *Index
	placement  Placement
	client     *VolumeClient
	health     *Health
	rebalancer *Rebalancer
	locks      keyLocks
	log        *slog.Logger
	buffers    sync.Pool
	// background runs the health probes and sweepLeftovers.
	background sync.WaitGroup
	sweepMu    sync.Mutex
	sweepQueue []pendingSweep
	sweepWake  chan struct{}
}

// NewMaster opens the index and prepares, but does not start, the volume health probes.
func NewMaster(cfg ServerConfig, log *slog.Logger) (*Master, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	index, err := OpenIndex(cfg.DB, cfg.Sync)
	if err != nil {
		return nil, err
	}
	client := NewVolumeClient(cfg.VolTimeout)
	m := &Master{
		cfg:       cfg,
		index:     index,
		placement: cfg.Placement(),
		client:    client,
		health:    NewHealth(client, cfg.Volumes, healthInterval),
		log:       log,
	}
	m.rebalancer = &Rebalancer{Client: client, Placement: m.placement, Grace: cfg.Grace}
	m.sweepWake = make(chan struct{}, 1)
	m.buffers.New = func() any { b := make([]byte, chunkSize); return &b }
	return m, nil
}

// healthInterval is how often every volume is probed; with the probe's own timeout it
// bounds how long a dead, unused volume goes unnoticed.
const healthInterval = 500 * time.Millisecond

// Start begins the health probes, the recovery of writes and deletes that a crash
// interrupted, and the deletion of old replicas after rebalancing; they stop when ctx
// ends, and Wait waits for that.
func (m *Master) Start(ctx context.Context) {
	m.health.Start(ctx, &m.background)
	m.background.Go(func() { m.recover(ctx) })
	m.background.Go(func() { m.sweepLeftovers(ctx) })
}

// recover finishes what the last master left pending: a write that never got its 201
// loses its replicas and its record, a delete is completed. It runs beside the
// requests, under each key's lock; a key a request holds is that request's to finish
// (a PUT clears a dead write first, a DELETE completes a dead delete). What cannot be
// finished now, with a volume down, stays pending for the next start or verify.
func (m *Master) recover(ctx context.Context) {
	var writes, deletes, failed int
	err := m.index.Pending(func(key string) (bool, error) {
		rec, unlock, err := m.lockRecord(key)
		if errors.Is(err, ErrLocked) {
			return ctx.Err() == nil, nil
		}
		if err != nil {
			return false, err
		}
		defer unlock()
		if rec.State != StateWriting && rec.State != StateDeleting {
			return true, nil // finished meanwhile
		}
		rctx, cancel := context.WithTimeout(ctx, 4*m.cfg.VolTimeout)
		defer cancel()
		if err := m.removeReplicas(rctx, key, rec, rec.State == StateDeleting); err != nil {
			failed++
			m.log.Warn("interrupted write or delete not cleaned up; verify -fix will", "key", key, "state", rec.State, "err", err)
			return ctx.Err() == nil, nil
		}
		if rec.State == StateWriting {
			writes++
		} else {
			deletes++
		}
		return ctx.Err() == nil, m.index.Delete(key)
	})
	if err != nil && ctx.Err() == nil {
		m.log.Error("recovery stopped", "err", err)
	}
	if writes+deletes+failed > 0 {
		m.log.Info("recovered from an earlier crash", "writes rolled back", writes, "deletes completed", deletes, "left pending", failed)
	}
}

// Wait waits until the work Start began has stopped.
func (m *Master) Wait() { m.background.Wait() }

// Close closes the index and the idle connections to volumes. The work Start began
// must have stopped.
func (m *Master) Close() error {
	m.client.CloseIdle()
	return m.index.Close()
}

// ServeHTTP parses the request, checks it, and hands it to the method's handler.
func (m *Master) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var start time.Time
	if m.cfg.Verbose {
		start = time.Now()
	}
	key := r.URL.Path
	err := m.serve(w, r, key)
	if err != nil {
		m.writeError(w, r, key, err)
	}
	if m.cfg.Verbose {
		m.log.Info("request", "method", r.Method, "key", key, "query", r.URL.RawQuery, "took", time.Since(start), "err", err)
	}
}

func (m *Master) serve(w http.ResponseWriter, r *http.Request, key string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, "UNLINK", "REBALANCE", "VERIFY":
	default:
		return ErrMethod
	}
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		switch {
		case key == healthPath:
			return writeJSON(w, struct {
				Volumes []VolumeStatus `json:"volumes"`
			}{m.health.Status()})
		case q.Has("list"):
			return m.list(w, key, q, StateLive)
		case q.Has("unlinked"):
			return m.list(w, key, q, StateUnlinked)
		case q.Has("pending"):
			return m.list(w, key, q, StateWriting, StateDeleting)
		}
	}
	if r.Method == "VERIFY" && q.Has("file") {
		return m.verifyFile(w, q)
	}
	if err := checkKey(key); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodPut:
		return m.put(w, r, key)
	case http.MethodDelete:
		return m.delete(w, r, key)
	case "UNLINK":
		return m.unlink(w, r, key)
	case "REBALANCE":
		return m.rebalance(w, r, key)
	case "VERIFY":
		return m.verifyKey(w, r, key, q)
	}
	return m.get(w, key)
}

// get redirects to a replica on a volume that is up, without asking the volume.
func (m *Master) get(w http.ResponseWriter, key string) error {
	rec, err := m.index.Get(key)
	if errors.Is(err, ErrNotFound) || (err == nil && rec.State != StateLive) {
		if m.cfg.Fallback != "" {
			redirect(w, "http://"+m.cfg.Fallback+key)
			return nil
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	up := 0
	for _, v := range rec.Volumes {
		if m.health.Up(v) {
			up++
		}
	}
	if up == 0 {
		return fmt.Errorf("%w: every volume holding the key is down", ErrNoVolumes)
	}
	pick := rand.IntN(up)
	for _, v := range rec.Volumes {
		if !m.health.Up(v) {
			continue
		}
		if pick == 0 {
			if rec.MD5 != "" {
				h := w.Header()
				h["Content-Md5"] = []string{rec.MD5}
				h["Etag"] = []string{`"` + rec.MD5 + `"`}
			}
			redirect(w, m.client.URL(v, KeyPath(key, rec.Sub)))
			return nil
		}
		pick--
	}
	panic("unreachable: no up volume after counting one")
}

func redirect(w http.ResponseWriter, location string) {
	h := w.Header()
	h["Location"] = []string{location}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusFound)
}

// ListPage is the answer to ?list and ?unlinked.
type ListPage struct {
	// Next is the first key of the following page, or empty at the end.
	Next string   `json:"next"`
	Keys []string `json:"keys"`
}

func (m *Master) list(w http.ResponseWriter, prefix string, q url.Values, states ...RecordState) error {
	limit := maxListKeys
	tooMany := ErrTooManyKeys
	if s := get1(q, "limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListKeys {
			return fmt.Errorf("%w: limit must be a number from 1 to %d", ErrBadRequest, maxListKeys)
		}
		limit, tooMany = n, nil
	}
	page := ListPage{Keys: []string{}}
	err := m.index.Scan(prefix, get1(q, "start"), func(key string, rec Record) (bool, error) {
		if !slices.Contains(states, rec.State) {
			return true, nil
		}
		if len(page.Keys) == limit {
			if tooMany != nil {
				return false, tooMany
			}
			page.Next = key
			return false, nil
		}
		page.Keys = append(page.Keys, key)
		return true, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, page)
}

func get1(q url.Values, name string) string {
	if v := q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.Write(append(b, '\n'))
	return nil
}

// put stores the body on every chosen volume at once, streaming, and makes the key
// live only when all of them have it. On any failure it removes what was written.
func (m *Master) put(w http.ResponseWriter, r *http.Request, key string) error {
	if r.ContentLength == 0 {
		return ErrEmptyBody
	}
	want, err := parseContentMD5(r.Header.Get("Content-Md5"))
	if err != nil {
		return err
	}
	unlock, ok := m.locks.tryLock(key)
	if !ok {
		return ErrLocked
	}
	defer unlock()

	old, err := m.index.Get(key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	case old.State == StateWriting:
		// A write that died before finishing (we hold the lock, so it is not in flight):
		// clear its leftovers before writing anew.
		if err := m.removeReplicas(r.Context(), key, old, false); err != nil {
			return err
		}
	default:
		return ErrExists
	}

	// Read the first chunk before touching any volume: an empty chunked body is refused
	// without a trace, and a value that fits in one chunk is sent as plain requests.
	bufp := m.buffers.Get().(*[]byte)
	defer m.buffers.Put(bufp)
	rc := http.NewResponseController(w)
	first, eof, err := fill(r.Body, *bufp, rc)
	if err != nil {
		return err
	}
	if len(first) == 0 {
		return ErrEmptyBody
	}

	// The key's volumes in rendezvous order, skipping those known to be down: its
	// first choices if they are up, the next ones in its order if not.
	var up, down []string
	for _, v := range m.placement.Rank(key) {
		if m.health.Up(v) {
			up = append(up, v)
		} else {
			down = append(down, v)
		}
	}
	minOK := cmp.Or(m.cfg.MinReplicas, m.cfg.Replicas)
	if len(up) < minOK {
		return fmt.Errorf("%w: %d of %d volumes are up (down: %s), %d replicas needed",
			ErrNoVolumes, len(up), len(m.cfg.Volumes), strings.Join(down, ", "), minOK)
	}
	// A few fallbacks (as many as replicas) are enough to ride out volumes dying
	// during the write; the record, and a crash's cleanup, stay small however many
	// volumes there are.
	n := min(m.cfg.Replicas, len(up))
	vols, spares := up[:n], up[n:min(2*n, len(up))]
	// Until the write commits, the record names every volume it may touch, fallbacks
	// included, for the cleanup of a crash.
	rec := Record{State: StateWriting, Volumes: vols, Leftovers: spares, Sub: m.placement.Subvolume(key)}
	if err := m.index.Put(key, rec); err != nil {
		return err
	}
	res, err := m.replicate(r.Context(), rc, r.Body, first, eof, r.ContentLength, vols, spares, KeyPath(key, rec.Sub), want)
	if err == nil && len(res.written) < minOK {
		err = fmt.Errorf("%w: %d replicas written, %d needed", ErrNoVolumes, len(res.written), minOK)
	}
	if err != nil {
		// Clean up even when the client is gone: use a context of our own.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 4*m.cfg.VolTimeout)
		defer cancel()
		written := rec
		written.Volumes, written.Leftovers = append(res.written, res.mayHold...), nil
		if cerr := m.removeReplicas(ctx, key, written, false); cerr != nil {
			m.log.Error("cleanup after failed put left a trace", "key", key, "err", cerr)
		} else if cerr := m.index.Delete(key); cerr != nil {
			m.log.Error("cleanup after failed put left a trace", "key", key, "err", cerr)
		}
		return err
	}
	rec.State, rec.Size, rec.MD5 = StateLive, res.size, res.sum
	// up is in the key's rank order: keep the volumes written, in that order.
	rec.Volumes = slices.DeleteFunc(slices.Clone(up), func(v string) bool { return !slices.Contains(res.written, v) })
	rec.Leftovers = res.mayHold
	if err := m.index.Put(key, rec); err != nil {
		return err
	}
	if len(rec.Leftovers) > 0 {
		// A volume that did not answer may still store the value when it comes
		// back: delete it there once it does.
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	if len(rec.Volumes) < m.cfg.Replicas {
		m.log.Warn("under-replicated: fewer volumes are up than -replicas", "key", key, "volumes", strings.Join(rec.Volumes, ","))
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// parseContentMD5 decodes a Content-MD5 header, base64 as RFC 1864 has it or hex. It
// returns nil for an empty header.
func parseContentMD5(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == md5.Size {
		return b, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == md5.Size {
		return b, nil
	}
	return nil, fmt.Errorf("%w: Content-MD5 is neither base64 nor hex of 16 bytes", ErrBadRequest)
}

// fill reads body into buf until buf is full or the body ends. eof says the body ended.
// Each read may wait bodyIdleTimeout for the client. A read that fails is the client's
// fault (it hung up, or sent less than its Content-Length) and wraps ErrClientBody.
func fill(body io.Reader, buf []byte, rc *http.ResponseController) (data []byte, eof bool, err error) {
	n := 0
	for n < len(buf) {
		rc.SetReadDeadline(time.Now().Add(bodyIdleTimeout))
		k, err := body.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			return buf[:n], true, nil
		}
		if err != nil {
			return buf[:n], false, fmt.Errorf("%w: %w", ErrClientBody, err)
		}
	}
	return buf[:n], false, nil
}

// replicaResult is what replicate did: the value's size and hex MD5, the volumes that
// hold it, and those that failed but may still hold it (and need cleaning up).
type replicaResult struct {
	size             int64
	sum              string
	written, mayHold []string
}

// replicate sends a PUT body to every volume in vols at once. first is the body's
// first chunk, already read; eof says it was all of it.
//
// A value that fits in one chunk goes out as plain requests, and a volume that does not
// answer is replaced by the next of spares (for a larger one, only a volume that cannot
// be reached at all, before any of the body is sent). A larger one streams through an Upload per
// volume, with three chunk buffers: one being written to every volume, one read but
// held back, one being read. The last chunk is held back until the body has ended and
// its MD5 is checked, so that no volume ever sees a complete body that the client did
// not send in full and correctly: a write aborted before then leaves nothing anywhere,
// since nginx only renames a body into place once it is whole.
func (m *Master) replicate(ctx context.Context, rc *http.ResponseController, body io.Reader, first []byte, eof bool, size int64, vols, spares []string, path string, want []byte) (res replicaResult, err error) {
	var h hash.Hash
	if m.cfg.MD5Sum || want != nil {
		h = md5.New()
	}
	check := func() (string, error) {
		if h == nil {
			return "", nil
		}
		got := h.Sum(nil)
		if want != nil && !bytes.Equal(got, want) {
			return "", fmt.Errorf("%w: got %x, want %x", ErrBadDigest, got, want)
		}
		if !m.cfg.MD5Sum {
			return "", nil
		}
		return md5Hex(got), nil
	}

	if eof {
		if h != nil {
			h.Write(first)
		}
		if res.sum, err = check(); err != nil {
			return res, err
		}
		res.size = int64(len(first))
		res.written, res.mayHold, err = m.putSmall(ctx, path, first, vols, spares)
		return res, err
	}

	// Start an upload to every volume; one that cannot be reached is replaced by the
	// next of spares, which is safe as long as no byte of the body has been sent.
	uploads := make([]*Upload, len(vols))
	vols = slices.Clone(vols)
	var sparesMu sync.Mutex
	err = parallel(replicaIndexes(len(vols)), func(i int) error {
		for {
			v := vols[i]
			u, err := m.client.StartUpload(ctx, v, path, size, func() bool { return m.health.Up(v) })
			m.health.Failed(err)
			if err == nil {
				uploads[i] = u
				return nil
			}
			var ve *VolumeError
			sparesMu.Lock()
			next := ""
			if errors.As(err, &ve) && ve.Unreachable() && len(spares) > 0 && ctx.Err() == nil {
				next, spares = spares[0], spares[1:]
			}
			sparesMu.Unlock()
			if next == "" {
				return err
			}
			vols[i] = next
		}
	})
	// abort ends every upload early: no volume got the body whole, so none keeps it.
	abort := func(cause error) (replicaResult, error) {
		for _, u := range uploads {
			if u != nil {
				u.Abort()
			}
		}
		return replicaResult{}, cause
	}
	if err != nil {
		return abort(err)
	}
	// send writes chunk to every volume and, meanwhile, adds it to the hash, so that
	// hashing costs no time on a machine with a core to spare.
	send := func(chunk []byte, hashIt bool) <-chan error {
		done := make(chan error, 1)
		go func() {
			hashed := make(chan struct{})
			if hashIt && h != nil {
				go func() { h.Write(chunk); close(hashed) }()
			} else {
				close(hashed)
			}
			err := parallel(uploads, func(u *Upload) error {
				_, err := u.Write(chunk)
				m.health.Failed(err)
				return err
			})
			<-hashed
			done <- err
		}()
		return done
	}

	b1, b2 := m.buffers.Get().(*[]byte), m.buffers.Get().(*[]byte)
	defer m.buffers.Put(b1)
	defer m.buffers.Put(b2)
	bufs := [3][]byte{first[:cap(first)], *b1, *b2}
	// held is read but not sent; reading is being filled; idle is in flight or unused.
	held, reading, idle := 0, 1, 2
	heldLen := len(first)
	total := int64(len(first))
	var inflight <-chan error
	for !eof {
		var next []byte
		var rerr error
		next, eof, rerr = fill(body, bufs[reading], rc)
		if inflight != nil {
			if werr := <-inflight; werr != nil {
				return abort(werr)
			}
		}
		if rerr != nil {
			return abort(rerr)
		}
		if len(next) == 0 {
			break
		}
		total += int64(len(next))
		inflight = send(bufs[held][:heldLen], true)
		held, reading, idle = reading, idle, held
		heldLen = len(next)
	}
	if inflight != nil {
		if werr := <-inflight; werr != nil {
			return abort(werr)
		}
	}
	if h != nil {
		h.Write(bufs[held][:heldLen])
	}
	if res.sum, err = check(); err != nil {
		return abort(err)
	}
	if werr := <-send(bufs[held][:heldLen], false); werr != nil {
		return abort(werr)
	}
	results := make([]error, len(vols))
	parallel(replicaIndexes(len(vols)), func(i int) error {
		results[i] = uploads[i].Finish()
		m.health.Failed(results[i])
		return nil
	})
	for i, err := range results {
		if err == nil {
			res.written = append(res.written, vols[i])
		} else if mayHaveStored(err) {
			res.mayHold = append(res.mayHold, vols[i])
		}
	}
	res.size = total
	return res, errors.Join(results...)
}

// putSmall stores data on every volume of vols at once. A volume that does not answer
// is marked down and replaced by the next of spares, so that a volume dying under
// load costs no PUT; one that answers with an error (a full disk) fails the PUT.
func (m *Master) putSmall(ctx context.Context, path string, data []byte, vols, spares []string) (written, mayHold []string, err error) {
	var errs []error
	for targets := vols; len(targets) > 0; {
		var next []string
		for i, err := range m.client.PutAll(ctx, targets, path, data) {
			m.health.Failed(err)
			var ve *VolumeError
			switch {
			case err == nil:
				written = append(written, targets[i])
				continue
			case mayHaveStored(err):
				mayHold = append(mayHold, targets[i])
			}
			if errors.As(err, &ve) && ve.Unreachable() && len(spares) > 0 && ctx.Err() == nil {
				next, spares = append(next, spares[0]), spares[1:]
				continue
			}
			errs = append(errs, err)
		}
		targets = next
	}
	return written, mayHold, errors.Join(errs...)
}

// replicaIndexes returns 0 to n-1, for running something per replica with parallel.
func replicaIndexes(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// mayHaveStored reports whether a replica write that ended with err (nil for success)
// can have left a complete file on its volume. Only a volume that answered with an error status
// (nginx renames a body into place only on success) or that could not be reached at
// all proves it holds nothing.
func mayHaveStored(err error) bool {
	var ve *VolumeError
	if errors.As(err, &ve) && ve.Status != 0 {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
}

// parallel runs fn for every item at once and joins their errors. The last item runs
// on the calling goroutine: a new goroutine's stack must grow to what an HTTP request
// needs, which cost the master a tenth of its CPU when every item had its own.
func parallel[T any](items []T, fn func(T) error) error {
	if len(items) == 0 {
		return nil
	}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	last := len(items) - 1
	for i, it := range items[:last] {
		wg.Go(func() { errs[i] = fn(it) })
	}
	errs[last] = fn(items[last])
	wg.Wait()
	return errors.Join(errs...)
}

// removeReplicas deletes key's value from every volume rec names, leftovers included,
// and if markers its unlink markers (see removeFiles). Only a key that was unlinked, or
// whose deletion was interrupted, needs the markers removed: a live key has some only
// where an UNLINK failed halfway, and rebuild ignores a marker without a value, so
// sparing the requests is safe. Files already gone are fine; any other failure is
// returned, and the caller keeps the index record as a trace.
func (m *Master) removeReplicas(ctx context.Context, key string, rec Record, markers bool) error {
	vols := append(slices.Clone(rec.Volumes), rec.Leftovers...)
	err := removeFiles(ctx, m.client, key, rec.Sub, vols, markers)
	m.health.Failed(err)
	return err
}

// rebalance moves key to where the master's volumes place it, under the key's lock, and
// answers with the KeyMove as JSON; with ?dry-run it only says what would move. Old
// replicas stay for the grace period, so redirects already sent still land.
func (m *Master) rebalance(w http.ResponseWriter, r *http.Request, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	if rec.State != StateLive && rec.State != StateUnlinked {
		return ErrNotFound
	}
	if r.URL.Query().Has("dry-run") {
		return writeJSON(w, m.rebalancer.Plan(key, rec))
	}
	mv, err := m.rebalancer.Move(r.Context(), key, rec, func(rec Record) error { return m.index.Put(key, rec) })
	if err != nil {
		return err
	}
	if mv.Moves() {
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	return writeJSON(w, mv)
}

// verifier returns a verifier over the master's index for one VERIFY request, set by
// its query: deep, fix, grace.
func (m *Master) verifier(q url.Values) (*verifier, error) {
	cfg := VerifyConfig{ClusterConfig: m.cfg.ClusterConfig, Deep: q.Has("deep"), Fix: q.Has("fix"), Grace: time.Hour}
	if g := get1(q, "grace"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: grace must be a duration", ErrBadRequest)
		}
		cfg.Grace = d
	}
	return newVerifier(cfg, m.client, m.index, m.log, m.rebalancer), nil
}

// verifyKey checks key against its replicas under its lock, repairs it with ?fix, and
// answers the findings as JSON. Old replicas a repair moved away from are deleted after
// the grace period, as after REBALANCE.
func (m *Master) verifyKey(w http.ResponseWriter, r *http.Request, key string, q url.Values) error {
	v, err := m.verifier(q)
	if err != nil {
		return err
	}
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	v.checkKey(r.Context(), key, rec)
	if after, err := m.index.Get(key); err == nil && len(after.Leftovers) > 0 {
		m.deleteLeftoversLater(key, m.cfg.Grace)
	}
	return writeJSON(w, v.report.findings)
}

// verifyFile checks that a file found on a volume (?file=volume/path, with its
// ?mtime as nginx lists it) belongs to a key, deletes it with ?fix if not and older
// than the grace period, and answers the findings as JSON.
func (m *Master) verifyFile(w http.ResponseWriter, q url.Values) error {
	v, err := m.verifier(q)
	if err != nil {
		return err
	}
	volume, path, ok := strings.Cut(get1(q, "file"), "/")
	if !ok {
		return fmt.Errorf("%w: file must be volume/path", ErrBadRequest)
	}
	v.checkFile(context.Background(), volume, path, DirEntry{Name: path, Type: "file", MTime: get1(q, "mtime")})
	return writeJSON(w, v.report.findings)
}

// pendingSweep is a key whose old replicas may be deleted from due on.
type pendingSweep struct {
	key      string
	due      time.Time
	attempts int
}

// sweepRetries and sweepRetryDelay bound how long the sweeper keeps trying a volume
// that is down; after that, the next rebalance or verify -fix deletes the replicas.
const (
	sweepRetries    = 20
	sweepRetryDelay = 5 * time.Second
)

// deleteLeftoversLater queues key's old replicas for deletion once after has passed.
func (m *Master) deleteLeftoversLater(key string, after time.Duration) {
	m.queueSweep(pendingSweep{key: key, due: time.Now().Add(after)})
}

func (m *Master) queueSweep(p pendingSweep) {
	m.sweepMu.Lock()
	m.sweepQueue = append(m.sweepQueue, p)
	m.sweepMu.Unlock()
	select {
	case m.sweepWake <- struct{}{}:
	default:
	}
}

// sweepLeftovers deletes queued old replicas as they fall due, under each key's lock,
// until ctx ends, trying again while a volume is down. Every key gets the same grace,
// so the queue is in due order but for retries, which only come late. A master that stops first leaves the rest recorded in
// the index, for the next rebalance of the key to delete.
func (m *Master) sweepLeftovers(ctx context.Context) {
	for {
		m.sweepMu.Lock()
		var next pendingSweep
		if len(m.sweepQueue) > 0 {
			next = m.sweepQueue[0]
		}
		m.sweepMu.Unlock()
		var wait <-chan time.Time
		if next.key != "" {
			if d := time.Until(next.due); d > 0 {
				wait = time.After(d)
			}
		}
		if next.key == "" || wait != nil {
			select {
			case <-ctx.Done():
				return
			case <-m.sweepWake:
			case <-wait:
			}
			continue
		}
		m.sweepMu.Lock()
		m.sweepQueue = m.sweepQueue[1:]
		m.sweepMu.Unlock()
		err := m.sweep(ctx, next.key)
		switch {
		case errors.Is(err, ErrLocked):
			m.deleteLeftoversLater(next.key, time.Second)
		case err != nil && next.attempts < sweepRetries:
			m.queueSweep(pendingSweep{key: next.key, due: time.Now().Add(sweepRetryDelay), attempts: next.attempts + 1})
		case err != nil:
			m.log.Warn("old replicas not deleted; the next rebalance or verify -fix will", "key", next.key, "err", err)
		}
	}
}

func (m *Master) sweep(ctx context.Context, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, 4*m.cfg.VolTimeout)
	defer cancel()
	return m.rebalancer.DeleteLeftovers(ctx, key, rec, func(rec Record) error { return m.index.Put(key, rec) })
}

// delete removes the value from every replica, then the key from the index. If a
// volume fails, the key stays hidden in StateDeleting and a repeated DELETE finishes.
func (m *Master) delete(w http.ResponseWriter, r *http.Request, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	switch {
	case rec.State == StateWriting:
		return ErrNotFound
	case rec.State == StateLive && m.cfg.Protect:
		return ErrProtected
	}
	markers := rec.State != StateLive
	if rec.State != StateDeleting {
		rec.State = StateDeleting
		if err := m.index.Put(key, rec); err != nil {
			return err
		}
	}
	if err := m.removeReplicas(r.Context(), key, rec, markers); err != nil {
		return err
	}
	if err := m.index.Delete(key); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unlink hides a live key but keeps its files, until a DELETE.
func (m *Master) unlink(w http.ResponseWriter, r *http.Request, key string) error {
	rec, unlock, err := m.lockRecord(key)
	if err != nil {
		return err
	}
	defer unlock()
	switch rec.State {
	case StateLive:
		// The markers first: if this fails halfway, the key is still live, and its
		// stray markers only make a rebuild treat it as unlinked.
		marker := MarkerPath(key, rec.Sub)
		errs := m.client.PutAll(r.Context(), rec.Volumes, marker, nil)
		for _, err := range errs {
			m.health.Failed(err)
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		rec.State = StateUnlinked
		if err := m.index.Put(key, rec); err != nil {
			return err
		}
	case StateUnlinked:
	default:
		return ErrNotFound
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// statusOf maps an error to the status the client gets.
func statusOf(err error) int {
	var ve *VolumeError
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadKey), errors.Is(err, ErrReservedKey), errors.Is(err, ErrBadRequest),
		errors.Is(err, ErrBadDigest), errors.Is(err, ErrClientBody):
		return http.StatusBadRequest
	case errors.Is(err, ErrExists), errors.Is(err, ErrProtected):
		return http.StatusForbidden
	case errors.Is(err, ErrLocked):
		return http.StatusConflict
	case errors.Is(err, ErrEmptyBody):
		return http.StatusLengthRequired
	case errors.Is(err, ErrTooManyKeys):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrNoVolumes):
		return http.StatusServiceUnavailable
	case errors.As(err, &ve) && ve.Status == http.StatusInsufficientStorage:
		return http.StatusInsufficientStorage
	case errors.As(err, &ve):
		if ve.Unreachable() && isTimeout(err) {
			return http.StatusGatewayTimeout
		}
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// writeError answers err with its status and a one-line reason, and logs it once.
// Misses (404) are a normal answer and are not logged.
func (m *Master) writeError(w http.ResponseWriter, r *http.Request, key string, err error) {
	status := statusOf(err)
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", allowedMethods)
	}
	if status != http.StatusNotFound {
		attrs := []any{"method", r.Method, "key", key, "status", status, "err", err}
		var ve *VolumeError
		if errors.As(err, &ve) {
			attrs = append(attrs, "volume", ve.Volume)
		}
		m.log.Warn("request failed", attrs...)
	}
	msg := err.Error() + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// ClusterConfig is what every command that works on the volumes and the index needs.
type ClusterConfig struct {
	// Volumes are the host:port names of the nginx volumes.
	Volumes []string
	// DB is the LevelDB directory of the index.
	DB string
	// Replicas is how many volumes hold each value.
	Replicas int
	// Subvolumes is how many sv directories a volume is split into.
	Subvolumes int
}

// Placement is where c places keys.
func (c ClusterConfig) Placement() Placement {
	return Placement{Volumes: c.Volumes, Replicas: c.Replicas, Subvolumes: c.Subvolumes}
}

// ServerConfig is the master's configuration, filled from flags.
type ServerConfig struct {
	ClusterConfig
	// Port is the TCP port to listen on, on all addresses.
	Port int
	// Protect refuses DELETE of a live key: it must be UNLINKed first.
	Protect bool
	// Fallback, if set, is a host:port that GETs of unknown keys are redirected to.
	Fallback string
	// MinReplicas, if not zero, is how few replicas a PUT may store when fewer than
	// Replicas volumes are up; the key is then under-replicated until verify -fix or
	// rebalance copies it. Zero means Replicas.
	MinReplicas int
	// MD5Sum computes each value's MD5 while storing it and serves it as Content-Md5.
	MD5Sum bool
	// VolTimeout bounds connecting to a volume and waiting for its answer.
	VolTimeout time.Duration
	// Sync makes every index write wait for the disk.
	Sync bool
	// Grace is how long REBALANCE keeps the old replicas of a key it moved, so that
	// redirects already sent still land. Zero deletes them at once.
	Grace time.Duration
	// Verbose logs every request.
	Verbose bool
}

// Validate says what is wrong with c, if anything.
func (c ServerConfig) Validate() error {
	if err := c.ClusterConfig.Validate(); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("-port %d is not a TCP port", c.Port)
	}
	if c.MinReplicas < 0 || c.MinReplicas > c.Replicas {
		return fmt.Errorf("-minreplicas must be from 1 to -replicas (%d), got %d", c.Replicas, c.MinReplicas)
	}
	if c.Grace < 0 {
		return fmt.Errorf("-grace must not be negative, got %v", c.Grace)
	}
	if c.VolTimeout <= 0 {
		return fmt.Errorf("-voltimeout must be positive, got %v", c.VolTimeout)
	}
	if c.Fallback != "" {
		if _, _, err := net.SplitHostPort(c.Fallback); err != nil {
			return fmt.Errorf("-fallback %q must be host:port: %w", c.Fallback, err)
		}
	}
	return nil
}

// Validate says what is wrong with c, if anything.
func (c ClusterConfig) Validate() error {
	if c.DB == "" {
		return errors.New("missing -db: the index directory")
	}
	if len(c.Volumes) == 0 {
		return errors.New("missing -volumes: a comma-separated list of host:port")
	}
	seen := make(map[string]bool, len(c.Volumes))
	for _, v := range c.Volumes {
		if _, _, err := net.SplitHostPort(v); err != nil || strings.Contains(v, "/") {
			return fmt.Errorf("volume %q must be host:port", v)
		}
		if seen[v] {
			return fmt.Errorf("volume %s is listed twice", v)
		}
		seen[v] = true
	}
	if c.Replicas < 1 {
		return fmt.Errorf("-replicas must be at least 1, got %d", c.Replicas)
	}
	if len(c.Volumes) < c.Replicas {
		return fmt.Errorf("-replicas %d needs at least %d volumes, got %d", c.Replicas, c.Replicas, len(c.Volumes))
	}
	if c.Subvolumes < 1 || c.Subvolumes > 256 {
		return fmt.Errorf("-subvolumes must be from 1 to 256, got %d", c.Subvolumes)
	}
	return nil
}

// shutdownTimeout is how long in-flight requests get to finish once shutdown begins.
const shutdownTimeout = 30 * time.Second

// runServer serves the master on cfg.Port until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish, and closes the index.
func runServer(ctx context.Context, cfg ServerConfig, log *slog.Logger) error {
	m, err := NewMaster(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port))
	if err != nil {
		m.Close()
		return fmt.Errorf("listen: %w", err)
	}
	return m.Serve(ctx, ln)
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully and closes
// the index.
func (m *Master) Serve(ctx context.Context, ln net.Listener) error {
	background, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	m.Start(background)
	srv := &http.Server{
		Handler:           m,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	m.log.Info("master listening", "addr", ln.Addr().String(), "volumes", strings.Join(m.cfg.Volumes, ","), "replicas", m.cfg.Replicas)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		m.log.Info("shutting down", "deadline", shutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = fmt.Errorf("shutdown: %w", serr)
		}
	}
	stopBackground()
	m.Wait()
	if cerr := m.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close index: %w", cerr)
	}
	return err
}
