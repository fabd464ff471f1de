package testenv

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestFreePorts: no port is handed out twice, and each is below the ephemeral range.
func TestFreePorts(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if seen[p] || p < 20000 || p >= 32768 {
			t.Fatalf("port %d: seen before %v, or out of 20000-32767", p, seen[p])
		}
		seen[p] = true
	}
}

// TestVolume: a volume on another loopback address stores and serves a file, answers
// only there, and once stopped leaves no process behind.
func TestVolume(t *testing.T) {
	v := StartVolumeOn(t, "127.0.0.2")
	req, _ := http.NewRequest(http.MethodPut, "http://"+v.Addr+"/sv00/a/b/file", strings.NewReader("hello"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + v.Addr + "/sv00/a/b/file")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" || len(v.Files()) != 1 {
		t.Fatalf("GET = %q, files %q", b, v.Files())
	}
	if _, err := http.Get("http://127.0.0.1:" + strings.Split(v.Addr, ":")[1] + "/"); err == nil {
		t.Fatal("a volume on 127.0.0.2 answers on 127.0.0.1")
	}
	if err := v.Start(); err == nil {
		t.Fatal("a running volume started again")
	}
	v.Kill()
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	v.Stop()
	if left := LeftRunning(); len(left) > 0 {
		t.Fatalf("left running: %q", left)
	}
}

// TestEtcd: a 3-member cluster answers and elects a leader, and takes writes again once
// its leader is killed.
func TestEtcd(t *testing.T) {
	e := StartEtcd(t, 3)
	e.Kill(e.Leader(t))
	client, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	Eventually(t, 20*time.Second, "no write after the leader was killed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.Put(ctx, "/testenv", "")
		return err == nil
	})
}
