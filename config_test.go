package main

import (
	"flag"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	"davkv/internal/layout"
)

// TestVolumesFlag: -volumes takes minikeyvalue's plain host:port list, and zones and
// weights as [ZONE/]HOST:PORT[*WEIGHT]; what it cannot place is an error that names the
// entry, from the flag (a bad weight) or from Validate (what is no host:port).
func TestVolumesFlag(t *testing.T) {
	tests := []struct {
		arg     string
		volumes []string
		zones   map[string]string
		weights map[string]float64
		err     string
	}{
		{arg: "localhost:3001,localhost:3002", volumes: []string{"localhost:3001", "localhost:3002"}},
		{arg: " a:1 , b:2 ,", volumes: []string{"a:1", "b:2"}},
		{arg: "a:1*2,b:2*0.5,c:3", volumes: []string{"a:1", "b:2", "c:3"}, weights: map[string]float64{"a:1": 2, "b:2": 0.5}},
		{arg: "rack-1/a:1,rack-1/a:2*3,rack.2/b:1", volumes: []string{"a:1", "a:2", "b:1"},
			zones: map[string]string{"a:1": "rack-1", "a:2": "rack-1", "b:1": "rack.2"}, weights: map[string]float64{"a:2": 3}},
		{arg: "[::1]:3001*2", volumes: []string{"[::1]:3001"}, weights: map[string]float64{"[::1]:3001": 2}},
		{arg: "z/a:1,b:2", err: "volumes b:2 have no zone while others have"},
		{arg: "/a:1", err: `volume "/a:1" must be host:port (or ZONE/host:port, a zone being letters`},
		{arg: "z z/a:1", err: `volume "z z/a:1" must be host:port`},
		{arg: "http://a:1", err: `volume "http://a:1" must be host:port`},
		{arg: "a:1x", err: `volume "a:1x" must be host:port`},
		{arg: "a:0", err: `volume "a:0" must be host:port`},
		{arg: "a:1*0", err: `volume "a:1*0": a weight is a number above 0`},
		{arg: "a:1*-1", err: "a weight is a number above 0"},
		{arg: "a:1*x", err: "a weight is a number above 0"},
		{arg: "a:1*NaN", err: "a weight is a number above 0"},
		{arg: "a:1*20000", err: "at most 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			var c ClusterConfig
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.Var(volumesFlag{&c.Volumes, &c.Zones, &c.Weights}, "volumes", "")
			err := fs.Parse([]string{"-volumes", tt.arg})
			if err == nil {
				c.DB, c.Replicas, c.Subvolumes = "d", 1, 1
				err = c.Validate()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Volumes, tt.volumes) || !maps.Equal(c.Zones, tt.zones) || !maps.Equal(c.Weights, tt.weights) {
				t.Fatalf("got %q %v %v, want %q %v %v", c.Volumes, c.Zones, c.Weights, tt.volumes, tt.zones, tt.weights)
			}
			// What the master logs is the list as given.
			var entries []string
			for e := range strings.SplitSeq(tt.arg, ",") {
				if e = strings.TrimSpace(e); e != "" {
					entries = append(entries, e)
				}
			}
			if got := (volumesFlag{&c.Volumes, &c.Zones, &c.Weights}).String(); got != strings.Join(entries, ",") {
				t.Errorf("String = %q", got)
			}
		})
	}
}

// TestZoneConfig: a zone or weight that names no volume, or a -zone no volume is in,
// is an error, not a master that silently reads from anywhere.
func TestZoneConfig(t *testing.T) {
	base := func() ServerConfig {
		return ServerConfig{ClusterConfig: ClusterConfig{Volumes: []string{"a:1", "b:1"}, DB: "d", Replicas: 2, Subvolumes: 10,
			Zones: map[string]string{"a:1": "x", "b:1": "y"}}, VolTimeout: 1}
	}
	tests := []struct {
		name   string
		change func(*ServerConfig)
		err    string
	}{
		{"fine", func(c *ServerConfig) { c.Zone = "x" }, ""},
		{"unknown zone", func(c *ServerConfig) { c.Zone = "q" }, `-zone "q": no volume is in that zone`},
		{"zone without zones", func(c *ServerConfig) { c.Zones, c.Zone = nil, "x" }, `-zone "x": no volume`},
		{"zone of no volume", func(c *ServerConfig) { c.Zones["c:1"] = "x" }, "c:1, which is not one of -volumes"},
		{"some zoned", func(c *ServerConfig) { delete(c.Zones, "b:1") }, "some volumes have no zone"},
		{"weight of no volume", func(c *ServerConfig) { c.Weights = map[string]float64{"c:1": 2} }, "c:1, which is not one of -volumes"},
		{"bad weight", func(c *ServerConfig) { c.Weights = map[string]float64{"a:1": 0} }, "weight 0 must be above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.change(&c)
			err := c.Validate()
			if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Validate = %v, want %q", err, tt.err)
			}
		})
	}
}

// TestPlacementFlag: -placement is davkv (the default) or mkv; mkv knows no zones or
// weights, and anything else is an error.
func TestPlacementFlag(t *testing.T) {
	tests := []struct {
		args []string
		want layout.Ranking
		err  string
	}{
		{args: nil, want: layout.RankDavkv},
		{args: []string{"-placement", "davkv"}, want: layout.RankDavkv},
		{args: []string{"-placement", "mkv"}, want: layout.RankMKV},
		{args: []string{"-placement", "md5"}, err: `-placement must be davkv or mkv, got "md5"`},
		{args: []string{"-placement", "mkv", "-volumes", "z/a:1,z/b:1"}, err: "knows no zones or weights"},
		{args: []string{"-placement", "mkv", "-volumes", "a:1*2,b:1"}, err: "knows no zones or weights"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var c ClusterConfig
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			clusterFlags(fs, &c)
			if err := fs.Parse(append([]string{"-volumes", "a:1,b:1", "-db", "d", "-replicas", "2"}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || c.Ranking != tt.want || c.Placement().Ranking != tt.want {
				t.Fatalf("Ranking %q, %v; want %q", c.Ranking, err, tt.want)
			}
		})
	}
}
