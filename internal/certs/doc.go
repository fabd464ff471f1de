// Package certs is the master's TLS certificate: loaded from its files at start-up, so
// that a bad path is a clear error before anything is served, and loaded again when
// the operator says so (SIGHUP), so that a renewed certificate needs no restart; a
// reload that fails keeps the certificate in use.
package certs
