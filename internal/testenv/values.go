package testenv

import "math/rand/v2"

// RandomBytes returns n bytes that are the same for the same n: values that tests can
// write and compare without keeping them.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}
