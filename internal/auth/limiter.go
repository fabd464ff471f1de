package auth

// The limit on failed authentications per client address.

import (
	"sync"
	"time"
)

// Limiter limits the failed authentications of each client address to Burst at once,
// and Rate per second after that, so that no client can guess secrets quickly; a
// limited address's requests with credentials are refused until it may fail again.
// The zero value allows 20 at once and 1 a second.
type Limiter struct {
	// Burst is how many failures an address may make at once (zero: 20).
	Burst int
	// Rate is how many more failures an address earns each second (zero: 1).
	Rate float64

	mu    sync.Mutex
	addrs map[string]*allowance
}

// allowance is an address's token bucket: the failures it may still make, as of when.
type allowance struct {
	tokens float64
	at     time.Time
}

// maxAddrs bounds the addresses remembered; past it, the ones that could fail their
// whole Burst again are forgotten.
const maxAddrs = 10000

func (l *Limiter) params() (float64, float64) {
	burst, rate := float64(l.Burst), l.Rate
	if burst <= 0 {
		burst = 20
	}
	if rate <= 0 {
		rate = 1
	}
	return burst, rate
}

// Limited reports whether addr has failed too often to try again now.
func (l *Limiter) Limited(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.addrs[addr]
	return a != nil && l.refill(a, now) < 1
}

// Failed counts a failed authentication of addr.
func (l *Limiter) Failed(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.addrs == nil {
		l.addrs = map[string]*allowance{}
	}
	a := l.addrs[addr]
	if a == nil {
		if len(l.addrs) >= maxAddrs {
			l.forgetRested(now)
		}
		for victim := range l.addrs { // still full: memory stays bounded
			if len(l.addrs) < maxAddrs {
				break
			}
			delete(l.addrs, victim)
		}
		burst, _ := l.params()
		a = &allowance{tokens: burst, at: now}
		l.addrs[addr] = a
	}
	if l.refill(a, now) >= 1 {
		a.tokens--
	}
}

// refill adds to a what it earned since it was last seen, and returns its tokens.
func (l *Limiter) refill(a *allowance, now time.Time) float64 {
	burst, rate := l.params()
	if d := now.Sub(a.at).Seconds(); d > 0 {
		a.tokens = min(burst, a.tokens+d*rate)
		a.at = now
	}
	return a.tokens
}

// forgetRested forgets the addresses whose allowance is whole again.
func (l *Limiter) forgetRested(now time.Time) {
	burst, _ := l.params()
	for addr, a := range l.addrs {
		if l.refill(a, now) >= burst {
			delete(l.addrs, addr)
		}
	}
}
