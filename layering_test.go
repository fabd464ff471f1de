package main

import (
	"os/exec"
	"strings"
	"testing"
)

// layers are davkv's packages under internal/, from the bottom up: a package may import
// those of the layers below its own, never its own layer's nor a higher one's, and
// none imports the commands at the root (Go forbids importing a main package anyway).
// A new package must be given its layer here.
var layers = [][]string{
	{"davkv/internal/mkv", "davkv/internal/policy"},
	{"davkv/internal/concurrent", "davkv/internal/httpconn", "davkv/internal/layout", "davkv/internal/s3proto", "davkv/internal/signurl", "davkv/internal/testenv", "davkv/internal/certs"},
	{"davkv/internal/index"},
	{"davkv/internal/index/leveldb", "davkv/internal/index/etcd", "davkv/internal/index/postgres", "davkv/internal/index/indextest", "davkv/internal/lifecycle", "davkv/internal/auth"},
}

// TestLayering checks, with go list, that every package under internal/ has a layer,
// and that none imports, directly or not, a package of its own layer or above.
func TestLayering(t *testing.T) {
	goList := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}"}, args...)...).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		return strings.Fields(string(out))
	}
	layer := map[string]int{}
	for i, l := range layers {
		for _, p := range l {
			layer[p] = i
		}
	}
	for _, p := range goList("./internal/...") {
		if _, ok := layer[p]; !ok {
			t.Errorf("package %s has no layer in layers", p)
		}
	}
	for p, l := range layer {
		for _, d := range goList("-deps", p) {
			if d == p || !strings.HasPrefix(d, "davkv") {
				continue
			}
			if dl, ok := layer[d]; !ok || dl >= l {
				t.Errorf("%s (layer %d) imports %s (layer %d, or none): only lower layers may be imported", p, l, d, dl)
			}
		}
	}
}
