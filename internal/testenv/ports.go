package testenv

// Free loopback ports for servers that bind them themselves.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// FreePort returns a port free on 127.0.0.1 a moment ago, for a server that binds it
// itself. t may be nil (in TestMain): then it panics if there is none.
func FreePort(t testing.TB) int {
	return FreePortOn(t, "127.0.0.1")
}

// testPorts hands out the ports of FreePortOn: below the kernel's ephemeral range
// (32768 and up), which a port of :0 or any outgoing connection may take between
// FreePort and the server's bind (an etcd member failed to start in CI so), and each
// once per test binary. It starts at a random port so that test binaries running at
// once rarely meet.
var testPorts = struct {
	sync.Mutex
	next int
}{next: 20000 + rand.IntN(12000)}

// FreePortOn is FreePort on host, a loopback address.
func FreePortOn(t testing.TB, host string) int {
	testPorts.Lock()
	defer testPorts.Unlock()
	for range 12768 {
		port := testPorts.next
		testPorts.next++
		if testPorts.next >= 32768 {
			testPorts.next = 20000
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	if t == nil {
		panic("no free port on " + host)
	}
	t.Fatalf("no free port on %s", host)
	return 0
}
