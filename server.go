package main

// The server command's process: listen, serve, and shut down gracefully.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

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
	m.log.Info("master listening", "addr", ln.Addr().String(), "volumes", volumesFlag{&m.cfg.Volumes, &m.cfg.Zones, &m.cfg.Weights}.String(), "replicas", m.cfg.Replicas, "zone", m.cfg.Zone)
	if m.cfg.Secret == "" {
		m.log.Warn("volumes accept writes from anyone who reaches them: give them and the master a secret in DAVKV_SECRET (see volume.sh)")
	}
	if len(m.cfg.S3Keys) == 0 {
		m.log.Warn("S3 signatures are not checked: anyone who reaches the master may use the S3 API; give -s3keys or DAVKV_S3_KEYS")
	}
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
