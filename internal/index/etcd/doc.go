// Package etcd is the index backend that several masters share: a prefix of an etcd
// cluster, each write one transaction that compares the revision it read, each process
// an owner with a lease, requests tried again through elections.
package etcd
