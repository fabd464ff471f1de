package main

import (
	"fmt"
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
	a := Placement{Volumes: fiveVolumes, Replicas: 3}
	shuffled := slices.Clone(fiveVolumes)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	b := Placement{Volumes: shuffled, Replicas: 3}
	for i := range 1000 {
		key := fmt.Sprintf("/key/%d", i)
		if !slices.Equal(a.Choose(key), b.Choose(key)) {
			t.Fatalf("%s: %q with %q, %q with %q", key, a.Choose(key), fiveVolumes, b.Choose(key), shuffled)
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
