package main

// The verify command: check the index against the volumes, offline or through a
// master, and repair with -fix.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"davkv/internal/httpconn"
	"davkv/internal/index"
)

// VerifyConfig is the verify command's configuration, filled from flags.
type VerifyConfig struct {
	// Master, if set, is a running master (host:port) that does the checks key by key
	// under its locks; otherwise verify works offline on ClusterConfig's index.
	Master string
	// MasterKey is the key (ID:SECRET) sent to a Master started with -auth ($DAVKV_KEY).
	MasterKey string
	ClusterConfig
	// CheckOptions say whether to read every replica (Deep), to repair (Fix), and
	// how young an orphan or unfinished write is left alone (Grace).
	CheckOptions
	// BatchConfig.Workers is how many keys are checked (and directories listed) at
	// once.
	BatchConfig
}

// Validate says what is wrong with c, if anything.
func (c VerifyConfig) Validate() error {
	if err := c.BatchConfig.Validate(); err != nil {
		return err
	}
	if c.Grace < 0 {
		return fmt.Errorf("-grace must not be negative, got %v", c.Grace)
	}
	if c.UploadGrace < 0 {
		return fmt.Errorf("-upload-grace must not be negative, got %v", c.UploadGrace)
	}
	if c.Master != "" {
		return nil
	}
	return c.ClusterConfig.Validate()
}

// ErrNotWhole says that verify found problems it did not fix.
var ErrNotWhole = errors.New("the data is not whole")

// runVerify compares the index with what the volumes hold, offline, and with Fix
// repairs what it can. It fails unless the data is whole at the end.
func runVerify(ctx context.Context, cfg VerifyConfig, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := cfg.VolumeClient(cfg.VolTimeout)
	if cfg.Master != "" {
		return runVerifyOnline(ctx, cfg, NewMasterClient(cfg.Master, cfg.MasterKey, client), stdout, log)
	}
	idx, err := openIndex(cfg.DB, false)
	if err != nil {
		return err
	}
	defer idx.Close()
	v := newVerifier(cfg.CheckOptions, &Rebalancer{Client: client, Placement: cfg.Placement(), Index: idx}, log)
	start := time.Now()
	stopProgress := startProgress(ctx, cfg.ProgressEvery(), func() { v.report.progress(log, start) })
	defer stopProgress()
	// The records first, so that files copied by fixes are not taken for orphans.
	all := func(index.Record) bool { return true }
	if err := runWorkers(ctx, cfg.Workers, sendRecords(idx, all), func(j keyJob) { v.checkKey(ctx, j.key, j.rec) }); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	// Then the uploads, so that the parts of those removed are not taken for orphans.
	if err := v.checkUploads(ctx); err != nil {
		return fmt.Errorf("verify: %w", err)
	}

	walker := newVolumeWalker(client, cfg.Workers, func(volume, path string, e DirEntry) error {
		v.checkFile(ctx, volume, path, e)
		return nil
	})
	if err := walker.Walk(ctx, cfg.Volumes); err != nil {
		return fmt.Errorf("verify: the volumes could not all be listed: %w", err)
	}
	stopProgress()
	v.report.write(stdout, walker.files.Load(), time.Since(start))
	if !v.report.whole() {
		return fmt.Errorf("verify: %w", ErrNotWhole)
	}
	return nil
}

// runVerifyOnline does verify's work through a running master: it asks the master to
// check every key (VERIFY /key), walks the volumes the master names in /health, and
// asks it about every file found (VERIFY /?file=). Abandoned multipart uploads are
// the master's to remove (see -upload-grace), not this run's.
func runVerifyOnline(ctx context.Context, cfg VerifyConfig, m *MasterClient, stdout io.Writer, log *slog.Logger) error {
	resp, err := m.Do(ctx, http.MethodGet, healthPath, "", nil, 0)
	if err != nil {
		return err
	}
	var health HealthPage
	err = json.NewDecoder(resp.Body).Decode(&health)
	httpconn.Drain(resp)
	if err != nil {
		return fmt.Errorf("verify: master /health: %w", err)
	}
	var volumes []string
	for _, v := range health.Volumes {
		volumes = append(volumes, v.Volume)
	}
	query := url.Values{"grace": {cfg.Grace.String()}}
	if cfg.Deep {
		query.Set("deep", "")
	}
	if cfg.Fix {
		query.Set("fix", "")
	}
	report := newVerifyReport()
	ask := func(key string, q url.Values) error {
		resp, err := m.Do(ctx, "VERIFY", key, q.Encode(), nil, 0)
		if err != nil {
			return err
		}
		defer httpconn.Drain(resp)
		if resp.StatusCode == http.StatusNotFound {
			return nil // gone meanwhile
		}
		var findings []Finding
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("verify: master: VERIFY %s: status %d", key, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&findings); err != nil {
			return fmt.Errorf("verify: master: VERIFY %s: %w", key, err)
		}
		for _, f := range findings {
			report.add(f.Kind, f.Example, f.Fixed)
		}
		return nil
	}
	start := time.Now()
	stopProgress := startProgress(ctx, cfg.ProgressEvery(), func() { report.progress(log, start) })
	defer stopProgress()
	var failed atomic.Int64
	err = runWorkers(ctx, cfg.Workers, func(send func(string) error) error {
		return m.eachKey(ctx, []string{"list", "unlinked", "pending"}, send)
	}, func(key string) {
		report.keys.Add(1)
		if err := ask(key, query); err != nil {
			failed.Add(1)
			log.Error("verify", "key", key, "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	walker := newVolumeWalker(m.client, cfg.Workers, func(volume, path string, e DirEntry) error {
		q := url.Values{"file": {volume + "/" + path}, "mtime": {e.MTime}}
		maps.Copy(q, query)
		return ask("/", q)
	})
	if err := walker.Walk(ctx, volumes); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	report.write(stdout, walker.files.Load(), time.Since(start))
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("verify: %d keys could not be checked", n)
	}
	if !report.whole() {
		return fmt.Errorf("verify: %w", ErrNotWhole)
	}
	return nil
}
