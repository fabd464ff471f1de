package main

// Which volumes hold a key, in preference order (rendezvous hashing), and which
// subvolume.

import (
	"crypto/md5"
	"encoding/binary"
	"io"
	"slices"
	"strings"
)

// Placement decides where a key lives: which volumes hold its replicas, in preference
// order, and which file on them. It is pure computation, shared by the master, rebuild and
// rebalance, so that all of them agree on where a key belongs.
type Placement struct {
	// Volumes are the host:port names of all volumes. Their order does not matter:
	// rendezvous hashing ranks them by name.
	Volumes []string
	// Replicas is how many volumes hold each key.
	Replicas int
	// Subvolumes is how many top-level directories (sv00, sv01, ...) a volume is split
	// into, so that a volume can span several disks mounted there.
	Subvolumes int
}

// Rank returns all volumes ordered by how much key prefers them (rendezvous, or highest
// random weight, hashing). Adding a volume moves only the keys that now rank it among
// their first Replicas; the rest keep their places.
func (p Placement) Rank(key string) []string {
	type scored struct {
		volume string
		score  uint64
	}
	s := make([]scored, len(p.Volumes))
	for i, v := range p.Volumes {
		s[i] = scored{v, rendezvousScore(key, v)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.volume, b.volume)
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].volume
	}
	return out
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

// Subvolume returns the subvolume directory number that key goes to on every volume.
func (p Placement) Subvolume(key string) int {
	h := md5.Sum([]byte(key))
	return int(binary.BigEndian.Uint32(h[4:8]) % uint32(max(p.Subvolumes, 1)))
}

func rendezvousScore(key, volume string) uint64 {
	h := md5.New()
	io.WriteString(h, volume)
	h.Write([]byte{0})
	io.WriteString(h, key)
	var sum [md5.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
