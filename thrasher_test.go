package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func thrashConfig(c *testCluster, prefix string, ops ...string) ThrashConfig {
	return ThrashConfig{Master: c.URL, Volumes: c.Config.Volumes, Replicas: c.Config.Replicas, Subvolumes: c.Config.Subvolumes,
		Count: 200, Workers: 8, Size: 3000, Prefix: prefix, Ops: ops, VolTimeout: time.Second}
}

// TestThrash thrashes through the master (native and S3) and straight to the volumes.
func TestThrash(t *testing.T) {
	c := startCluster(t, 3, nil)
	for _, how := range []string{"master", "direct", "s3"} {
		cfg := thrashConfig(c, "/thrashed/t", thrashOps...)
		cfg.Direct, cfg.S3 = how == "direct", how == "s3"
		var out bytes.Buffer
		if err := runThrash(context.Background(), cfg, &out, testLogger(t)); err != nil {
			t.Fatalf("%s: %v\n%s", how, err, out.String())
		}
		t.Log(out.String())
		for _, want := range []string{"thrash: 200 keys", "keys/s ", "value MB/s ", "put ", "get ", "delete "} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q:\n%s", how, want, out.String())
			}
		}
	}
	if files := c.AllFiles(); len(files) != 0 {
		t.Fatalf("thrash left %d files", len(files))
	}
}

// TestThrashFindsWrongBytes writes keys, damages one value behind the master's back,
// and checks that reading them back fails, naming the key.
func TestThrashFindsWrongBytes(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.Replicas = 1 })
	if err := runThrash(context.Background(), thrashConfig(c, "/w", "put"), &bytes.Buffer{}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if err := runThrash(context.Background(), thrashConfig(c, "/w", "get"), &bytes.Buffer{}, testLogger(t)); err != nil {
		t.Fatalf("reading back what -ops put wrote: %v", err)
	}
	key := "/w/00000007"
	rec := c.Record(key)
	path := filepath.Join(volumeDir(c, rec.Volumes[0]), rec.Path(key))
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, 3000), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := runThrash(context.Background(), thrashConfig(c, "/w", "get"), &out, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "1 operations failed") {
		t.Fatalf("wrong bytes not found: %v\n%s", err, out.String())
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{{"4096", 4096}, {"4k", 4096}, {"4K", 4096}, {"1M", 1 << 20}, {"2G", 2 << 30}} {
		if got, err := parseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "k", "1.5M", "-1", "12x"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestThrashConfig(t *testing.T) {
	ok := ThrashConfig{Master: "x:1", Count: 1, Workers: 1, Size: 1, Prefix: "/p", Ops: []string{"get"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*ThrashConfig){
		func(c *ThrashConfig) { c.Ops = []string{"frob"} },
		func(c *ThrashConfig) { c.Ops = nil },
		func(c *ThrashConfig) { c.Prefix = "p" },
		func(c *ThrashConfig) { c.Count = 0 },
		func(c *ThrashConfig) { c.Direct = true },
	} {
		bad := ok
		mutate(&bad)
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
