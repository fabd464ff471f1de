// Package mkv reads what minikeyvalue (github.com/geohot/minikeyvalue, as of 451d248)
// wrote, so that davkv can adopt its volumes in place: its index records, where it put
// each key's file on a volume, and how it ranked volumes for a key. It knows nothing of
// davkv and imports nothing of it.
package mkv
