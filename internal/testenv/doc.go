// Package testenv starts the real servers davkv's tests run against, on free loopback
// ports in temporary directories: nginx volumes through the repository's volume.sh, and
// etcd clusters from Debian's etcd-server. It records every process group it starts,
// so that a test binary can check at its end that none outlived the tests
// (LeftRunning). Only tests import it.
package testenv
