package main

// The thrash command: write, read and delete keys like a user, through a master or
// straight to the volumes, and measure.

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"davkv/internal/httpconn"
	"davkv/internal/layout"
)

// ThrashConfig is the thrash command's configuration, filled from flags.
type ThrashConfig struct {
	// Master is the master to thrash, host:port or URL.
	Master string
	// MasterKey is the key (ID:SECRET) sent to a Master started with -auth ($DAVKV_KEY).
	MasterKey string
	// Direct does the same work straight against Volumes, with no master: the
	// physical limit that the master adds cost to. Placement needs Replicas and
	// Subvolumes too.
	Direct  bool
	Volumes []string
	// Zones and Weights are the volumes' (see ClusterConfig), for -direct.
	Zones   map[string]string
	Weights map[string]float64
	// S3 sends the master S3 requests (PutObject, GetObject, DeleteObject), unsigned,
	// for a master without -s3keys, in the bucket Prefix's first segment names, which
	// thrash creates.
	S3         bool
	Replicas   int
	Subvolumes int
	// Count is how many keys; Workers how many are worked on at once.
	Count, Workers int
	// Size is each value's length in bytes.
	Size int64
	// Prefix starts every key, so that runs never collide.
	Prefix string
	// Ops are done per key, in this order: "put", "get" and "delete".
	Ops        []string
	VolTimeout time.Duration
	// Secret is the volumes' shared secret, for -direct (see ClusterConfig.Secret).
	Secret string
}

var thrashOps = []string{"put", "get", "delete"}

// Validate says what is wrong with c, if anything.
func (c ThrashConfig) Validate() error {
	if c.Count < 1 || c.Workers < 1 || c.Size < 1 {
		return fmt.Errorf("-count, -workers and -size must be at least 1")
	}
	if len(c.Ops) == 0 {
		return errors.New("-ops is empty")
	}
	for _, op := range c.Ops {
		if !slices.Contains(thrashOps, op) {
			return fmt.Errorf("-ops: unknown operation %q (put, get, delete)", op)
		}
	}
	if !strings.HasPrefix(c.Prefix, "/") {
		return fmt.Errorf("-prefix %q must start with /", c.Prefix)
	}
	if c.Direct && c.S3 {
		return errors.New("-s3 speaks to a master: it does not go with -direct")
	}
	if _, _, ok := strings.Cut(c.Prefix[1:], "/"); c.S3 && !ok {
		return fmt.Errorf("-prefix %q must be /BUCKET/... with -s3", c.Prefix)
	}
	if c.Direct {
		return c.cluster().Validate()
	}
	if c.Master == "" {
		return errors.New("missing -master (or -direct with -volumes)")
	}
	return nil
}

// cluster is the cluster -direct works on.
func (c ThrashConfig) cluster() ClusterConfig {
	return ClusterConfig{Volumes: c.Volumes, Zones: c.Zones, Weights: c.Weights, DB: "-", Replicas: c.Replicas, Subvolumes: c.Subvolumes, Secret: c.Secret}
}

// parseSize reads a byte count such as 4096, 4k, 1M or 1G (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q: want a number of bytes, with k, M or G", s)
	}
	return n * mult, nil
}

// sizeFlag is a byte count flag that takes parseSize's forms.
type sizeFlag int64

func (f *sizeFlag) String() string { return strconv.FormatInt(int64(*f), 10) }

func (f *sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	*f = sizeFlag(n)
	return err
}

// thrashValue returns key's value: bytes that depend on the key alone, so that a run
// of -ops get can check what an earlier -ops put wrote.
func thrashValue(key string, size int64, buf []byte) []byte {
	sum := md5.Sum([]byte(key))
	var seed [32]byte
	copy(seed[:], sum[:])
	copy(seed[16:], sum[:])
	buf = slices.Grow(buf[:0], int(size))[:size]
	rand.NewChaCha8(seed).Read(buf)
	return buf
}

// thrasher does the per-key work, through the master or straight to the volumes.
type thrasher struct {
	cfg       ThrashConfig
	client    *VolumeClient
	master    *MasterClient
	placement layout.Placement
}

func (th *thrasher) do(ctx context.Context, op, key string, value, buf []byte) ([]byte, error) {
	if th.cfg.Direct {
		return th.direct(ctx, op, key, value, buf)
	}
	var body io.Reader
	if op == "put" {
		body = bytes.NewReader(value)
	}
	method, want, query := http.MethodGet, http.StatusOK, ""
	switch op {
	case "put":
		method, want = http.MethodPut, http.StatusCreated
	case "delete":
		method, want = http.MethodDelete, http.StatusNoContent
	}
	if th.cfg.S3 {
		// x-id, which SDKs send too, makes the request S3's.
		query = "x-id=" + map[string]string{"put": "PutObject", "get": "GetObject", "delete": "DeleteObject"}[op]
		if op == "put" {
			want = http.StatusOK
		}
	}
	resp, err := th.master.Do(ctx, method, key, query, body, int64(len(value)))
	if err != nil {
		return buf, err
	}
	defer httpconn.Drain(resp)
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return buf, fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	if op == "get" {
		return readCompare(resp.Body, value, buf)
	}
	return buf, nil
}

// createBucket creates the bucket of -s3's prefix, or finds it there.
func (th *thrasher) createBucket(ctx context.Context) error {
	bucket, _, _ := strings.Cut(th.cfg.Prefix[1:], "/")
	resp, err := th.master.Do(ctx, http.MethodPut, "/"+bucket, "x-id=CreateBucket", nil, 0)
	if err != nil {
		return fmt.Errorf("thrash: create bucket %s: %w", bucket, err)
	}
	defer httpconn.Drain(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusConflict {
		return fmt.Errorf("thrash: create bucket %s: status %d", bucket, resp.StatusCode)
	}
	return nil
}

// direct is do's work straight against the volumes placement chooses: PUT to all in
// parallel, GET from the first, DELETE from all.
func (th *thrasher) direct(ctx context.Context, op, key string, value, buf []byte) ([]byte, error) {
	vols := th.placement.Choose(key)
	path := layout.KeyPath(key, th.placement.Subvolume(key))
	switch op {
	case "put":
		return buf, errors.Join(th.client.PutAll(ctx, vols, path, value)...)
	case "get":
		body, _, err := th.client.Get(ctx, vols[0], path)
		if err != nil {
			return buf, err
		}
		defer body.Close()
		return readCompare(body, value, buf)
	default:
		return buf, errors.Join(th.client.DeleteAll(ctx, vols, path)...)
	}
}

// readCompare reads r into buf and checks that it holds want.
func readCompare(r io.Reader, want, buf []byte) ([]byte, error) {
	b := bytes.NewBuffer(buf[:0])
	if _, err := b.ReadFrom(r); err != nil {
		return b.Bytes(), fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		return b.Bytes(), fmt.Errorf("wrong bytes: got %d bytes, want %d", b.Len(), len(want))
	}
	return b.Bytes(), nil
}

// thrashResult is what one worker measured.
type thrashResult struct {
	latencies map[string][]time.Duration
	errors    map[string]int
}

// runThrash does the configured operations on Count keys with Workers at once and
// prints the rates and latencies. Any error or wrong byte makes it fail.
func runThrash(ctx context.Context, cfg ThrashConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := NewVolumeClient(cfg.VolTimeout, cfg.Secret)
	th := &thrasher{cfg: cfg, client: client, master: NewMasterClient(cfg.Master, cfg.MasterKey, client),
		placement: cfg.cluster().Placement()}
	if cfg.S3 {
		if err := th.createBucket(ctx); err != nil {
			return err
		}
	}
	var next atomic.Int64
	var reported atomic.Int64
	results := make([]thrashResult, cfg.Workers)
	start := time.Now()
	var workers sync.WaitGroup
	for w := range cfg.Workers {
		results[w] = thrashResult{latencies: map[string][]time.Duration{}, errors: map[string]int{}}
		workers.Go(func() {
			res := results[w]
			var value, buf []byte
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.Count) || ctx.Err() != nil {
					return
				}
				key := fmt.Sprintf("%s/%08d", cfg.Prefix, i)
				value = thrashValue(key, cfg.Size, value)
				for _, op := range cfg.Ops {
					t0 := time.Now()
					var err error
					buf, err = th.do(ctx, op, key, value, buf)
					if err != nil {
						res.errors[op]++
						if reported.Add(1) <= 10 {
							log.Error("thrash", "key", key, "op", op, "err", err)
						}
						break // the key's other operations would fail too
					}
					res.latencies[op] = append(res.latencies[op], time.Since(t0))
				}
			}
		})
	}
	workers.Wait()
	took := time.Since(start)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("thrash: %w", err)
	}

	target := "master " + cfg.Master
	if cfg.S3 {
		target += " (S3)"
	}
	if cfg.Direct {
		target = "direct to " + strings.Join(cfg.Volumes, ",")
	}
	keysPerSec := float64(cfg.Count) / took.Seconds()
	fmt.Fprintf(stdout, "thrash: %d keys in %v, %s, %d workers, %d-byte values, ops %s\n",
		cfg.Count, took.Round(time.Millisecond), target, cfg.Workers, cfg.Size, strings.Join(cfg.Ops, ","))
	fmt.Fprintf(stdout, "keys/s %.1f\nvalue MB/s %.1f\n", keysPerSec, keysPerSec*float64(cfg.Size)/1e6)
	fmt.Fprintf(stdout, "%-8s %12s %10s %10s %10s %8s\n", "op", "requests/s", "p50", "p99", "max", "errors")
	failed := 0
	for _, op := range cfg.Ops {
		var all []time.Duration
		errs := 0
		for _, r := range results {
			all = append(all, r.latencies[op]...)
			errs += r.errors[op]
		}
		failed += errs
		slices.Sort(all)
		q := func(p float64) time.Duration {
			if len(all) == 0 {
				return 0
			}
			return all[min(len(all)-1, int(p*float64(len(all))))]
		}
		fmt.Fprintf(stdout, "%-8s %12.1f %10v %10v %10v %8d\n", op, float64(len(all))/took.Seconds(),
			q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(1).Round(time.Microsecond), errs)
	}
	if failed > 0 {
		return fmt.Errorf("thrash: %d operations failed", failed)
	}
	return nil
}

// defaultThrashPrefix is a prefix no other run has used.
func defaultThrashPrefix() string { return "/thrash/" + uuid.NewString() }
