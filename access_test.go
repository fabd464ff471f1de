package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"davkv/internal/testenv"
)

// testAdmin is the administrator's key of testS3Keys, as DAVKV_KEY gives it.
const testAdmin = "davkvtest:davkvtestsecret"

// authCluster starts a cluster whose master has testS3Keys' administrator and -auth,
// and bucket b, made by the administrator.
func authCluster(t *testing.T) *testCluster {
	t.Helper()
	// A failure earned back every 100 s: a test that makes too many is limited at once
	// and stays so, however slow its requests (on an etcd index, say).
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys, cfg.Auth, cfg.AuthRate = testS3Keys, true, 0.01 })
	if _, err := s3Client(c, "davkvtest", "davkvtestsecret").CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("bbb")}); err != nil {
		t.Fatal(err)
	}
	return c
}

// keysCmd runs davkv keys' code against master url with the administrator's key and
// returns what it printed.
func keysCmd(t *testing.T, url string, cfg KeysConfig) (string, error) {
	t.Helper()
	cfg.Master, cfg.Timeout = url, 5*time.Second
	if cfg.MasterKey == "" {
		cfg.MasterKey = testAdmin
	}
	var out bytes.Buffer
	err := runKeys(context.Background(), cfg, &out)
	return out.String(), err
}

// addKey adds key id with pol (a canned policy's name, or a document) through the
// master at url, and returns it as ID:SECRET.
func addKey(t *testing.T, url, id, pol string) string {
	t.Helper()
	if strings.HasPrefix(pol, "{") {
		path := filepath.Join(t.TempDir(), id+".json")
		if err := os.WriteFile(path, []byte(pol), 0o644); err != nil {
			t.Fatal(err)
		}
		pol = path
	}
	out, err := keysCmd(t, url, KeysConfig{Add: id, Policy: pol, Note: "for " + t.Name()})
	if err != nil {
		t.Fatalf("davkv keys -add %s: %v", id, err)
	}
	key := strings.TrimSpace(out)
	if !strings.HasPrefix(key, id+":") || len(key) < len(id)+30 {
		t.Fatalf("davkv keys -add %s printed %q", id, out)
	}
	return key
}

// onlyB is a key's policy: everything in bucket b, nothing elsewhere.
const onlyB = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::bbb","arn:aws:s3:::bbb/*"]}]}`

// curl runs the real curl with args against the master and returns the status and
// the body.
func curl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", append([]string{"-sS", "-w", "\n%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %q: %v", args, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	status, err := strconv.Atoi(s[i+1:])
	if err != nil {
		t.Fatalf("curl %q: no status in %q", args, s)
	}
	return status, s[:i]
}

// TestAuthNative drives the native API with curl on a master with -auth: each key may
// do what its policy allows, and whatever else it asks is refused with nothing
// changed on the volumes; anonymous requests read only a public-read bucket; a key
// revoked is refused at once; failures are counted and, past a burst, limited; no
// secret is ever logged or shown.
func TestAuthNative(t *testing.T) {
	c := authCluster(t)
	reader := addKey(t, c.URL, "reader", "readonly")
	inB := addKey(t, c.URL, "in-b", onlyB)
	up := addKey(t, c.URL, "uploader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::bbb/up/*"}]}`)
	if status, body := curl(t, "-u", testAdmin, "-X", "PUT", "--data-binary", "x", c.URL+"/bbb/x"); status != 201 {
		t.Fatalf("the administrator's PUT: %d %s", status, body)
	}
	if status, body := curl(t, "-u", testAdmin, "-X", "PUT", "--data-binary", "c", c.URL+"/ccc/x"); status != 201 {
		t.Fatalf("the administrator's PUT: %d %s", status, body)
	}
	files := c.AllFiles()
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		body   string
	}{
		{"anonymous read", []string{"-L", c.URL + "/bbb/x"}, 401, "credentials needed"},
		{"anonymous write", []string{"-X", "PUT", "--data-binary", "y", c.URL + "/bbb/y"}, 401, "credentials needed"},
		{"anonymous list", []string{c.URL + "/bbb/?list"}, 401, "credentials needed"},
		{"anonymous delete", []string{"-X", "DELETE", c.URL + "/bbb/x"}, 401, "credentials needed"},
		{"wrong secret", []string{"-u", "reader:wrong", "-L", c.URL + "/bbb/x"}, 401, "invalid credentials"},
		{"unknown key", []string{"-H", "Authorization: Bearer nobody:secret", "-L", c.URL + "/bbb/x"}, 401, "invalid credentials"},
		{"malformed", []string{"-H", "Authorization: Bearer nobody", c.URL + "/bbb/x"}, 401, "ID:SECRET"},
		{"reader reads", []string{"-u", reader, "-L", c.URL + "/bbb/x"}, 200, "x"},
		{"reader reads with a bearer token", []string{"-H", "Authorization: Bearer " + reader, "-L", c.URL + "/ccc/x"}, 200, "c"},
		{"reader lists", []string{"-u", reader, c.URL + "/?list"}, 200, `"/bbb/x"`},
		{"reader writes", []string{"-u", reader, "-X", "PUT", "--data-binary", "y", c.URL + "/bbb/y"}, 403, "key reader may not s3:PutObject arn:aws:s3:::bbb/y"},
		{"reader deletes", []string{"-u", reader, "-X", "DELETE", c.URL + "/bbb/x"}, 403, "may not s3:DeleteObject"},
		{"reader unlinks", []string{"-u", reader, "-X", "UNLINK", c.URL + "/bbb/x"}, 403, "may not s3:DeleteObject"},
		{"reader rebalances", []string{"-u", reader, "-X", "REBALANCE", c.URL + "/bbb/x"}, 403, "administrator"},
		{"reader lists keys", []string{"-u", reader, c.URL + "/?keys"}, 403, "administrator"},
		{"in-b reads c", []string{"-u", inB, "-L", c.URL + "/ccc/x"}, 403, "may not s3:GetObject arn:aws:s3:::ccc/x"},
		{"in-b lists everything", []string{"-u", inB, c.URL + "/?list"}, 403, "may not s3:ListBucket"},
		{"in-b lists b", []string{"-u", inB, c.URL + "/bbb/?list"}, 200, `"/bbb/x"`},
		{"in-b writes c", []string{"-u", inB, "-X", "PUT", "--data-binary", "y", c.URL + "/ccc/y"}, 403, "may not s3:PutObject"},
		{"uploader writes outside its prefix", []string{"-u", up, "-X", "PUT", "--data-binary", "y", c.URL + "/bbb/y"}, 403, "may not s3:PutObject"},
		{"uploader reads outside its prefix", []string{"-u", up, "-L", c.URL + "/bbb/x"}, 403, "may not s3:GetObject"},
		{"health needs nothing", []string{c.URL + "/health"}, 200, `"ready"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := curl(t, tc.args...)
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d saying %q", status, body, tc.status, tc.body)
			}
			if status >= 400 && strings.Count(strings.TrimSuffix(body, "\n"), "\n") > 0 {
				t.Fatalf("a refusal of more than one line: %q", body)
			}
		})
	}
	if got := c.AllFiles(); !slices.Equal(got, files) {
		t.Fatalf("refused requests changed the volumes' files:\n%q\nwere\n%q", got, files)
	}
	for _, tc := range []struct{ key, path string }{{inB, "/bbb/y"}, {up, "/bbb/up/z"}} {
		if status, body := curl(t, "-u", tc.key, "-X", "PUT", "--data-binary", "y", c.URL+tc.path); status != 201 {
			t.Fatalf("PUT %s with its key: %d %s", tc.path, status, body)
		}
		if status, body := curl(t, "-u", tc.key, "-L", c.URL+tc.path); status != 200 || body != "y" {
			t.Fatalf("GET %s with its key: %d %s", tc.path, status, body)
		}
	}
	if status, _ := curl(t, "-u", inB, "-X", "DELETE", c.URL+"/bbb/y"); status != 204 {
		t.Fatalf("in-b's DELETE in b: %d", status)
	}

	t.Run("public-read bucket", func(t *testing.T) {
		admin := s3Client(c, "davkvtest", "davkvtestsecret")
		ctx := context.Background()
		if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("pub")}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("pub"), Policy: aws.String(
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}]}`)}); err != nil {
			t.Fatal(err)
		}
		if status, _ := curl(t, "-u", testAdmin, "-X", "PUT", "--data-binary", "open", c.URL+"/pub/x"); status != 201 {
			t.Fatalf("PUT /pub/x: %d", status)
		}
		if status, body := curl(t, "-L", c.URL+"/pub/x"); status != 200 || body != "open" {
			t.Fatalf("anonymous GET of a public-read bucket: %d %q", status, body)
		}
		for _, args := range [][]string{{"-X", "PUT", "--data-binary", "y", c.URL + "/pub/y"}, {"-X", "DELETE", c.URL + "/pub/x"}, {c.URL + "/pub/?list"}} {
			if status, _ := curl(t, args...); status != 401 {
				t.Fatalf("anonymous %q in a public-read bucket: %d, want 401", args, status)
			}
		}
	})

	t.Run("revoked", func(t *testing.T) {
		if _, err := keysCmd(t, c.URL, KeysConfig{Remove: "in-b"}); err != nil {
			t.Fatal(err)
		}
		if status, _ := curl(t, "-u", inB, "-L", c.URL+"/bbb/x"); status != 401 {
			t.Fatalf("a revoked key's GET: %d, want 401", status)
		}
		out, err := keysCmd(t, c.URL, KeysConfig{})
		if err != nil || strings.Contains(out, "in-b") || !strings.Contains(out, "reader\t") {
			t.Fatalf("davkv keys lists %q, %v", out, err)
		}
		if _, err := keysCmd(t, c.URL, KeysConfig{Remove: "in-b"}); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("revoking it again: %v", err)
		}
	})

	t.Run("policy changed", func(t *testing.T) {
		if _, err := keysCmd(t, c.URL, KeysConfig{SetPolicy: "reader", Policy: "readwrite"}); err != nil {
			t.Fatal(err)
		}
		if status, body := curl(t, "-u", reader, "-X", "PUT", "--data-binary", "r", c.URL+"/bbb/r"); status != 201 {
			t.Fatalf("reader made readwrite: %d %s", status, body)
		}
	})

	t.Run("failures limited", func(t *testing.T) {
		limited := 0
		for range 30 {
			if status, _ := curl(t, "-u", "reader:guess", c.URL+"/bbb/x"); status == 429 {
				limited++
			}
		}
		if limited == 0 {
			t.Fatal("30 wrong secrets in a row were never limited")
		}
		if status, body := curl(t, "-u", reader, "-L", c.URL+"/bbb/x"); status != 429 {
			t.Fatalf("the right secret from a limited address: %d %s, want 429", status, body)
		}
		if status, _ := curl(t, "-L", c.URL+"/pub/x"); status != 200 {
			t.Fatalf("an anonymous read of a public bucket from a limited address: %d", status)
		}
		_, metrics := curl(t, c.URL+"/metrics")
		for _, want := range []string{`davkv_auth_failures_total{api="native",reason="credentials"}`, `davkv_auth_failures_total{api="native",reason="limited"}`, `davkv_auth_failures_total{api="native",reason="denied"}`} {
			if !strings.Contains(metrics, want+" ") || strings.Contains(metrics, want+" 0\n") {
				t.Errorf("/metrics: %s is missing or zero", want)
			}
		}
	})

	for _, secret := range []string{"davkvtestsecret", reader, inB, up} {
		_, s, _ := strings.Cut(secret, ":")
		if s == "" {
			s = secret
		}
		if strings.Contains(c.Logs.String(), s) {
			t.Errorf("the master logged a secret: %s", s)
		}
		_, page := curl(t, c.URL+"/metrics")
		_, keys := curl(t, "-u", testAdmin, c.URL+"/?keys")
		if strings.Contains(page, s) || strings.Contains(keys, s) {
			t.Errorf("a secret shows in /metrics or the keys' list: %s", s)
		}
	}
}

// TestAuthKeysCommand runs davkv keys as its users do, and checks its errors.
func TestAuthKeysCommand(t *testing.T) {
	c := authCluster(t)
	run := func(env []string, args ...string) (string, string, error) {
		cmd := exec.Command(davkvBinary, append([]string{"keys", "-master", c.URL}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	admin := []string{"DAVKV_KEY=" + testAdmin}
	out, stderr, err := run(admin, "-add", "ci-reader", "-policy", "readonly", "-note", "CI reads")
	if err != nil || !strings.HasPrefix(out, "ci-reader:") {
		t.Fatalf("davkv keys -add: %q, %v, %s", out, err, stderr)
	}
	if status, _ := curl(t, "-u", strings.TrimSpace(out), c.URL+"/bbb/?list"); status != 200 {
		t.Fatalf("the key added lists b: %d", status)
	}
	out, _, err = run(admin)
	if fields := strings.Split(strings.TrimSpace(out), "\t"); err != nil || len(fields) != 4 || fields[0] != "ci-reader" || fields[3] != "CI reads" {
		t.Fatalf("davkv keys: %q, %v", out, err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		err  string
	}{
		{"no key", []string{"DAVKV_KEY=", "DAVKV_S3_KEYS="}, nil, "needs an administrator's key"},
		{"not an administrator", []string{"DAVKV_KEY=ci-reader:wrong"}, nil, "401"},
		{"twice", admin, []string{"-add", "ci-reader", "-policy", "readonly"}, "409"},
		{"an administrator's ID", admin, []string{"-add", "davkvtest", "-policy", "readonly"}, "administrator"},
		{"bad ID", admin, []string{"-add", "a/b", "-policy", "readonly"}, "ID"},
		{"no policy", admin, []string{"-add", "x1x"}, "need -policy"},
		{"bad policy", admin, []string{"-add", "x1x", "-policy", "/nonexistent.json"}, "neither"},
		{"two actions", admin, []string{"-add", "x1x", "-remove", "ci-reader"}, "at most one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := run(tc.env, tc.args...)
			if err == nil || !strings.Contains(stderr, tc.err) || !strings.HasPrefix(stderr, "davkv: ") {
				t.Fatalf("davkv keys %q: %v, %q; want an error saying %q", tc.args, err, stderr, tc.err)
			}
		})
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{}}}}`), 0o644)
	if _, stderr, err := run(admin, "-add", "x1x", "-policy", bad); err == nil || !strings.Contains(stderr, "400") || !strings.Contains(stderr, "Condition") {
		t.Fatalf("a policy with a Condition: %v, %q", err, stderr)
	}
	if _, stderr, err := run(admin, "-set-policy", "nobody", "-policy", "readonly"); err == nil || !strings.Contains(stderr, "404") {
		t.Fatalf("-set-policy of no key: %v, %q", err, stderr)
	}
}

// TestAuthS3Clients drives the S3 API with the AWS CLI, rclone and boto3, as a
// read-only key, a key limited to one bucket and a revoked key, and unsigned: each
// allowed call works, and each other is refused with AccessDenied (or
// InvalidAccessKeyId) and changes nothing on the volumes.
func TestAuthS3Clients(t *testing.T) {
	c := authCluster(t)
	admin := s3Client(c, "davkvtest", "davkvtestsecret")
	ctx := context.Background()
	for _, b := range []string{"ccc", "pub"} {
		if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String("pub"), Policy: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/bbb/x", "/ccc/x", "/pub/x"} {
		if status, body := curl(t, "-u", testAdmin, "-X", "PUT", "--data-binary", "value of "+k, c.URL+k); status != 201 {
			t.Fatalf("PUT %s: %d %s", k, status, body)
		}
	}
	reader, inB := addKey(t, c.URL, "reader", "readonly"), addKey(t, c.URL, "in-b", onlyB)
	up := addKey(t, c.URL, "uploader", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:AbortMultipartUpload"],"Resource":"arn:aws:s3:::bbb/up/*"}]}`)
	revoked := addKey(t, c.URL, "revoked", "readwrite")
	if _, err := keysCmd(t, c.URL, KeysConfig{Remove: "revoked"}); err != nil {
		t.Fatal(err)
	}
	tools := newS3Tools(t, c.URL)
	local := filepath.Join(tools.dir, "local.txt")
	if err := os.WriteFile(local, []byte("local"), 0o644); err != nil {
		t.Fatal(err)
	}
	as := func(key string) (string, string) { id, secret, _ := strings.Cut(key, ":"); return id, secret }
	files := c.AllFiles()
	// rclone uploads a small file with a presigned PUT, and says only "403 Forbidden"
	// of its refusal.
	refused := []struct {
		name, key, tool string
		args            []string
		code            string
	}{
		{"reader uploads", reader, "aws", []string{"--endpoint-url", c.URL, "s3", "cp", local, "s3://bbb/new"}, "AccessDenied"},
		{"reader deletes", reader, "aws", []string{"--endpoint-url", c.URL, "s3", "rm", "s3://bbb/x"}, "AccessDenied"},
		{"reader makes a bucket", reader, "aws", []string{"--endpoint-url", c.URL, "s3", "mb", "s3://new-bucket"}, "AccessDenied"},
		{"in-b lists ccc", inB, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "lsf", "davkv:ccc"}, "AccessDenied"},
		{"in-b reads ccc", inB, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "cat", "davkv:ccc/x"}, "AccessDenied"},
		{"in-b writes ccc", inB, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "--s3-no-check-bucket", "copyto", local, "davkv:ccc/new"}, "403"},
		{"reader writes with rclone", reader, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "--s3-no-check-bucket", "copyto", local, "davkv:bbb/new"}, "403"},
		{"reader deletes with rclone", reader, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "deletefile", "davkv:bbb/x"}, "AccessDenied"},
		{"uploader writes outside its prefix with rclone", up, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "--s3-no-check-bucket", "copyto", local, "davkv:bbb/new"}, "403"},
		{"uploader outside its prefix", up, "aws", []string{"--endpoint-url", c.URL, "s3", "cp", local, "s3://bbb/elsewhere"}, "AccessDenied"},
		{"uploader reads outside its prefix", up, "aws", []string{"--endpoint-url", c.URL, "s3", "cp", "s3://bbb/x", filepath.Join(tools.dir, "x")}, "403"},
		{"revoked lists", revoked, "aws", []string{"--endpoint-url", c.URL, "s3", "ls", "s3://bbb/"}, "InvalidAccessKeyId"},
		{"revoked writes", revoked, "rclone", []string{"--config", "/dev/null", "--low-level-retries", "1", "--retries", "1", "--s3-no-check-bucket", "copyto", local, "davkv:bbb/new"}, "403"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			id, secret := as(tc.key)
			out, err := tools.run(t, id, secret, "", tc.tool, tc.args...)
			if err == nil || !strings.Contains(out, tc.code) {
				t.Fatalf("%s %q: %v, want %s:\n%s", tc.tool, tc.args, err, tc.code, out)
			}
		})
	}
	script := `
import os, sys, boto3, botocore
from botocore import UNSIGNED
from botocore.config import Config
def client(access, secret, **kw):
    return boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1",
        aws_access_key_id=access, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **kw))
def refused(code, f, *args, **kw):
    try:
        f(*args, **kw)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        return
    raise AssertionError("%s%r was not refused" % (f.__name__, args))
reader, inb, revoked = [client(*k.split(":", 1)) for k in sys.argv[1:4]]
anon = client(None, None, signature_version=UNSIGNED)
refused("AccessDenied", reader.put_object, Bucket="bbb", Key="new", Body=b"n")
d = reader.delete_objects(Bucket="bbb", Delete={"Objects": [{"Key": "x"}]})
assert [e["Code"] for e in d["Errors"]] == ["AccessDenied"], d
refused("AccessDenied", inb.copy_object, Bucket="bbb", Key="copy", CopySource={"Bucket": "ccc", "Key": "x"})
refused("AccessDenied", inb.put_bucket_policy, Bucket="ccc", Policy="{}")
refused("InvalidAccessKeyId", revoked.get_object, Bucket="bbb", Key="x")
refused("AccessDenied", anon.list_objects_v2, Bucket="pub")
refused("AccessDenied", anon.put_object, Bucket="pub", Key="new", Body=b"n")
refused("AccessDenied", anon.get_object, Bucket="bbb", Key="x")
print("refused")
`
	if out, err := tools.run(t, "", "", script, "python3", "-", reader, inB, revoked); err != nil || strings.TrimSpace(out) != "refused" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	if got := c.AllFiles(); !slices.Equal(got, files) {
		t.Fatalf("refused requests changed the volumes' files:\n%q\nwere\n%q", got, files)
	}

	// What each may do, it does.
	id, secret := as(reader)
	if out, err := tools.run(t, id, secret, "", "aws", "--endpoint-url", c.URL, "s3", "ls", "s3://ccc/"); err != nil || !strings.Contains(out, " x\n") {
		t.Fatalf("reader's aws s3 ls: %v\n%s", err, out)
	}
	id, secret = as(inB)
	if out, err := tools.run(t, id, secret, "", "aws", "--endpoint-url", c.URL, "s3", "ls"); err != nil || !strings.Contains(out, " bbb\n") || strings.Contains(out, "ccc") {
		t.Fatalf("in-b's aws s3 ls lists the buckets it may list, bbb only: %v\n%s", err, out)
	}
	rid, rsecret := as(reader)
	if out, err := tools.run(t, rid, rsecret, "", "rclone", "--config", "/dev/null", "lsf", "davkv:ccc"); err != nil || out != "x\n" {
		t.Fatalf("reader's rclone lsf: %q, %v", out, err)
	}
	id, secret = as(up)
	if out, err := tools.run(t, id, secret, "", "rclone", "--config", "/dev/null", "--s3-no-check-bucket", "copyto", local, "davkv:bbb/up/by-rclone"); err != nil {
		t.Fatalf("uploader's rclone copyto into its prefix: %v\n%s", err, out)
	}
	if out, err := tools.run(t, id, secret, "", "aws", "--endpoint-url", c.URL, "s3", "cp", local, "s3://bbb/up/by-aws"); err != nil {
		t.Fatalf("uploader's aws s3 cp into its prefix: %v\n%s", err, out)
	}
	if out, err := tools.run(t, id, secret, "", "aws", "--endpoint-url", c.URL, "s3", "cp", "s3://bbb/up/by-aws", "-"); err != nil || out != "local" {
		t.Fatalf("uploader's aws s3 cp from its prefix: %q, %v", out, err)
	}
	id, secret = as(inB)
	if out, err := tools.run(t, id, secret, "", "rclone", "--config", "/dev/null", "copyto", local, "davkv:bbb/by-rclone"); err != nil {
		t.Fatalf("in-b's rclone copyto bbb: %v\n%s", err, out)
	}
	if out, err := tools.run(t, id, secret, "", "rclone", "--config", "/dev/null", "cat", "davkv:bbb/by-rclone"); err != nil || out != "local" {
		t.Fatalf("in-b's rclone cat: %q, %v", out, err)
	}
	script = `
import os, sys, boto3
from botocore import UNSIGNED
from botocore.config import Config
def client(access, secret, **kw):
    return boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1",
        aws_access_key_id=access, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **kw))
reader, inb = [client(*k.split(":", 1)) for k in sys.argv[1:3]]
anon = client(None, None, signature_version=UNSIGNED)
assert reader.get_object(Bucket="ccc", Key="x")["Body"].read() == b"value of /ccc/x"
assert [o["Key"] for o in reader.list_objects_v2(Bucket="bbb")["Contents"]] == ["by-rclone", "up/by-aws", "up/by-rclone", "x"]
inb.copy_object(Bucket="bbb", Key="copy", CopySource={"Bucket": "bbb", "Key": "x"})
inb.delete_object(Bucket="bbb", Key="copy")
assert anon.get_object(Bucket="pub", Key="x")["Body"].read() == b"value of /pub/x"
print("ok")
`
	if out, err := tools.run(t, "", "", script, "python3", "-", reader, inB); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
}

// TestAuthMastersShareKeys starts two masters with -auth on one etcd index: a key
// added through one works through the other within a second (auth.DefaultTTL), and so
// does its revocation, and a bucket made public.
func TestAuthMastersShareKeys(t *testing.T) {
	e := testenv.StartEtcd(t, 3)
	ms := newMasters(t, e.DB("/keys"))
	ms.Flags = []string{"-s3keys", testAdmin, "-auth"}
	ms.Start()
	ms.Start()
	key := addKey(t, ms.URLs[0], "shared", "readwrite")
	put := func(i int, k string, cred string) int {
		status, _ := curl(t, "-u", cred, "-X", "PUT", "--data-binary", "v", ms.URLs[i]+k)
		return status
	}
	if status := put(0, "/bkt/a", key); status != 201 {
		t.Fatalf("PUT through the master that added the key: %d", status)
	}
	start := time.Now()
	testenv.Eventually(t, 3*time.Second, "the other master does not take the key", func() bool { return put(1, "/bkt/b", key) == 201 })
	t.Logf("the other master took the key after %v", time.Since(start).Round(time.Millisecond))
	if _, err := keysCmd(t, ms.URLs[1], KeysConfig{Remove: "shared"}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	testenv.Eventually(t, 3*time.Second, "the first master still takes the revoked key", func() bool { return put(0, "/bkt/c", key) == 401 })
	t.Logf("the first master refused the revoked key after %v", time.Since(start).Round(time.Millisecond))
	if status, _ := curl(t, "-u", testAdmin, "-L", ms.URLs[0]+"/bkt/c"); status != 404 && status != 200 {
		t.Fatalf("GET /bkt/c: %d", status)
	}
}

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		"list&limit=2": "list&limit=2",
		"X-Amz-Credential=a%2Fb&X-Amz-Signature=abc&X-Amz-Expires=60": "X-Amz-Credential=a%2Fb&X-Amz-Signature=REDACTED&X-Amz-Expires=60",
		"AWSAccessKeyId=a&Signature=xyz":                              "AWSAccessKeyId=a&Signature=REDACTED",
		"st=sig&e=123":                                                "st=REDACTED&e=123",
		"first=a":                                                     "first=a",
	} {
		if got := redactQuery(in); got != want {
			t.Errorf("redactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAuthOff checks what stays open without -auth: native requests need nothing, but
// the keys are an administrator's to manage whenever the master has keys; a master
// without keys has none to manage.
func TestAuthOff(t *testing.T) {
	c := startCluster(t, 3, func(cfg *ServerConfig) { cfg.S3Keys = testS3Keys })
	if status, body := curl(t, "-X", "PUT", "--data-binary", "open", c.URL+"/open/x"); status != 201 {
		t.Fatalf("a native PUT without -auth: %d %s", status, body)
	}
	if status, body := curl(t, "-L", c.URL+"/open/x"); status != 200 || body != "open" {
		t.Fatalf("a native GET without -auth: %d %s", status, body)
	}
	if status, _ := curl(t, c.URL+"/?keys"); status != 401 {
		t.Fatalf("GET /?keys without credentials: %d, want 401", status)
	}
	if status, body := curl(t, "-u", testAdmin, c.URL+"/?keys"); status != 200 || strings.TrimSpace(body) != `{"keys":[]}` {
		t.Fatalf("GET /?keys as the administrator: %d %s", status, body)
	}
	open := startCluster(t, 3, nil)
	if status, body := curl(t, open.URL+"/?keys"); status != 403 || !strings.Contains(body, "no administrator's key") {
		t.Fatalf("GET /?keys of a master without keys: %d %s", status, body)
	}
}
