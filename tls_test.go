package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestTLS runs a master with -tls-cert and -tls-key, made in the test, and drives it
// over HTTPS with curl (HTTP/1.1 and HTTP/2), the AWS CLI, boto3 and rclone, each told
// to trust the certificate; then replaces the certificate's files and sends SIGHUP,
// and the master serves the new one without a restart.
func TestTLS(t *testing.T) {
	first, second := testenv.SelfSigned(t, "first"), testenv.SelfSigned(t, "second")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first.Install(t, certFile, keyFile)
	vols := []string{testenv.StartVolume(t).Addr, testenv.StartVolume(t).Addr, testenv.StartVolume(t).Addr}
	port := testenv.FreePort(t)
	cmd := exec.Command(davkvBinary, "server", "-volumes", strings.Join(vols, ","), "-db", filepath.Join(dir, "db"),
		"-port", fmt.Sprint(port), "-s3keys", testAdmin, "-auth", "-tls-cert", certFile, "-tls-key", keyFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Started(cmd, "davkv server with TLS")
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	// served says which certificate the master serves, without trusting either.
	served := func() string {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return ""
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	testenv.Eventually(t, 10*time.Second, "the master did not answer over TLS", func() bool { return served() == "first" })
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: first.Pool}}}
	if resp, err := trusting.Get(url + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /health over TLS: %v", err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(strings.Replace(url, "https", "http", 1) + "/health"); err == nil && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain HTTP to a TLS master: %d, want 400 or no answer", resp.StatusCode)
	}

	t.Run("curl", func(t *testing.T) {
		for _, proto := range []string{"--http1.1", "--http2"} {
			key := "/bkt/curl" + proto
			status, body := curl(t, proto, "--cacert", first.CertFile, "-u", testAdmin, "-X", "PUT", "--data-binary", "tls", url+key)
			if status != 201 {
				t.Fatalf("curl %s PUT: %d %s", proto, status, body)
			}
			status, body = curl(t, proto, "--cacert", first.CertFile, "-u", testAdmin, "-L", url+key)
			if status != 200 || body != "tls" {
				t.Fatalf("curl %s GET: %d %q", proto, status, body)
			}
		}
		out, err := exec.Command("curl", "-sS", "--http2", "--cacert", first.CertFile, "-o", "/dev/null", "-w", "%{http_version}", url+"/health").Output()
		if err != nil || string(out) != "2" {
			t.Fatalf("curl --http2 spoke HTTP/%s, %v", out, err)
		}
		if status, _ := curl(t, "--cacert", first.CertFile, url+"/bkt/curl--http2"); status != 401 {
			t.Fatalf("an anonymous GET over TLS: %d, want 401", status)
		}
		if out, err := exec.Command("curl", "-sS", url+"/health").CombinedOutput(); err == nil {
			t.Fatalf("curl trusted a self-signed certificate it was not given: %s", out)
		}
	})

	t.Run("s3 tools", func(t *testing.T) {
		tools := newS3Tools(t, url)
		tools.extra = []string{"DAVKV_CA=" + first.CertFile}
		access, secret, _ := strings.Cut(testAdmin, ":")
		big := filepath.Join(tools.dir, "big.bin")
		if err := os.WriteFile(big, testenv.RandomBytes(9<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		steps := [][]string{
			{"aws", "--ca-bundle", first.CertFile, "--endpoint-url", url, "s3", "mb", "s3://tls"},
			{"aws", "--ca-bundle", first.CertFile, "--endpoint-url", url, "s3", "cp", big, "s3://tls/big.bin"},
			{"aws", "--ca-bundle", first.CertFile, "--endpoint-url", url, "s3", "cp", "s3://tls/big.bin", filepath.Join(tools.dir, "back.bin")},
			{"rclone", "--config", "/dev/null", "--ca-cert", first.CertFile, "copyto", big, "davkv:tls/by-rclone.bin"},
			{"rclone", "--config", "/dev/null", "--ca-cert", first.CertFile, "check", tools.dir, "davkv:tls", "--one-way", "--include", "big.bin"},
		}
		for _, step := range steps {
			if out, err := tools.run(t, access, secret, "", step[0], step[1:]...); err != nil {
				t.Fatalf("%q: %v\n%s", step, err, out)
			}
		}
		if a, b := readFile(t, big), readFile(t, filepath.Join(tools.dir, "back.bin")); a != b {
			t.Fatal("aws s3 cp over TLS read back other bytes")
		}
		script := `
import os, boto3
from botocore.config import Config
s = boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1", verify=os.environ["DAVKV_CA"],
                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s.put_object(Bucket="tls", Key="boto3", Body=b"over tls")
assert s.get_object(Bucket="tls", Key="boto3")["Body"].read() == b"over tls"
assert sorted(o["Key"] for o in s.list_objects_v2(Bucket="tls")["Contents"]) == ["big.bin", "boto3", "by-rclone.bin"]
print("ok")
`
		if out, err := tools.run(t, access, secret, script, "python3", "-"); err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("boto3 over TLS: %v\n%s", err, out)
		}
	})

	t.Run("commands", func(t *testing.T) {
		keys := exec.Command(davkvBinary, "keys", "-master", url, "-add", "over-tls", "-policy", "readonly")
		keys.Env = append(os.Environ(), "DAVKV_KEY="+testAdmin, "SSL_CERT_FILE="+first.CertFile)
		if out, err := keys.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "over-tls:") {
			t.Fatalf("davkv keys -master https://...: %v\n%s", err, out)
		}
		keys = exec.Command(davkvBinary, "keys", "-master", url)
		keys.Env = append(os.Environ(), "DAVKV_KEY="+testAdmin, "SSL_CERT_FILE=/dev/null")
		if out, err := keys.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate") {
			t.Fatalf("davkv keys to a master whose certificate it does not trust: %v\n%s", err, out)
		}
	})

	second.Install(t, certFile, keyFile)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the master did not serve the new certificate after SIGHUP", func() bool { return served() == "second" })
	os.WriteFile(keyFile, []byte("not a key"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	testenv.Eventually(t, 5*time.Second, "a failed reload was not logged", func() bool {
		return strings.Contains(stderr.String(), "the TLS certificate was not reloaded")
	})
	if got := served(); got != "second" {
		t.Fatalf("after a failed reload the master serves %q, want second still", got)
	}
	if strings.Contains(stderr.String(), "davkvtestsecret") {
		t.Fatal("the master logged the administrator's secret")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVolumeTLS runs volumes with DAVKV_TLS_CERT and a master with -volume-tls that
// trusts their certificate through SSL_CERT_FILE: values are stored and read over TLS,
// clients are redirected to https, a plain connection to a volume gets nothing, a
// master that does not trust the certificate finds no volume up, and the offline
// commands reach the volumes over TLS too.
func TestVolumeTLS(t *testing.T) {
	cert := testenv.SelfSigned(t, "volumes")
	secret := "DAVKV_SECRET=volume-tls-test-secret"
	var vols []string
	for range 3 {
		v := testenv.StartVolume(t, "DAVKV_TLS_CERT="+cert.CertFile, "DAVKV_TLS_KEY="+cert.KeyFile, secret)
		vols = append(vols, v.Addr)
	}
	db := filepath.Join(t.TempDir(), "db")
	args := []string{"-volumes", strings.Join(vols, ","), "-db", db, "-volume-tls"}
	env := []string{"SSL_CERT_FILE=" + cert.CertFile, secret}
	start := func(db string, env []string) (*exec.Cmd, *lockedBuffer, string) {
		port := testenv.FreePort(t)
		cmd := exec.Command(davkvBinary, "server", "-volumes", strings.Join(vols, ","), "-db", db, "-volume-tls", "-port", fmt.Sprint(port))
		cmd.Env = append(os.Environ(), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		log := &lockedBuffer{}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Started(cmd, "davkv server -volume-tls")
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, log, fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	cmd, _, url := start(db, env)
	testenv.Eventually(t, 10*time.Second, "the master found no volume up over TLS", func() bool { return healthStatus(url) == 200 })
	if status, body := curl(t, "-X", "PUT", "--data-binary", "secure", url+"/k"); status != 201 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(url + "/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, "https://127.0.0.1:") {
		t.Fatalf("GET: %d to %q, want a redirect to https", resp.StatusCode, loc)
	}
	loc := resp.Header.Get("Location")
	if status, body := curl(t, "-L", "--cacert", cert.CertFile, url+"/k"); status != 200 || body != "secure" {
		t.Fatalf("GET through the redirect: %d %q", status, body)
	}
	if status, _ := curl(t, strings.Replace(loc, "https://", "http://", 1)); status != 400 {
		t.Fatalf("plain HTTP to a TLS volume: %d, want nginx's 400", status)
	}

	t.Run("untrusted", func(t *testing.T) {
		_, _, other := start(filepath.Join(t.TempDir(), "db"), []string{"SSL_CERT_FILE=/dev/null", secret})
		testenv.Eventually(t, 10*time.Second, "a master that does not trust the volumes did not say why in /health", func() bool {
			resp, err := http.Get(other + "/health")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 503 && strings.Contains(string(b), "certificate signed by unknown authority")
		})
	})

	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	verify := exec.Command(davkvBinary, append([]string{"verify", "-deep"}, args...)...)
	verify.Env = append(os.Environ(), env...)
	if out, err := verify.CombinedOutput(); err != nil || !strings.Contains(string(out), "1 keys") {
		t.Fatalf("verify -deep over TLS: %v\n%s", err, out)
	}
}

// healthStatus is the status of url's /health, 0 if it does not answer.
func healthStatus(url string) int {
	resp, err := http.Get(url + "/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
