package main

// The server command's process: listen, serve, and shut down gracefully.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
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
	// SIGHUP reads the TLS certificate again (and would otherwise end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				m.reloadTLS()
			}
		}
	}()
	return m.Serve(ctx, ln)
}

// reloadTLS reads the TLS certificate and key again, as SIGHUP asks; if they cannot be
// read, the ones in use stay.
func (m *Master) reloadTLS() {
	if m.certs == nil {
		m.log.Info("SIGHUP: no TLS certificate to reload (-tls-cert)")
		return
	}
	if err := m.certs.Reload(); err != nil {
		m.log.Error("SIGHUP: the TLS certificate was not reloaded; the one in use stays", "err", err)
		return
	}
	m.log.Info("SIGHUP: TLS certificate reloaded", "cert", m.cfg.TLSCert)
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
	m.log.Info("master listening", "addr", ln.Addr().String(), "tls", m.certs != nil, "volumes", volumesFlag{&m.cfg.Volumes, &m.cfg.Zones, &m.cfg.Weights}.String(), "replicas", m.cfg.Replicas, "zone", m.cfg.Zone)
	if m.cfg.Secret == "" {
		m.log.Warn("volumes accept writes from anyone who reaches them: give them and the master a secret in DAVKV_SECRET (see volume.sh)")
	}
	if len(m.cfg.S3Keys) == 0 {
		m.log.Warn("S3 signatures are not checked: anyone who reaches the master may use the S3 API; give -s3keys or DAVKV_S3_KEYS")
	}
	if m.cfg.Auth && m.certs == nil {
		m.log.Warn("credentials and data cross the network in clear: give -tls-cert and -tls-key unless the network is trusted")
	}
	if m.cfg.Auth && m.cfg.SignReads == 0 {
		m.log.Warn("with -auth but without -signreads, a volume serves a value to anyone who knows its path; give -signreads (see volume.sh)")
	}
	served := make(chan error, 1)
	if m.certs != nil {
		srv.TLSConfig = m.certs.Config()
		go func() { served <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { served <- srv.Serve(ln) }()
	}
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
