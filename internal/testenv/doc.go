// Package testenv starts the real servers davkv's tests run against, on free loopback
// ports in temporary directories: nginx volumes through the repository's volume.sh, etcd
// clusters from Debian's etcd-server, and PostgreSQL servers (and their standbys) from
// Debian's postgresql. It records every process group it starts, so that a test binary
// can check at its end that none outlived the tests
// (LeftRunning). Only tests import it.
package testenv
