package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// realClients are the S3 tools from Debian that TestS3RealClients drives; the README's
// test command installs them. Their Debian paths are named, not looked up: a PATH may
// hold other copies (a pyenv shim for aws, say).
var realClients = map[string]string{"aws": "/usr/bin/aws", "rclone": "/usr/bin/rclone", "python3": "/usr/bin/python3"}

// s3Tools runs the real S3 clients (realClients) against a master, in a directory of
// their own.
type s3Tools struct {
	dir, config, url string
	// extra is added to the tools' environment.
	extra []string
}

// newS3Tools prepares the tools for the master at url: an AWS CLI configuration for
// path-style requests, and a home of their own.
func newS3Tools(t *testing.T, url string) *s3Tools {
	t.Helper()
	for name, path := range realClients {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s is not installed at %s: run the tests with 'make test', which installs it", name, path)
		}
	}
	s := &s3Tools{dir: t.TempDir(), url: url}
	s.config = filepath.Join(s.dir, "aws-config")
	if err := os.WriteFile(s.config, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// env is the tools' environment: the key given and the endpoint, with rclone's remote
// davkv, and nothing of the machine's own AWS settings. An empty access key leaves
// the tools with none.
func (s *s3Tools) env(access, secret string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") && !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	out = append(out, "HOME="+s.dir, "AWS_CONFIG_FILE="+s.config, "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"RCLONE_CONFIG_DAVKV_TYPE=s3", "RCLONE_CONFIG_DAVKV_PROVIDER=Other", "RCLONE_CONFIG_DAVKV_ENDPOINT="+s.url, "DAVKV_URL="+s.url)
	if access != "" {
		out = append(out, "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret,
			"RCLONE_CONFIG_DAVKV_ACCESS_KEY_ID="+access, "RCLONE_CONFIG_DAVKV_SECRET_ACCESS_KEY="+secret)
	}
	return append(out, s.extra...)
}

// run runs tool (a name of realClients) with args and stdin, signing with access and
// secret, and returns its output: stdout, and stderr too if it failed.
func (s *s3Tools) run(t *testing.T, access, secret, stdin, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, realClients[tool], args...)
	cmd.Env, cmd.Dir = s.env(access, secret), s.dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Logf("%s %q: %v\n%s", tool, args, err, stderr.String())
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// TestS3RealClients reads, lists and deletes, with the AWS CLI, rclone and boto3 as
// their users run them, keys written with the native API, including keys that URLs
// and XML must escape; a wrong secret is refused. Then each tool uploads, overwrites
// and reads back its own values.
func TestS3RealClients(t *testing.T) {
	c, _ := s3Cluster(t, 3, "tools")
	big := testenv.RandomBytes(300 << 10)
	values := map[string][]byte{"dir/a b&c.txt": []byte("hello"), "dir/<tag> 'q'.txt": []byte("xml"), "top.bin": big, "ünï/x+y": []byte("u")}
	for k, v := range values {
		c.Put("/tools/"+k, v)
	}
	tools := newS3Tools(t, c.URL)
	dir := tools.dir
	run := func(t *testing.T, secret string, stdin string, tool string, args ...string) (string, error) {
		t.Helper()
		return tools.run(t, "davkvtest", secret, stdin, tool, args...)
	}
	aws := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := run(t, "davkvtestsecret", "", "aws", append([]string{"--endpoint-url", c.URL}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("aws cli", func(t *testing.T) {
		if out := aws(t, "s3", "ls"); !strings.Contains(out, " tools\n") {
			t.Fatalf("aws s3 ls: %q", out)
		}
		out := aws(t, "s3", "ls", "s3://tools/", "--recursive")
		for k, v := range values {
			if !strings.Contains(out, fmt.Sprintf("%10d %s\n", len(v), k)) {
				t.Fatalf("aws s3 ls --recursive lacks %q (%d bytes):\n%s", k, len(v), out)
			}
		}
		aws(t, "s3", "cp", "s3://tools/top.bin", filepath.Join(dir, "top.bin"))
		if got, err := os.ReadFile(filepath.Join(dir, "top.bin")); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("aws s3 cp: %d bytes, %v", len(got), err)
		}
		out, err := run(t, "wrong", "", "aws", "--endpoint-url", c.URL, "s3", "ls", "s3://tools/")
		if err == nil || !strings.Contains(out, "SignatureDoesNotMatch") {
			t.Fatalf("aws with a wrong secret: %v, %q", err, out)
		}
	})

	t.Run("rclone", func(t *testing.T) {
		out, err := run(t, "davkvtestsecret", "", "rclone", "--config", "/dev/null", "lsf", "-R", "--files-only", "davkv:tools")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Fields(strings.ReplaceAll(out, " ", "_"))
		slices.Sort(got)
		if want := []string{"dir/<tag>_'q'.txt", "dir/a_b&c.txt", "top.bin", "ünï/x+y"}; !slices.Equal(got, want) {
			t.Fatalf("rclone lsf: %q, want %q", got, want)
		}
		out, err = run(t, "davkvtestsecret", "", "rclone", "--config", "/dev/null", "md5sum", "davkv:tools")
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range values {
			sum := md5.Sum(v)
			if !strings.Contains(out, hex.EncodeToString(sum[:])+"  "+k+"\n") {
				t.Fatalf("rclone md5sum lacks %s of %q:\n%s", hex.EncodeToString(sum[:]), k, out)
			}
		}
		if out, err := run(t, "davkvtestsecret", "", "rclone", "--config", "/dev/null", "cat", "davkv:tools/dir/a b&c.txt"); err != nil || out != "hello" {
			t.Fatalf("rclone cat: %q, %v", out, err)
		}
	})

	t.Run("boto3", func(t *testing.T) {
		script := `
import os, urllib.request, boto3
from botocore.config import Config
s = boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
r = s.list_objects_v2(Bucket="tools", Delimiter="/")
assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir/", "ünï/"], r
assert [o["Key"] for o in r["Contents"]] == ["top.bin"], r
pages = s.get_paginator("list_objects_v2").paginate(Bucket="tools", PaginationConfig={"PageSize": 1})
assert [o["Key"] for p in pages for o in p["Contents"]] == ["dir/<tag> 'q'.txt", "dir/a b&c.txt", "top.bin", "ünï/x+y"]
assert s.get_object(Bucket="tools", Key="dir/a b&c.txt", Range="bytes=1-3")["Body"].read() == b"ell"
url = s.generate_presigned_url("get_object", Params={"Bucket": "tools", "Key": "ünï/x+y"}, ExpiresIn=60)
assert urllib.request.urlopen(url).read() == b"u"
d = s.delete_objects(Bucket="tools", Delete={"Objects": [{"Key": "ünï/x+y"}, {"Key": "missing"}]})
assert sorted(x["Key"] for x in d["Deleted"]) == ["missing", "ünï/x+y"], d
print("ok")
`
		out, err := run(t, "davkvtestsecret", script, "python3", "-")
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
		if status, _ := c.Get("/tools/ünï/x+y"); status != 404 {
			t.Fatalf("native GET after boto3's delete_objects: %d", status)
		}
	})

	// Uploads go to a bucket of their own, made with the AWS CLI.
	aws(t, "s3", "mb", "s3://uploads")
	// video.bin is over every tool's multipart threshold (as the tools are run here).
	tree := map[string][]byte{"a.txt": []byte("first"), "sub/b.bin": testenv.RandomBytes(3 << 20), "sub/deeper/c d&e.txt": []byte("x"), "empty": {},
		"video.bin": testenv.RandomBytes(40 << 20)}
	src := filepath.Join(dir, "tree")
	for name, v := range tree {
		path := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sameTree checks that prefix in the uploads bucket holds tree, through the native API.
	sameTree := func(t *testing.T, prefix string) {
		t.Helper()
		for name, v := range tree {
			if status, got := c.Get("/uploads/" + prefix + name); status != 200 || !bytes.Equal(got, v) {
				t.Fatalf("%s%s: %d, %d bytes, want %d", prefix, name, status, len(got), len(v))
			}
		}
	}

	t.Run("aws cli uploads", func(t *testing.T) {
		aws(t, "s3", "sync", src, "s3://uploads/cli/")
		sameTree(t, "cli/")
		out := aws(t, "s3api", "head-object", "--bucket", "uploads", "--key", "cli/video.bin")
		if want := strings.Trim(multipartETag(tree["video.bin"], 8<<20), `"`); !strings.Contains(out, want) {
			t.Fatalf("the CLI's multipart upload: head-object %s, want ETag %s", out, want)
		}
		// An overwrite, with a content type the CLI guesses from the name.
		if err := os.WriteFile(filepath.Join(dir, "new.txt"), []byte("second"), 0o644); err != nil {
			t.Fatal(err)
		}
		aws(t, "s3", "cp", filepath.Join(dir, "new.txt"), "s3://uploads/cli/a.txt")
		if status, got := c.Get("/uploads/cli/a.txt"); status != 200 || string(got) != "second" {
			t.Fatalf("after overwrite: %d %q", status, got)
		}
		aws(t, "s3api", "put-object", "--bucket", "uploads", "--key", "cli/meta", "--body", filepath.Join(dir, "new.txt"),
			"--content-type", "text/x-davkv", "--metadata", "camera=front")
		out = aws(t, "s3api", "head-object", "--bucket", "uploads", "--key", "cli/meta")
		if !strings.Contains(out, `"ContentType": "text/x-davkv"`) || !strings.Contains(out, `"camera": "front"`) {
			t.Fatalf("head-object: %s", out)
		}
		// A copy on the server side.
		aws(t, "s3", "cp", "s3://uploads/cli/sub/b.bin", "s3://uploads/cli/copy of b")
		if status, got := c.Get("/uploads/cli/copy of b"); status != 200 || !bytes.Equal(got, tree["sub/b.bin"]) {
			t.Fatalf("aws s3 cp s3:// s3://: %d, %d bytes", status, len(got))
		}
		// A sync back down finds nothing to change but the overwritten file.
		down := filepath.Join(dir, "cli-down")
		aws(t, "s3", "sync", "s3://uploads/cli/", down)
		if got, err := os.ReadFile(filepath.Join(down, "sub", "b.bin")); err != nil || !bytes.Equal(got, tree["sub/b.bin"]) {
			t.Fatalf("sync down: %d bytes, %v", len(got), err)
		}
	})

	t.Run("rclone uploads", func(t *testing.T) {
		rclone := func(args ...string) string {
			t.Helper()
			out, err := run(t, "davkvtestsecret", "", "rclone", append([]string{"--config", "/dev/null"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		// Uploads over 5 MiB go in parts of 5 MiB.
		rclone("sync", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", src, "davkv:uploads/rclone")
		sameTree(t, "rclone/")
		rclone("check", src, "davkv:uploads/rclone")
		// A changed file is uploaded again, and both sides agree after.
		if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("changed by rclone's user"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(filepath.Join(src, "a.txt"), tree["a.txt"], 0o644)
		rclone("sync", src, "davkv:uploads/rclone")
		rclone("check", src, "davkv:uploads/rclone")
		rclone("copyto", "davkv:uploads/rclone/sub/b.bin", "davkv:uploads/rclone-copy/b.bin") // CopyObject
		if status, got := c.Get("/uploads/rclone-copy/b.bin"); status != 200 || !bytes.Equal(got, tree["sub/b.bin"]) {
			t.Fatalf("rclone copyto on the server: %d, %d bytes", status, len(got))
		}
		down := filepath.Join(dir, "rclone-down")
		rclone("sync", "davkv:uploads/rclone", down)
		rclone("check", down, "davkv:uploads/rclone")
	})

	t.Run("boto3 uploads", func(t *testing.T) {
		script := `
import os, hashlib, boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
s = boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
for i, body in enumerate([b"one", b"two" * 100000, b""]):
    r = s.put_object(Bucket="uploads", Key="boto/über & co", Body=body, ContentType="text/plain", Metadata={"n": str(i)})
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r
    g = s.get_object(Bucket="uploads", Key="boto/über & co")
    assert g["Body"].read() == body and g["Metadata"] == {"n": str(i)} and g["ContentType"] == "text/plain", g
s.put_object(Bucket="uploads", Key="boto/crc", Body=b"checked" * 1000, ChecksumAlgorithm="CRC32")
s.upload_file(os.path.join("tree", "sub", "b.bin"), "uploads", "boto/b.bin")
assert s.head_object(Bucket="uploads", Key="boto/b.bin")["ContentLength"] == 3 << 20
mb = 1 << 20
s.upload_file(os.path.join("tree", "video.bin"), "uploads", "boto/video.bin",
              Config=TransferConfig(multipart_threshold=5 * mb, multipart_chunksize=5 * mb))
h = s.head_object(Bucket="uploads", Key="boto/video.bin")
video = open(os.path.join("tree", "video.bin"), "rb").read()
sums = b"".join(hashlib.md5(video[i:i + 5 * mb]).digest() for i in range(0, len(video), 5 * mb))
assert h["ETag"] == '"%s-8"' % hashlib.md5(sums).hexdigest() and h["ContentLength"] == 40 * mb, h
assert s.get_object(Bucket="uploads", Key="boto/video.bin", Range="bytes=%d-%d" % (7 * mb, 7 * mb + 9))["Body"].read() == video[7 * mb:7 * mb + 10]
u = s.create_multipart_upload(Bucket="uploads", Key="boto/aborted")["UploadId"]
s.upload_part(Bucket="uploads", Key="boto/aborted", UploadId=u, PartNumber=1, Body=b"x" * 100)
assert [x["UploadId"] for x in s.list_multipart_uploads(Bucket="uploads").get("Uploads", [])] == [u]
s.abort_multipart_upload(Bucket="uploads", Key="boto/aborted", UploadId=u)
assert s.list_multipart_uploads(Bucket="uploads").get("Uploads", []) == []
try:
    s.put_object(Bucket="uploads", Key="boto/crc", Body=b"bad", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    raise SystemExit("a wrong Content-MD5 was taken")
except s.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "BadDigest", e.response
assert s.get_object(Bucket="uploads", Key="boto/crc")["Body"].read() == b"checked" * 1000
print("ok")
`
		out, err := run(t, "davkvtestsecret", script, "python3", "-")
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
	})

	t.Run("aws cli tags, versions, lifecycle", func(t *testing.T) {
		aws(t, "s3api", "put-object-tagging", "--bucket", "uploads", "--key", "cli/meta", "--tagging", "TagSet=[{Key=camera,Value=front}]")
		if out := aws(t, "s3api", "get-object-tagging", "--bucket", "uploads", "--key", "cli/meta"); !strings.Contains(out, `"Value": "front"`) {
			t.Fatalf("get-object-tagging: %s", out)
		}
		if out := aws(t, "s3api", "list-object-versions", "--bucket", "uploads", "--prefix", "cli/sub/"); !strings.Contains(out, `"VersionId": "null"`) || !strings.Contains(out, "cli/sub/b.bin") {
			t.Fatalf("list-object-versions: %s", out)
		}
		if out := aws(t, "s3api", "get-bucket-versioning", "--bucket", "uploads"); strings.Contains(out, "Enabled") {
			t.Fatalf("get-bucket-versioning: %s", out)
		}
		aws(t, "s3api", "put-bucket-lifecycle-configuration", "--bucket", "uploads", "--lifecycle-configuration",
			`{"Rules": [{"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 30}}]}`)
		if out := aws(t, "s3api", "get-bucket-lifecycle-configuration", "--bucket", "uploads"); !strings.Contains(out, `"ID": "tmp"`) || !strings.Contains(out, `"Days": 30`) {
			t.Fatalf("get-bucket-lifecycle-configuration: %s", out)
		}
		aws(t, "s3api", "delete-bucket-lifecycle", "--bucket", "uploads")
	})

	t.Run("boto3 tags, versions, browser upload", func(t *testing.T) {
		script := `
import os, urllib.request, boto3
from botocore.config import Config
s = boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1",
                 config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s.put_object(Bucket="uploads", Key="boto/meta", Body=b"m", Metadata={"greeting": "hello"}, Tagging="a=1&b=2")
h = s.head_object(Bucket="uploads", Key="boto/meta")
assert h["Metadata"] == {"greeting": "hello"} and h["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2", h
assert sorted((t["Key"], t["Value"]) for t in s.get_object_tagging(Bucket="uploads", Key="boto/meta")["TagSet"]) == [("a", "1"), ("b", "2")]
v = s.list_object_versions(Bucket="uploads", Prefix="boto/meta")
assert [(x["Key"], x["VersionId"], x["IsLatest"]) for x in v["Versions"]] == [("boto/meta", "null", True)], v
# Browser uploads signed with SigV4, and with SigV2, as this boto3 signs them unless told.
v4 = boto3.client("s3", endpoint_url=os.environ["DAVKV_URL"], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
def post(client, filename, content):
    p = client.generate_presigned_post("uploads", "boto/post-${filename}", Conditions=[["content-length-range", 1, 100]], ExpiresIn=60)
    boundary = "davkv-form-boundary"
    body = b"".join(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k, v)).encode() for k, v in p["fields"].items())
    body += ('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\nContent-Type: text/plain\r\n\r\n' % (boundary, filename)).encode()
    body += content + ("\r\n--%s--\r\n" % boundary).encode()
    r = urllib.request.urlopen(urllib.request.Request(p["url"], data=body, headers={"Content-Type": "multipart/form-data; boundary=" + boundary}))
    assert r.status == 204, r.status
    g = s.get_object(Bucket="uploads", Key="boto/post-" + filename)
    assert g["Body"].read() == content and g["ContentType"] == "text/plain", g
    return p["fields"]
assert "x-amz-signature" in post(v4, "f.txt", b"posted")
assert "signature" in post(s, "v2.txt", b"posted with SigV2")
print("ok")
`
		out, err := run(t, "davkvtestsecret", script, "python3", "-")
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("boto3: %v\n%s", err, out)
		}
	})
}
