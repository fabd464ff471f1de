package layout

// Which volumes hold a key, in preference order (weighted rendezvous hashing, spread
// over failure domains), and which subvolume.

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"net"
	"slices"
	"strings"

	"davkv/internal/mkv"
)

// Placement decides where a key lives: which volumes hold its replicas, in preference
// order, and which file on them. It is pure computation, shared by the master, rebuild,
// rebalance and verify, so that all of them agree on where a key belongs.
type Placement struct {
	// Volumes are the host:port names of all volumes. Their order does not matter:
	// rendezvous hashing ranks them by name.
	Volumes []string
	// Replicas is how many volumes hold each key.
	Replicas int
	// Subvolumes is how many top-level directories (sv00, sv01, ...) a volume is split
	// into, so that a volume can span several disks mounted there.
	Subvolumes int
	// Zones names the zone (a rack, a room, a data center) of each volume. A key's
	// replicas go to as many zones as there are, then to as many hosts. Nil, or a
	// volume missing from it, is the zone "": with no zones, hosts alone are the
	// failure domains.
	Zones map[string]string
	// Weights is each volume's share of keys relative to the others (its size). Nil,
	// or a volume missing from it, is weight 1.
	Weights map[string]float64
	// Ranking is how volumes are ranked for a key: RankDavkv (the zero value) or
	// RankMKV, for a cluster adopted from minikeyvalue that is to move nothing.
	Ranking Ranking

	// topo is the above worked out once (see Prepared); nil works it out per key.
	topo *topology
}

// Rank returns all volumes ordered by how much key prefers them. It takes them in
// weighted rendezvous (highest random weight) order, except that each next volume is
// the first in that order whose zone, then host, holds the fewest volumes taken so
// far: the first Replicas fall in as many zones, and then hosts, as there are, and a
// write that skips a domain that is down still spreads over the others. Adding a
// volume moves only the keys that now choose it, each by one replica onto it: the
// volumes a key takes on a host are that host's first in rendezvous order, so a
// newcomer can only take the place of one of them or of another host's. When every
// volume is on a host of its own, or all on one, and weights are equal, this is plain
// rendezvous order, as davkv placed keys before it knew domains.
func (p Placement) Rank(key string) []string {
	if p.Ranking == RankMKV {
		return mkv.Rank(key, p.Volumes)
	}
	t := p.topo
	if t == nil {
		t = p.topology()
	}
	order := p.rendezvous(key, t)
	if t.spreads {
		order = t.spread(order)
	}
	out := make([]string, len(order))
	for i, v := range order {
		out[i] = p.Volumes[v]
	}
	return out
}

// Ranking names a way of ranking volumes for a key.
type Ranking string

const (
	// RankDavkv is davkv's: weighted rendezvous hashing, spread over zones and hosts.
	RankDavkv Ranking = ""
	// RankMKV is minikeyvalue's (see mkv.Rank): md5(key + volume), highest first,
	// without zones or weights. A cluster adopted from minikeyvalue keeps its keys
	// where they are with it; a rebalance under RankDavkv moves them when the
	// operator wants.
	RankMKV Ranking = "mkv"
)

// Prepared returns p with its domains and weights worked out once, for a placement
// that ranks keys on every request. p must not change afterwards.
func (p Placement) Prepared() Placement {
	p.topo = p.topology()
	return p
}

// topology is what Rank needs to know of the volumes besides their names: each
// volume's (by its index in Volumes) zone and host, numbered, and its weight.
type topology struct {
	zone, host   []int
	zones, hosts int
	weight       []float64
	weighted     bool // the weights differ
	spreads      bool // domains can change rendezvous order
}

func (p Placement) topology() *topology {
	t := &topology{zone: make([]int, len(p.Volumes)), host: make([]int, len(p.Volumes)), weight: make([]float64, len(p.Volumes))}
	zoneIDs, hostIDs := map[string]int{}, map[string]int{}
	for i, v := range p.Volumes {
		t.zone[i] = id(zoneIDs, p.Zone(v))
		t.host[i] = id(hostIDs, Host(v))
		t.weight[i] = p.Weight(v)
		t.weighted = t.weighted || t.weight[i] != t.weight[0]
	}
	t.zones, t.hosts = len(zoneIDs), len(hostIDs)
	// Not when every volume is alone in its zone and host, or all share one.
	n := len(p.Volumes)
	t.spreads = (t.zones > 1 && t.zones < n) || (t.hosts > 1 && t.hosts < n)
	return t
}

// id numbers name in ids, a new name with the next number.
func id(ids map[string]int, name string) int {
	n, ok := ids[name]
	if !ok {
		n = len(ids)
		ids[name] = n
	}
	return n
}

// spread reorders volumes (indexes, in rendezvous order) so that each next one is the
// first whose zone, then host, holds the fewest taken so far.
func (t *topology) spread(order []int) []int {
	zoneTaken, hostTaken := make([]int, t.zones), make([]int, t.hosts)
	out := make([]int, 0, len(order))
	for len(order) > 0 {
		// No volume can do better than no more taken in its zone than in any zone,
		// nor on its host than on any host: the first such is the one.
		floorZone, floorHost := slices.Min(zoneTaken), slices.Min(hostTaken)
		best := 0
		for i := 0; i < len(order); i++ {
			zi, hi := zoneTaken[t.zone[order[i]]], hostTaken[t.host[order[i]]]
			if zi == floorZone && hi == floorHost {
				best = i
				break
			}
			if zb := zoneTaken[t.zone[order[best]]]; zi < zb || zi == zb && hi < hostTaken[t.host[order[best]]] {
				best = i
			}
		}
		v := order[best]
		zoneTaken[t.zone[v]]++
		hostTaken[t.host[v]]++
		out = append(out, v)
		order = slices.Delete(order, best, best+1)
	}
	return out
}

// rendezvous returns the indexes of all volumes in weighted rendezvous order for key.
func (p Placement) rendezvous(key string, t *topology) []int {
	type scored struct {
		volume int
		hash   uint64
		score  float64
	}
	s := make([]scored, len(p.Volumes))
	for i, v := range p.Volumes {
		s[i] = scored{volume: i, hash: rendezvousScore(key, v)}
		if t.weighted {
			// Logarithmic method (Schindelhauer and Schomaker): -w/ln(u) for u
			// uniform in (0, 1) makes a volume first with probability w/Σw.
			u := (float64(s[i].hash>>11) + 0.5) / (1 << 53)
			s[i].score = t.weight[i] / -math.Log(u)
		}
	}
	slices.SortFunc(s, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		case a.hash > b.hash:
			return -1
		case a.hash < b.hash:
			return 1
		}
		return strings.Compare(p.Volumes[a.volume], p.Volumes[b.volume])
	})
	out := make([]int, len(s))
	for i := range s {
		out[i] = s[i].volume
	}
	return out
}

// Zone is volume's zone, "" if none was named.
func (p Placement) Zone(volume string) string { return p.Zones[volume] }

// HasZone reports whether a volume is in zone.
func (p Placement) HasZone(zone string) bool {
	return slices.ContainsFunc(p.Volumes, func(v string) bool { return p.Zone(v) == zone })
}

// Weight is volume's weight, 1 unless one was named.
func (p Placement) Weight(volume string) float64 {
	if w, ok := p.Weights[volume]; ok && w > 0 {
		return w
	}
	return 1
}

// Host is the host of a host:port volume, its failure domain when no zone is named.
func Host(volume string) string {
	if h, _, err := net.SplitHostPort(volume); err == nil {
		return h
	}
	return volume
}

// Choose returns the Replicas volumes that should hold key, most preferred first.
func (p Placement) Choose(key string) []string {
	r := p.Rank(key)
	return r[:min(p.Replicas, len(r))]
}

// InRankOrder returns vols ordered by how much key prefers them.
func (p Placement) InRankOrder(key string, vols []string) []string {
	var out []string
	for _, v := range p.Rank(key) {
		if slices.Contains(vols, v) {
			out = append(out, v)
		}
	}
	return out
}

// Spread counts the distinct zones and hosts that vols are in.
func (p Placement) Spread(vols []string) (zones, hosts int) {
	z, h := map[string]bool{}, map[string]bool{}
	for _, v := range vols {
		z[p.Zone(v)], h[Host(v)] = true, true
	}
	return len(z), len(h)
}

// Crowded reports whether vols are in fewer zones, or as many zones and fewer hosts,
// than want: one domain's failure takes more of its replicas than placement allows.
func (p Placement) Crowded(vols, want []string) bool {
	z, h := p.Spread(vols)
	wz, wh := p.Spread(want)
	return z < wz || z == wz && h < wh
}

// Subvolume returns the subvolume directory number that key goes to on every volume.
func (p Placement) Subvolume(key string) int {
	h := md5.Sum([]byte(key))
	return int(binary.BigEndian.Uint32(h[4:8]) % uint32(max(p.Subvolumes, 1)))
}

// rendezvousScore is md5(volume, 0, key)'s first 8 bytes: how much key prefers volume.
func rendezvousScore(key, volume string) uint64 {
	var buf [256]byte // on the stack for all but the longest keys
	sum := md5.Sum(append(append(append(buf[:0], volume...), 0), key...))
	return binary.BigEndian.Uint64(sum[:8])
}
