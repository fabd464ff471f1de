// Package signurl signs links to a volume for nginx's secure_link module, which
// volume.sh turns on with DAVKV_SIGNREADS: a link that expires and cannot be made or
// changed without the volumes' secret.
package signurl
