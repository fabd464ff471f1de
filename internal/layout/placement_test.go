package layout

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestPlacementGolden pins where keys go. If it fails, placement changed and every
// existing cluster would look for its values in the wrong place: don't update the
// values, fix the change.
func TestPlacementGolden(t *testing.T) {
	p := Placement{Volumes: fiveVolumes, Replicas: 3, Subvolumes: 10}
	long := "/" + strings.Repeat("x", 300)
	longName := strings.Repeat("eHh4", 50)
	tests := []struct {
		key     string
		volumes []string
		path    string
	}{
		{"/hello", []string{"localhost:3001", "localhost:3002", "localhost:3003"}, "sv07/3e/d1/L2hlbGxv"},
		{"/a/b/c", []string{"localhost:3002", "localhost:3005", "localhost:3001"}, "sv07/77/e3/L2EvYi9j"},
		{"/camera/2026/11/22/frame-000001.jpg", []string{"localhost:3001", "localhost:3004", "localhost:3002"},
			"sv08/e7/89/L2NhbWVyYS8yMDI2LzExLzIyL2ZyYW1lLTAwMDAwMS5qcGc"},
		{"/ünïcödé key", []string{"localhost:3002", "localhost:3001", "localhost:3005"}, "sv01/d2/7a/L8O8bsOvY8O2ZMOpIGtleQ"},
		{long, []string{"localhost:3005", "localhost:3002", "localhost:3003"},
			"sv09/71/2a/L3h4" + longName[4:] + ".d/" + longName + ".d/eA"},
	}
	for _, tt := range tests {
		t.Run(tt.key[:min(len(tt.key), 20)], func(t *testing.T) {
			if got := p.Choose(tt.key); !slices.Equal(got, tt.volumes) {
				t.Errorf("Choose = %q, want %q", got, tt.volumes)
			}
			if got := KeyPath(tt.key, p.Subvolume(tt.key)); got != tt.path {
				t.Errorf("KeyPath = %q, want %q", got, tt.path)
			}
		})
	}
}

func TestPlacementIgnoresVolumeOrder(t *testing.T) {
	domains := hostVolumes(3, 4)
	zones, weights := map[string]string{}, map[string]float64{}
	for i, v := range domains {
		zones[v], weights[v] = []string{"a", "a", "b"}[i/4], float64(1+i%3)
	}
	for _, a := range []Placement{{Volumes: fiveVolumes, Replicas: 3}, {Volumes: domains, Replicas: 3, Zones: zones, Weights: weights}} {
		b := a
		b.Volumes = slices.Clone(a.Volumes)
		rand.Shuffle(len(b.Volumes), func(i, j int) { b.Volumes[i], b.Volumes[j] = b.Volumes[j], b.Volumes[i] })
		for i := range 1000 {
			key := fmt.Sprintf("/key/%d", i)
			if !slices.Equal(a.Rank(key), b.Rank(key)) {
				t.Fatalf("%s: %q with %q, %q with %q", key, a.Rank(key), a.Volumes, b.Rank(key), b.Volumes)
			}
		}
	}
}

// TestAddingAVolumeMovesItsShare checks rendezvous hashing's promise: going from 3 to
// 4 volumes with one replica moves about a quarter of the keys, all onto the new one.
func TestAddingAVolumeMovesItsShare(t *testing.T) {
	three := Placement{Volumes: fiveVolumes[:3], Replicas: 1}
	four := Placement{Volumes: fiveVolumes[:4], Replicas: 1}
	const n = 20000
	moved := 0
	for i := range n {
		key := fmt.Sprintf("/key/%d", i)
		before, after := three.Choose(key)[0], four.Choose(key)[0]
		if before != after {
			moved++
			if after != fiveVolumes[3] {
				t.Fatalf("%s moved from %s to %s, not to the new volume", key, before, after)
			}
		}
	}
	if frac := float64(moved) / n; frac < 0.23 || frac > 0.27 {
		t.Errorf("moved %.3f of keys, want about 0.25", frac)
	}
}

func TestPlacementSpreadsEvenly(t *testing.T) {
	p := Placement{Volumes: fiveVolumes, Replicas: 3, Subvolumes: 10}
	perVolume := map[string]int{}
	perSub := map[int]int{}
	const n = 20000
	for i := range n {
		key := fmt.Sprintf("/key/%d", i)
		for _, v := range p.Choose(key) {
			perVolume[v]++
		}
		perSub[p.Subvolume(key)]++
	}
	for v, c := range perVolume {
		if want := n * 3 / 5; c < want*9/10 || c > want*11/10 {
			t.Errorf("volume %s has %d replicas, want about %d", v, c, want)
		}
	}
	for s, c := range perSub {
		if want := n / 10; c < want*8/10 || c > want*12/10 {
			t.Errorf("subvolume %d has %d keys, want about %d", s, c, want)
		}
	}
}

var fiveVolumes = []string{"localhost:3001", "localhost:3002", "localhost:3003", "localhost:3004", "localhost:3005"}

// rankBefore is Rank as davkv placed keys before it knew failure domains and weights:
// rendezvous order by hash alone. Clusters written then must not move.
func rankBefore(key string, vols []string) []string {
	type scored struct {
		volume string
		score  uint64
	}
	s := make([]scored, len(vols))
	for i, v := range vols {
		s[i] = scored{v, rendezvousScore(key, v)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		return cmp.Or(cmp.Compare(b.score, a.score), strings.Compare(a.volume, b.volume))
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].volume
	}
	return out
}

// hostVolumes returns hosts×per volumes, host i at 10.0.0.i, ports 3001 and up.
func hostVolumes(hosts, per int) []string {
	var vols []string
	for h := range hosts {
		for v := range per {
			vols = append(vols, fmt.Sprintf("10.0.0.%d:%d", h+1, 3001+v))
		}
	}
	return vols
}

// TestPlacementAsBefore: a cluster whose volumes are each on a host of their own, or
// all on one, with no weights or all the same, ranks every key exactly as before
// domains and weights: no key moves on upgrade.
func TestPlacementAsBefore(t *testing.T) {
	distinct := hostVolumes(5, 1)
	zoned := map[string]string{}
	for i, v := range distinct {
		zoned[v] = fmt.Sprintf("zone-%d", i)
	}
	twice := map[string]float64{}
	for _, v := range fiveVolumes {
		twice[v] = 2
	}
	tests := []struct {
		name string
		p    Placement
	}{
		{"one host", Placement{Volumes: fiveVolumes, Replicas: 3}},
		{"one host, equal weights", Placement{Volumes: fiveVolumes, Replicas: 3, Weights: twice}},
		{"a host each", Placement{Volumes: distinct, Replicas: 3}},
		{"a host and a zone each", Placement{Volumes: distinct, Replicas: 3, Zones: zoned}},
		{"one host, one zone", Placement{Volumes: fiveVolumes, Replicas: 3, Zones: map[string]string{
			fiveVolumes[0]: "z", fiveVolumes[1]: "z", fiveVolumes[2]: "z", fiveVolumes[3]: "z", fiveVolumes[4]: "z"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 20000 {
				key := fmt.Sprintf("/key/%d", i)
				if got, want := tt.p.Rank(key), rankBefore(key, tt.p.Volumes); !slices.Equal(got, want) {
					t.Fatalf("%s: Rank = %q, before %q", key, got, want)
				}
			}
		})
	}
}

// TestPlacementDomainsGolden pins where keys go with zones and weights. If it fails,
// placement changed and clusters with domains would look for their values in the
// wrong place: don't update the values, fix the change.
func TestPlacementDomainsGolden(t *testing.T) {
	p := Placement{Volumes: hostVolumes(3, 3), Replicas: 3, Zones: map[string]string{}, Weights: map[string]float64{}}
	for i, v := range p.Volumes {
		p.Zones[v] = []string{"a", "a", "b"}[i/3]
		if i%3 == 0 {
			p.Weights[v] = 3
		}
	}
	tests := []struct {
		key  string
		rank []string
	}{
		{"/hello", []string{"10.0.0.2:3001", "10.0.0.3:3003", "10.0.0.1:3003", "10.0.0.3:3001", "10.0.0.2:3002", "10.0.0.3:3002", "10.0.0.1:3002", "10.0.0.2:3003", "10.0.0.1:3001"}},
		{"/a/b/c", []string{"10.0.0.1:3002", "10.0.0.3:3001", "10.0.0.2:3001", "10.0.0.3:3003", "10.0.0.1:3003", "10.0.0.3:3002", "10.0.0.2:3003", "10.0.0.1:3001", "10.0.0.2:3002"}},
		{"/camera/2026/11/22/frame-000001.jpg", []string{"10.0.0.2:3001", "10.0.0.3:3001", "10.0.0.1:3001", "10.0.0.3:3003", "10.0.0.2:3002", "10.0.0.3:3002", "10.0.0.1:3003", "10.0.0.1:3002", "10.0.0.2:3003"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := p.Rank(tt.key); !slices.Equal(got, tt.rank) {
				t.Errorf("Rank = %q\nwant   %q", got, tt.rank)
			}
		})
	}
}

// TestPlacementSpreadsDomains: each key's replicas fall in as many zones, then hosts,
// as there are, and no domain takes a second replica while another has none.
func TestPlacementSpreadsDomains(t *testing.T) {
	twoZones := map[string]string{}
	for i, v := range hostVolumes(3, 4) {
		twoZones[v] = []string{"a", "a", "b"}[i/4]
	}
	tests := []struct {
		name         string
		p            Placement
		zones, hosts int
	}{
		{"3 hosts of 4, 3 replicas", Placement{Volumes: hostVolumes(3, 4), Replicas: 3}, 1, 3},
		{"3 hosts of 4, 2 replicas", Placement{Volumes: hostVolumes(3, 4), Replicas: 2}, 1, 2},
		{"2 hosts of 3, 3 replicas", Placement{Volumes: hostVolumes(2, 3), Replicas: 3}, 1, 2},
		{"5 hosts of 2, 3 replicas", Placement{Volumes: hostVolumes(5, 2), Replicas: 3}, 1, 3},
		{"2 zones of 2 and 1 hosts of 4, 2 replicas", Placement{Volumes: hostVolumes(3, 4), Replicas: 2, Zones: twoZones}, 2, 2},
		{"2 zones of 2 and 1 hosts of 4, 3 replicas", Placement{Volumes: hostVolumes(3, 4), Replicas: 3, Zones: twoZones}, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 20000 {
				key := fmt.Sprintf("/key/%d", i)
				got := tt.p.Choose(key)
				if z, h := tt.p.Spread(got); z != tt.zones || h != tt.hosts {
					t.Fatalf("%s on %q: %d zones and %d hosts, want %d and %d", key, got, z, h, tt.zones, tt.hosts)
				}
				perHost := map[string]int{}
				for _, v := range got {
					perHost[Host(v)]++
				}
				if slices.Max(slices.Collect(maps.Values(perHost)))-slices.Min(slices.Collect(maps.Values(perHost))) > 1 {
					t.Fatalf("%s on %q: hosts unevenly used", key, got)
				}
			}
		})
	}
}

// TestPlacementWeights: a volume's share of keys follows its weight, alone and within
// zones.
func TestPlacementWeights(t *testing.T) {
	vols := hostVolumes(4, 1)
	tests := []struct {
		name     string
		p        Placement
		replicas int
	}{
		{"weights 1 and 3", Placement{Volumes: vols, Replicas: 1, Weights: map[string]float64{vols[2]: 3, vols[3]: 3}}, 1},
		{"weights 1 and 3, zones", Placement{Volumes: vols, Replicas: 1, Weights: map[string]float64{vols[2]: 3, vols[3]: 3},
			Zones: map[string]string{vols[0]: "a", vols[1]: "b", vols[2]: "c", vols[3]: "d"}}, 1},
		{"weights 1 and 3 on one host", Placement{Volumes: fiveVolumes[:4], Replicas: 1, Weights: map[string]float64{fiveVolumes[2]: 3, fiveVolumes[3]: 3}}, 1},
		{"weights 1, 2, 3, 4", Placement{Volumes: vols, Replicas: 1, Weights: map[string]float64{vols[1]: 2, vols[2]: 3, vols[3]: 4}}, 1},
	}
	const n = 100000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count := map[string]int{}
			total := 0.0
			for _, v := range tt.p.Volumes {
				total += tt.p.Weight(v)
			}
			for i := range n {
				count[tt.p.Choose(fmt.Sprintf("/key/%d", i))[0]]++
			}
			for _, v := range tt.p.Volumes {
				want := tt.p.Weight(v) / total
				got := float64(count[v]) / n
				t.Logf("%s weight %g: %.4f of keys, want %.4f", v, tt.p.Weight(v), got, want)
				if math.Abs(got-want)/want > 0.03 {
					t.Errorf("%s weight %g has %.4f of keys, want %.4f (within 3%%)", v, tt.p.Weight(v), got, want)
				}
			}
		})
	}
}

// TestAddingToADomainMovesItsShare: a volume added to a host, or a host added, takes
// its share of keys and nothing else moves: every replica that moves, moves onto it.
func TestAddingToADomainMovesItsShare(t *testing.T) {
	tests := []struct {
		name         string
		before, add  []string
		replicas     int
		movedReplica float64 // the share of replicas that should move
	}{
		// Every key keeps one replica on each host: host 1's 1/3 of replicas, split
		// over 5 volumes instead of 4, gives the new one a fifth of them.
		{"a volume to one of 3 hosts of 4", hostVolumes(3, 4), []string{"10.0.0.1:3005"}, 3, 1.0 / 3 / 5},
		// A fourth host takes a quarter of the replicas.
		{"a host of 4 to 3 hosts of 4", hostVolumes(3, 4), hostVolumes(4, 4)[12:], 3, 1.0 / 4},
		// A host's chance is its best volume's: one volume among 11 gets about
		// 1/11 of the replicas, a little more for being a host of its own.
		{"a host of 1 to 5 hosts of 2", hostVolumes(5, 2), []string{"10.0.0.6:3001"}, 2, 1.0 / 11},
	}
	const n = 20000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := Placement{Volumes: tt.before, Replicas: tt.replicas}
			after := Placement{Volumes: append(slices.Clone(tt.before), tt.add...), Replicas: tt.replicas}
			moved := 0
			for i := range n {
				key := fmt.Sprintf("/key/%d", i)
				old, now := before.Choose(key), after.Choose(key)
				for _, v := range now {
					if !slices.Contains(old, v) {
						moved++
						if !slices.Contains(tt.add, v) {
							t.Fatalf("%s: %q became %q, a replica moved elsewhere than onto the new volumes", key, old, now)
						}
					}
				}
			}
			frac := float64(moved) / (n * float64(tt.replicas))
			t.Logf("%.4f of replicas moved, want about %.4f", frac, tt.movedReplica)
			if math.Abs(frac-tt.movedReplica)/tt.movedReplica > 0.1 {
				t.Errorf("%.4f of replicas moved, want about %.4f", frac, tt.movedReplica)
			}
		})
	}
}

// TestDomainLossFigures computes the README's figures: the share of keys that losing
// one host (or zone) makes unreadable, and loses if its disks are gone, with
// placement by rendezvous alone (before) and by domain (now), and how many keys an
// upgrade moves.
func TestDomainLossFigures(t *testing.T) {
	twoZones := map[string]string{}
	for i, v := range hostVolumes(4, 3) {
		twoZones[v] = []string{"a", "a", "b", "b"}[i/3]
	}
	tests := []struct {
		name string
		p    Placement
		// lose returns the volumes of the domain lost.
		lose string // a host, or "zone:NAME"
	}{
		{"3 hosts × 4 volumes, 3 replicas, a host lost", Placement{Volumes: hostVolumes(3, 4), Replicas: 3}, "10.0.0.1"},
		{"3 hosts × 4 volumes, 2 replicas, a host lost", Placement{Volumes: hostVolumes(3, 4), Replicas: 2}, "10.0.0.1"},
		{"4 hosts × 3 volumes, 3 replicas, a host lost", Placement{Volumes: hostVolumes(4, 3), Replicas: 3}, "10.0.0.1"},
		{"6 hosts × 10 volumes, 2 replicas, a host lost", Placement{Volumes: hostVolumes(6, 10), Replicas: 2}, "10.0.0.1"},
		{"2 zones × 2 hosts × 3 volumes, 2 replicas, a zone lost", Placement{Volumes: hostVolumes(4, 3), Replicas: 2, Zones: twoZones}, "zone:a"},
	}
	const n = 30000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p = tt.p.Prepared()
			lost := func(v string) bool {
				if zone, ok := strings.CutPrefix(tt.lose, "zone:"); ok {
					return tt.p.Zone(v) == zone
				}
				return Host(v) == tt.lose
			}
			var before, now, moves int
			for i := range n {
				key := fmt.Sprintf("/key/%d", i)
				old, chosen := rankBefore(key, tt.p.Volumes)[:tt.p.Replicas], tt.p.Choose(key)
				if !slices.ContainsFunc(old, func(v string) bool { return !lost(v) }) {
					before++
				}
				if !slices.ContainsFunc(chosen, func(v string) bool { return !lost(v) }) {
					now++
				}
				if !slices.Equal(slices.Sorted(slices.Values(old)), slices.Sorted(slices.Values(chosen))) {
					moves++
				}
			}
			t.Logf("%s: %.2f%% of keys unreadable before, %.2f%% now; %.1f%% of keys move on upgrade",
				tt.name, 100*float64(before)/n, 100*float64(now)/n, 100*float64(moves)/n)
			if now != 0 {
				t.Errorf("%d of %d keys had every replica in the domain lost", now, n)
			}
		})
	}
}

// BenchmarkRank measures placement, which every request does: 5 volumes on one host
// (plain rendezvous, as the benchmarks' cluster), and 3 and 6 hosts of 4 and 10.
func BenchmarkRank(b *testing.B) {
	for _, p := range []Placement{{Volumes: fiveVolumes, Replicas: 3}, {Volumes: hostVolumes(3, 4), Replicas: 3}, {Volumes: hostVolumes(6, 10), Replicas: 3}} {
		p := p.Prepared()
		b.Run(fmt.Sprint(len(p.Volumes)), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				p.Rank(fmt.Sprintf("/key/%d", i))
			}
		})
	}
}

// TestPlacementMKVGolden pins RankMKV to minikeyvalue 451d248's key2volume for these
// keys (printed by its own code): an adopted cluster ranked otherwise would look for
// its values on the wrong volumes.
func TestPlacementMKVGolden(t *testing.T) {
	vols := []string{"127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003", "127.0.0.1:3004", "127.0.0.1:3005"}
	p := Placement{Volumes: vols, Replicas: 3, Subvolumes: 10, Ranking: RankMKV}.Prepared()
	tests := []struct {
		key    string
		chosen []string
	}{
		{"/hello", []string{"127.0.0.1:3003", "127.0.0.1:3005", "127.0.0.1:3004"}},
		{"/?>>", []string{"127.0.0.1:3001", "127.0.0.1:3005", "127.0.0.1:3002"}},
		{"/camera/2024-01-01/frame-000001.jpg", []string{"127.0.0.1:3001", "127.0.0.1:3003", "127.0.0.1:3004"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := p.Choose(tt.key); !slices.Equal(got, tt.chosen) {
				t.Errorf("Choose = %q, want %q", got, tt.chosen)
			}
			if got := len(p.Rank(tt.key)); got != len(vols) {
				t.Errorf("Rank has %d volumes, want %d", got, len(vols))
			}
		})
	}
}
