// Package postgres is the index backend for a billion keys and several masters: tables
// in a schema of a PostgreSQL database, each conditional write one statement that
// compares the revision it read, each process an owner with a heartbeat that the
// database's clock judges, requests tried again while the database fails over.
package postgres
