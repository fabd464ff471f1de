package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestReadme runs the README's `make run` and then every curl example in it, checking
// that each answers the status its comment says, its S3 examples (aws, rclone), and its
// ./davkv commands. The cluster runs with the volume secret the README's Operations
// section makes, so every example also shows that the secret changes nothing for
// clients.
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
	var s3Lines []string         // the S3 examples, one script
	var secretLine string        // the line that makes the volume secret
	sc := bufio.NewScanner(bytes.NewReader(readme))
	inCode := false // within a fenced block
	section := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			section = line
		}
		if section == mkvSection || section == accessSection {
			continue // TestReadmeMKV and TestReadmeAccess run them, on clusters of their own
		}
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if m := readmeExample.FindStringSubmatch(line); m != nil {
			examples = append(examples, m[1:])
		}
		if inCode && slices.ContainsFunc([]string{"aws ", "rclone ", "export AWS_", "export RCLONE_"}, func(p string) bool { return strings.HasPrefix(line, p) }) {
			s3Lines = append(s3Lines, line)
		}
		if inCode && strings.HasPrefix(line, "export DAVKV_SECRET=") {
			secretLine = line
		}
		if strings.HasPrefix(line, "./davkv ") {
			if strings.Contains(line, "-db ./data/indexdb") { // the master's index: it must be stopped
				offline = append(offline, line)
			} else {
				online = append(online, line)
			}
		}
	}
	if len(examples) < 10 || len(online) < 2 || len(offline) < 2 || len(s3Lines) < 4 || secretLine == "" {
		t.Fatalf("found %d curl examples, %d and %d ./davkv examples, %d S3 lines, secret line %q in the README", len(examples), len(online), len(offline), len(s3Lines), secretLine)
	}
	made, err := exec.Command("bash", "-c", secretLine+"\n"+`printf %s "$DAVKV_SECRET"`).Output()
	if err != nil || CheckSecret(string(made)) != nil || len(made) == 0 {
		t.Fatalf("%s: %q, %v", secretLine, made, err)
	}
	secretEnv := "DAVKV_SECRET=" + string(made)

	port, vports := testenv.FreePort(t), []string{fmt.Sprint(testenv.FreePort(t)), fmt.Sprint(testenv.FreePort(t)), fmt.Sprint(testenv.FreePort(t))}
	data := t.TempDir()
	run := exec.Command("make", "run")
	run.Env = append(os.Environ(), "DATA="+data, fmt.Sprintf("PORT=%d", port), "VOLUME_PORTS="+strings.Join(vports, " "), secretEnv)
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	run.Stdout, run.Stderr = out, out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Started(run, "make run")
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
	testenv.Eventually(t, 60*time.Second, "make run did not start a cluster", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && strings.Contains(out.String(), "cluster up")
	})

	master := fmt.Sprintf("127.0.0.1:%d", port)
	// ports puts this cluster's ports and paths in a README line.
	// ports gives a line this cluster's ports, in one pass: a port put in may begin
	// with 3002, which a second pass would take for the README's.
	ports := func(line string) string {
		return readmePorts.ReplaceAllStringFunc(line, func(hp string) string {
			if n := hp[len(hp)-1] - '0'; n > 0 {
				return "localhost:" + vports[n-1]
			}
			return master
		})
	}
	// davkv runs a README line of the binary with this cluster's ports and paths.
	davkvLine := func(line string) {
		line = strings.ReplaceAll(ports(line), "./data/", data+"/")
		line = strings.ReplaceAll(line, "/tmp/davkv-rebuilt", filepath.Join(data, "rebuilt"))
		line = strings.ReplaceAll(line, "/tmp/davkv-migrated", filepath.Join(data, "migrated"))
		cmd := exec.Command("bash", "-c", line)
		cmd.Env = append(os.Environ(), secretEnv)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", line, err, out)
		}
	}
	// The S3 examples run with Debian's tools first on the PATH, and none of the
	// machine's AWS settings.
	script := "set -e\n" + strings.ReplaceAll(strings.Join(s3Lines, "\n"), "localhost:3000", master)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin:" + os.Getenv("PATH")}
	if got, err := cmd.CombinedOutput(); err != nil || strings.Count(string(got), "docs/README.md") < 3 {
		t.Errorf("the README's S3 examples: %v\n%s", err, got)
	}
	c := &testCluster{t: t, URL: "http://" + master, client: http.DefaultClient}
	if status, got := c.Get("/media/docs/README.md"); status != http.StatusOK || !bytes.Equal(got, readme) {
		t.Errorf("the README uploaded with the AWS CLI, through the native API: %d, %d bytes", status, len(got))
	}
	for _, ex := range examples {
		script := ports(ex[0]) + ` -s -o /dev/null -w '%{http_code}'`
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
	testenv.Eventually(t, 5*time.Second, "processes of make run still running", func() bool {
		return syscall.Kill(-run.Process.Pid, 0) != nil
	})
	if _, err := os.Stat(filepath.Join(data, "indexdb")); err != nil {
		t.Errorf("make run kept no index in DATA: %v", err)
	}
	// The offline commands need the volumes but not the master.
	for _, p := range vports {
		v := &testenv.Volume{T: t, Dir: filepath.Join(data, "volume"+p), Env: []string{secretEnv}}
		fmt.Sscan(p, &v.Port)
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

// readmePorts are the README's master and volumes, which TestReadme's cluster has on
// other ports.
var readmePorts = regexp.MustCompile(`localhost:300[0-3]\b`)

// readmeExample is a `curl` line of the README with the status its comment promises.
var readmeExample = regexp.MustCompile(`^(.*curl .*?)\s+# (\d{3})\b`)

// TestReadmeCodeMap: the README's code map names every file of package main and every
// package under internal/, so that a newcomer finds the code for any behaviour there.
func TestReadmeCodeMap(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, codeMap, ok := strings.Cut(string(readme), "## Code map")
	if !ok {
		t.Fatal("the README has no Code map")
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir("internal", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != "internal" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") && !strings.Contains(codeMap, "`"+f+"`") {
			t.Errorf("the README's code map does not name %s", f)
		}
	}
}

// accessSection is the README's section on access control.
const accessSection = "## Access control"

// TestReadmeAccess runs the first shell block of the README's Access control section,
// as one bash script: its make run (with -auth) in the background on free ports, then
// each line, each curl example checked for the status its comment says.
func TestReadmeAccess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs make run")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n"+accessSection+"\n")
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok || !strings.Contains(block, "make run &") {
		t.Fatal("the README's Access control section has no shell block that runs make run in the background")
	}
	port, vports := testenv.FreePort(t), []string{fmt.Sprint(testenv.FreePort(t)), fmt.Sprint(testenv.FreePort(t)), fmt.Sprint(testenv.FreePort(t))}
	master := fmt.Sprintf("127.0.0.1:%d", port)
	script := "set -euo pipefail\n"
	examples := 0
	for line := range strings.SplitSeq(strings.TrimSpace(block), "\n") {
		if m := readmeExample.FindStringSubmatch(line); m != nil {
			examples++
			quoted := "'" + strings.ReplaceAll(m[1], "'", `'\''`) + "'"
			line = fmt.Sprintf("got=$(%s -s -o /dev/null -w '%%{http_code}')\n[ \"$got\" = %s ] || { echo %s: got $got, want %s; exit 1; }", m[1], m[2], quoted, m[2])
		}
		script += readmePorts.ReplaceAllString(line, master) + "\n"
		if strings.Contains(line, "make run &") {
			script += fmt.Sprintf("for _ in $(seq 600); do curl -fs %s/health >/dev/null && break; sleep 0.1; done\n", master)
		}
	}
	if examples < 5 {
		t.Fatalf("found %d curl examples in the Access control section", examples)
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "DATA="+t.TempDir(), fmt.Sprintf("PORT=%d", port), "VOLUME_PORTS="+strings.Join(vports, " "), "DAVKV_KEY=", "DAVKV_S3_KEYS=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a pipe: Wait must not wait for make run, which the script leaves going.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Started(cmd, "the README's Access control example")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(2 * time.Minute):
		runErr = errors.New("did not finish in 2 minutes")
	}
	// The script leaves make run going; its process group goes with it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	testenv.Eventually(t, 10*time.Second, "processes of the example still running", func() bool {
		return syscall.Kill(-cmd.Process.Pid, 0) != nil
	})
	if runErr != nil {
		b, _ := os.ReadFile(out.Name())
		t.Fatalf("the README's Access control example: %v\n%s", runErr, b)
	}
}

// mkvSection is the README's section on moving from minikeyvalue.
const mkvSection = "## Moving from minikeyvalue"

// TestReadmeMKV runs the ./davkv lines of the README's section on moving from
// minikeyvalue, on a minikeyvalue cluster of three volumes: the dry run, the import,
// and a master started as the README says, through which every key reads back.
func TestReadmeMKV(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(readme), mkvSection+"\n")
	if !ok {
		t.Fatalf("README lacks %q", mkvSection)
	}
	text, _, _ = strings.Cut(text, "\n## ")
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, "./davkv ") {
			lines = append(lines, line)
		}
	}
	if len(lines) < 3 || !strings.HasSuffix(lines[len(lines)-1], " server") {
		t.Fatalf("found %q in %s: want the import lines, then the server's", lines, mkvSection)
	}
	c := startCluster(t, 3, nil)
	m := writeMKV(t, c, 10, 5000)
	c.StopMaster()
	data, port := t.TempDir(), testenv.FreePort(t)
	local := func(line string) string {
		for i, v := range c.Vols {
			line = strings.ReplaceAll(line, fmt.Sprintf("localhost:300%d", i+1), v.Addr)
		}
		line = strings.ReplaceAll(line, "/tmp/mkv-index", m.db)
		line = strings.ReplaceAll(line, "./data/", data+"/")
		line = strings.ReplaceAll(line, "-port 3000", fmt.Sprintf("-port %d", port))
		return strings.Replace(line, "./davkv ", davkvBinary+" ", 1)
	}
	for _, line := range lines[:len(lines)-1] {
		out, err := exec.Command("bash", "-c", local(line)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "import-mkv: ") {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	server := exec.Command("bash", "-c", "exec "+local(lines[len(lines)-1]))
	server.Stderr = t.Output()
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Started(server, "the README's server")
	t.Cleanup(func() { server.Process.Signal(syscall.SIGTERM); server.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.Eventually(t, 10*time.Second, "the master to start", func() bool {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	for key, value := range m.live {
		resp, err := http.Get(url + escapeKey(key))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, value) {
			t.Fatalf("GET %.40q: %d, %d bytes, %v; want %d bytes", key, resp.StatusCode, len(got), err, len(value))
		}
	}
}
