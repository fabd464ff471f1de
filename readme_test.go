package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadme runs the README's `make run` and then every curl example in it, checking
// that each answers the status its comment says.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make run")
	}
	for _, tool := range []string{"make", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run the tests with 'make test'", tool)
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"make run", "make test"} {
		if !bytes.Contains(readme, []byte(cmd)) {
			t.Fatalf("README lacks %q", cmd)
		}
	}
	var examples [][]string
	var online, offline []string // ./davkv lines, with the cluster up and after it stops
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		line := sc.Text()
		if m := readmeExample.FindStringSubmatch(line); m != nil {
			examples = append(examples, m[1:])
		}
		if strings.HasPrefix(line, "./davkv ") {
			if strings.Contains(line, "-db ./data/indexdb") { // the master's index: it must be stopped
				offline = append(offline, line)
			} else {
				online = append(online, line)
			}
		}
	}
	if len(examples) < 10 || len(online) < 2 || len(offline) < 2 {
		t.Fatalf("found %d curl examples, %d and %d ./davkv examples in the README", len(examples), len(online), len(offline))
	}

	port, vports := freePort(t), []string{fmt.Sprint(freePort(t)), fmt.Sprint(freePort(t)), fmt.Sprint(freePort(t))}
	data := t.TempDir()
	run := exec.Command("make", "run")
	run.Env = append(os.Environ(), "DATA="+data, fmt.Sprintf("PORT=%d", port), "VOLUME_PORTS="+strings.Join(vports, " "))
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	run.Stdout, run.Stderr = out, out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { run.Wait(); close(exited) }()
	stop := func() {
		syscall.Kill(-run.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("make run did not stop on SIGTERM")
		}
	}
	t.Cleanup(stop)
	eventually(t, 60*time.Second, "make run did not start a cluster", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && strings.Contains(out.String(), "cluster up")
	})

	master := fmt.Sprintf("127.0.0.1:%d", port)
	// davkv runs a README line of the binary with this cluster's ports and paths.
	davkvLine := func(line string) {
		line = strings.ReplaceAll(line, "localhost:3000", master)
		for i, p := range vports {
			line = strings.ReplaceAll(line, fmt.Sprintf("localhost:300%d", i+1), "localhost:"+p)
		}
		line = strings.ReplaceAll(line, "./data/", data+"/")
		line = strings.ReplaceAll(line, "/tmp/davkv-rebuilt", filepath.Join(data, "rebuilt"))
		out, err := exec.Command("bash", "-c", line).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", line, err, out)
		}
	}
	for _, ex := range examples {
		line := strings.ReplaceAll(ex[0], "localhost:3000", master)
		script := line + ` -s -o /dev/null -w '%{http_code}'`
		cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
		got, err := cmd.Output()
		if err != nil || string(got) != ex[1] {
			t.Errorf("%s\n  got %q (%v), want %s", ex[0], got, err, ex[1])
		}
	}
	for _, line := range online {
		davkvLine(line)
	}
	stop()
	eventually(t, 5*time.Second, "processes of make run still running", func() bool {
		return syscall.Kill(-run.Process.Pid, 0) != nil
	})
	if _, err := os.Stat(filepath.Join(data, "indexdb")); err != nil {
		t.Errorf("make run kept no index in DATA: %v", err)
	}
	// The offline commands need the volumes but not the master.
	for _, p := range vports {
		v := &testVolume{t: t, Dir: filepath.Join(data, "volume"+p)}
		fmt.Sscan(p, &v.port)
		if err := v.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.Stop)
	}
	for _, line := range offline {
		davkvLine(line)
	}
	// Nothing of the cluster may outlive it.
}

// readmeExample is a `curl` line of the README with the status its comment promises.
var readmeExample = regexp.MustCompile(`^(.*curl .*?)\s+# (\d{3})\b`)
