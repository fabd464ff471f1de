package main

// The Master: its parts, its start and stop, the routing of every request to its
// handler, and the one path that maps errors to statuses.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"davkv/internal/auth"
	"davkv/internal/certs"
	"davkv/internal/index"
	"davkv/internal/layout"
	"davkv/internal/policy"
)

// The errors the master answers with, besides the index's (ErrNotFound, ErrConflict)
// and the key's (ErrBadKey, ErrReservedKey); statusOf maps each to its status.
var (
	ErrExists      = errors.New("key already exists; DELETE it first")
	ErrLocked      = errors.New("another write to this key is in flight")
	ErrBadRequest  = errors.New("bad request")
	ErrEmptyBody   = errors.New("empty body")
	ErrBadDigest   = errors.New("value does not match Content-MD5")
	ErrClientBody  = errors.New("reading the request body failed")
	ErrProtected   = errors.New("key is protected; UNLINK it first")
	ErrNoVolumes   = errors.New("not enough volumes up")
	ErrNoRoom      = errors.New("not enough volumes with room")
	ErrTooManyKeys = errors.New("more than 1000000 keys; use limit")
	ErrMethod      = errors.New("method not allowed")
)

// Master is the HTTP front of davkv: it owns the index and sends clients to the volumes.
type Master struct {
	cfg        ServerConfig
	index      index.Index
	placement  layout.Placement
	client     *VolumeClient
	health     *Health
	rebalancer *Rebalancer
	// s3 serves the requests that speak S3.
	s3      *s3API
	locks   keyLocks
	writes  writesInFlight // S3 writes streaming now (see overwrite)
	log     *slog.Logger
	buffers sync.Pool
	// background runs the health probes and sweepLeftovers.
	background sync.WaitGroup
	sweepMu    sync.Mutex
	sweepQueue sweepQueue
	sweepWake  chan struct{}
	// ready is set once start-up recovery has finished (see /health?ready).
	ready atomic.Bool
	// metrics are nil with NoMetrics.
	metrics *metrics
	// keys are the access keys and the buckets' policies; nil without S3Keys, when
	// nothing is checked.
	keys *auth.Store
	// limiter limits the failed authentications of each client address.
	limiter auth.Limiter
	// certs is the TLS certificate; nil for plain HTTP.
	certs *certs.Reloader
}

// NewMaster opens the index and prepares, but does not start, the volume health probes.
func NewMaster(cfg ServerConfig, log *slog.Logger) (*Master, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var tlsCerts *certs.Reloader
	if cfg.TLSCert != "" {
		var err error
		if tlsCerts, err = certs.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	idx, err := openIndex(cfg.DB, cfg.Sync)
	if err != nil {
		return nil, err
	}
	client := cfg.VolumeClient(cfg.VolTimeout)
	m := &Master{
		cfg:       cfg,
		index:     idx,
		placement: cfg.Placement(),
		client:    client,
		health:    NewHealth(client, cfg.Volumes, healthInterval),
		log:       log,
		certs:     tlsCerts,
		limiter:   auth.Limiter{Burst: cfg.AuthBurst, Rate: cfg.AuthRate},
	}
	m.s3 = &s3API{m}
	if len(cfg.S3Keys) > 0 {
		m.keys = &auth.Store{Root: cfg.S3Keys, Index: idx}
	}
	m.rebalancer = &Rebalancer{Client: client, Placement: m.placement, Index: idx, Grace: cfg.Grace, Health: m.health}
	m.health.Back = m.volumeBack
	if !cfg.NoMetrics {
		m.metrics = newMetrics(m)
		client.Observe = m.metrics.observeVolume
	}
	m.sweepWake = make(chan struct{}, 1)
	m.buffers.New = func() any { b := make([]byte, chunkSize); return &b }
	return m, nil
}

// cleanupContext is ctx without its cancellation, bounded by a few volume timeouts:
// removing what a failed request wrote goes on when its client has gone.
func (m *Master) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 4*m.cfg.VolTimeout)
}

// healthInterval is how often every volume is probed; with the probe's own timeout it
// bounds how long a dead, unused volume goes unnoticed.
const healthInterval = 500 * time.Millisecond

// Start begins the health probes, the recovery of writes and deletes that a crash or
// a master that died interrupted (see adopt), the deletion of old replicas after
// rebalancing, and of abandoned multipart uploads; they stop when ctx ends, and Wait
// waits for that.
func (m *Master) Start(ctx context.Context) {
	m.health.Start(ctx, &m.background)
	m.background.Go(func() {
		m.adopt(ctx)
		m.ready.Store(true)
		m.watchOwners(ctx)
	})
	m.background.Go(func() { m.sweepLeftovers(ctx) })
	m.background.Go(func() { m.sweepUploads(ctx) })
	m.background.Go(func() { m.runLifecycle(ctx) })
}

// Wait waits until the work Start began has stopped.
func (m *Master) Wait() { m.background.Wait() }

// Close closes the index and the idle connections to volumes. The work Start began
// must have stopped.
func (m *Master) Close() error {
	m.client.CloseIdle()
	return m.index.Close()
}

// lockRecord locks key against other writers and reads its record. Unless it fails,
// the caller must unlock.
func (m *Master) lockRecord(key string) (rec index.Record, unlock func(), err error) {
	return m.lockRecordWait(context.Background(), key, false)
}

// lockRecordWait is lockRecord that, with wait, waits for the key's lock until ctx
// ends.
func (m *Master) lockRecordWait(ctx context.Context, key string, wait bool) (rec index.Record, unlock func(), err error) {
	if unlock, err = m.lockKey(ctx, key, wait); err != nil {
		return rec, nil, err
	}
	return m.readLocked(ctx, key, wait, unlock)
}

// readLocked reads key's record (see readRecord) once the caller has its lock, whose
// unlock it runs if the read fails and returns otherwise.
func (m *Master) readLocked(ctx context.Context, key string, wait bool, unlock func()) (index.Record, func(), error) {
	rec, err := m.readRecord(ctx, key, wait)
	if err != nil {
		unlock()
		return rec, nil, err
	}
	return rec, unlock, nil
}

// lockKey locks key for a request: with wait, waiting while another request holds it
// until ctx ends; without, ErrLocked at once (see keyLocks).
func (m *Master) lockKey(ctx context.Context, key string, wait bool) (func(), error) {
	return m.locks.lock(ctx, key, wait)
}

// lockBackground locks key for background work and reads its record, or ErrLocked if
// anything holds the key. Unless it fails, the caller must unlock.
func (m *Master) lockBackground(ctx context.Context, key string) (index.Record, func(), error) {
	unlock, ok := m.locks.tryBackground(key)
	if !ok {
		return index.Record{}, nil, ErrLocked
	}
	return m.readLocked(ctx, key, false, unlock)
}

// ServeHTTP parses the request, checks it, and hands it to the method's handler,
// counted in the metrics.
func (m *Master) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s3 := m.s3.isS3(r)
	if m.metrics == nil {
		m.handle(w, r, s3)
		return
	}
	api := "native"
	if s3 {
		api = "s3"
	}
	cr := m.metrics.begin(w, r)
	m.handle(&cr.countingWriter, r, s3)
	m.metrics.end(cr, r, api)
}

// handle is ServeHTTP's work; s3 says the request speaks S3.
func (m *Master) handle(w http.ResponseWriter, r *http.Request, s3 bool) {
	var start time.Time
	if m.cfg.Verbose {
		start = time.Now()
	}
	key := r.URL.Path
	var err error
	if s3 {
		m.s3.serveS3(w, r)
	} else {
		var q url.Values
		if r.URL.RawQuery != "" {
			q = r.URL.Query()
		}
		if err = m.checkNative(r, key, q); err == nil {
			err = m.serve(w, r, key, q)
		}
		if err != nil {
			m.writeError(w, r, key, err)
		}
	}
	if m.cfg.Verbose {
		m.log.Info("request", "method", r.Method, "key", key, "query", redactQuery(r.URL.RawQuery), "took", time.Since(start), "err", err)
	}
}

// serve answers a native request for key, whose query is q (nil if it has none).
func (m *Master) serve(w http.ResponseWriter, r *http.Request, key string, q url.Values) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, "UNLINK", "REBALANCE", "VERIFY":
	default:
		return ErrMethod
	}
	if key == "/" && q.Has(keysParam) {
		return m.serveKeys(w, r, q)
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		switch {
		case key == healthPath:
			return m.healthPage(w, q)
		case key == metricsPath && m.metrics != nil:
			m.metrics.page.ServeHTTP(w, r)
			return nil
		case q.Has("list"):
			return m.list(w, key, q, index.StateLive)
		case q.Has("unlinked"):
			return m.list(w, key, q, index.StateUnlinked)
		case q.Has("pending"):
			return m.list(w, key, q, index.StateWriting, index.StateDeleting)
		case wantsBrowse(r, q):
			return m.browse(w, r, q)
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

func get1(q url.Values, name string) string {
	if v := q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// healthPage answers GET /health with every volume's state and whether start-up
// recovery has finished: 503 when fewer volumes are up than -replicas, so that a load
// balancer takes the master out, and with ?ready also while recovery runs.
func (m *Master) healthPage(w http.ResponseWriter, q url.Values) error {
	page := HealthPage{Ready: m.ready.Load(), Volumes: m.health.StatusIn(m.placement), Domains: []DomainStatus{}}
	up := 0
	for _, v := range page.Volumes {
		if v.Up {
			up++
		}
		i := slices.IndexFunc(page.Domains, func(d DomainStatus) bool { return d.Zone == v.Zone && d.Host == v.Host })
		if i < 0 {
			i = len(page.Domains)
			page.Domains = append(page.Domains, DomainStatus{Zone: v.Zone, Host: v.Host})
		}
		page.Domains[i].Volumes = append(page.Domains[i].Volumes, v.Volume)
		if v.Up {
			page.Domains[i].Up++
		}
	}
	status := http.StatusOK
	if up < m.cfg.Replicas || q.Has("ready") && !page.Ready {
		status = http.StatusServiceUnavailable
	}
	return writeJSONStatus(w, status, page)
}

func writeJSON(w http.ResponseWriter, v any) error { return writeJSONStatus(w, http.StatusOK, v) }

// writeJSONStatus answers v as JSON, with status.
func writeJSONStatus(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return nil
}

// statusOf maps an error to the status the client gets.
func statusOf(err error) int {
	var ve *VolumeError
	switch {
	case errors.Is(err, index.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrBadKey), errors.Is(err, ErrReservedKey), errors.Is(err, ErrBadRequest),
		errors.Is(err, ErrBadDigest), errors.Is(err, ErrClientBody):
		return http.StatusBadRequest
	case errors.Is(err, ErrExists), errors.Is(err, ErrProtected), errors.Is(err, ErrAccessDenied), errors.Is(err, auth.ErrRootKey), errors.Is(err, ErrNoKeys):
		return http.StatusForbidden
	case errors.Is(err, auth.ErrUnknownKey):
		return http.StatusNotFound
	case errors.Is(err, auth.ErrKeyExists):
		return http.StatusConflict
	case errors.Is(err, auth.ErrBadID), errors.Is(err, policy.ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoCredentials), errors.Is(err, auth.ErrBadCredentials):
		return http.StatusUnauthorized
	case errors.Is(err, ErrTooManyFailures):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrLocked), errors.Is(err, index.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrEmptyBody):
		return http.StatusLengthRequired
	case errors.Is(err, ErrTooManyKeys):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrNoVolumes), errors.Is(err, index.ErrIndexDown):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNoRoom), errors.As(err, &ve) && ve.NoSpace():
		return http.StatusInsufficientStorage
	case errors.As(err, &ve):
		if ve.Unreachable() && isTimeout(err) {
			return http.StatusGatewayTimeout
		}
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// writeError answers err with its status and a one-line reason (none for HEAD), and
// logs it once. Misses (404) are a normal answer and are not logged.
func (m *Master) writeError(w http.ResponseWriter, r *http.Request, key string, err error) {
	status := statusOf(err)
	switch status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", allowedMethods)
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="davkv", charset="UTF-8"`)
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
	if r.Method == http.MethodHead {
		msg = "" // a HEAD answer has no body, and says so (minikeyvalue's tests expect it)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}
