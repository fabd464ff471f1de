package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// postFields returns the signed fields of a browser upload whose policy has conditions
// and expires at expires, signed with the test's keys as a web page's server signs them.
func postFields(t *testing.T, conditions []any, expires time.Time) map[string]string {
	t.Helper()
	now := time.Now().UTC()
	date := now.Format("20060102")
	fields := map[string]string{
		"x-amz-algorithm":  "AWS4-HMAC-SHA256",
		"x-amz-credential": "davkvtest/" + date + "/us-east-1/s3/aws4_request",
		"x-amz-date":       now.Format(s3proto.AmzDateFormat),
	}
	for _, name := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date"} {
		conditions = append(conditions, map[string]string{name: fields[name]})
	}
	doc, err := json.Marshal(struct {
		Expiration string `json:"expiration"`
		Conditions []any  `json:"conditions"`
	}{expires.UTC().Format("2006-01-02T15:04:05.000Z"), conditions})
	if err != nil {
		t.Fatal(err)
	}
	policy := base64.StdEncoding.EncodeToString(doc)
	mac := hmac.New(sha256.New, s3proto.SigningKey("davkvtestsecret", date, "us-east-1"))
	mac.Write([]byte(policy))
	fields["policy"], fields["x-amz-signature"] = policy, hex.EncodeToString(mac.Sum(nil))
	return fields
}

// TestS3PostObject uploads files as a browser's form does, with Go's multipart writer:
// a policy that holds stores the file with the form's headers and answers as asked;
// every condition that fails, an expired policy, a bad signature, a file outside the
// length range or unlike its checksum field, and a field the policy does not name are
// S3's errors, and store nothing.
func TestS3PostObject(t *testing.T) {
	c, _ := s3Cluster(t, 3, "forms")
	base := []any{map[string]string{"bucket": "forms"}, []any{"starts-with", "$key", "user/"}, []any{"content-length-range", 1, 100},
		[]any{"starts-with", "$Content-Type", "text/"}, map[string]string{"x-amz-meta-owner": "ann"}, []any{"starts-with", "$success_action_status", ""}}
	post := func(t *testing.T, fields map[string]string, file string) (int, string, http.Header) {
		t.Helper()
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for name, v := range fields {
			mw.WriteField(name, v)
		}
		fw, _ := mw.CreateFormFile("file", "note.txt")
		io.WriteString(fw, file)
		mw.Close()
		resp, err := http.Post(c.URL+"/forms", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	with := func(fields map[string]string, kv ...string) map[string]string {
		out := map[string]string{"key": "user/${filename}", "Content-Type": "text/plain", "x-amz-meta-owner": "ann"}
		for k, v := range fields {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	signed := postFields(t, base, time.Now().Add(time.Hour))

	status, _, h := post(t, with(signed), "hello")
	if status != http.StatusNoContent || h.Get("ETag") == "" {
		t.Fatalf("upload: %d, ETag %q", status, h.Get("ETag"))
	}
	if got, b := c.Get("/forms/user/note.txt"); got != http.StatusOK || string(b) != "hello" {
		t.Fatalf("GET: %d %q", got, b)
	}
	rec := c.Record("/forms/user/note.txt")
	if !strings.Contains(strings.ToLower(stringsOfMeta(rec.Meta)), "x-amz-meta-owner=ann") || !strings.Contains(stringsOfMeta(rec.Meta), "Content-Type=text/plain") {
		t.Fatalf("headers kept: %v", rec.Meta)
	}
	status, body, _ := post(t, with(signed, "success_action_status", "201", "key", "user/x201"), "created")
	if status != http.StatusCreated || !strings.Contains(body, "<Key>user/x201</Key>") {
		t.Fatalf("success_action_status 201: %d %s", status, body)
	}

	tests := []struct {
		name   string
		fields map[string]string
		file   string
		code   string
	}{
		{"key outside the prefix", with(signed, "key", "other/x"), "x", "AccessDenied"},
		{"meta not the policy's", with(signed, "x-amz-meta-owner", "bob"), "x", "AccessDenied"},
		{"field the policy does not name", with(signed, "x-amz-meta-extra", "1"), "x", "AccessDenied"},
		{"file too large", with(signed), strings.Repeat("x", 101), "EntityTooLarge"},
		{"file empty", with(signed), "", "EntityTooSmall"},
		{"expired", with(postFields(t, base, time.Now().Add(-time.Minute))), "x", "AccessDenied"},
		{"bad signature", with(signed, "x-amz-signature", strings.Repeat("0", 64)), "x", "SignatureDoesNotMatch"},
		{"not signed", with(map[string]string{"key": "user/x"}), "x", "AccessDenied"},
		{"checksum not the file's", with(signed, "x-amz-checksum-crc32", "AAAAAA=="), "x", "BadDigest"},
		{"encryption", with(postFields(t, append(base, map[string]string{"x-amz-server-side-encryption": "AES256"}), time.Now().Add(time.Hour)),
			"x-amz-server-side-encryption", "AES256"), "x", "NotImplemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fields["key"] = strings.Replace(tt.fields["key"], "${filename}", "refused", 1)
			status, body, _ := post(t, tt.fields, tt.file)
			if !strings.Contains(body, "<Code>"+tt.code+"</Code>") || status < 400 {
				t.Fatalf("got %d %s, want %s", status, body, tt.code)
			}
			if got, _ := c.Get("/forms/" + tt.fields["key"]); got != http.StatusNotFound {
				t.Fatalf("stored: %d", got)
			}
		})
	}
	// A checksum field, which the policy need not name, is checked and kept.
	sum := sha256.Sum256([]byte("summed"))
	if status, body, _ := post(t, with(signed, "key", "user/summed", "x-amz-checksum-sha256", base64.StdEncoding.EncodeToString(sum[:])), "summed"); status != http.StatusNoContent {
		t.Fatalf("upload with its checksum: %d %s", status, body)
	}
	if got := c.Record("/forms/user/summed").Checksum; got.Algorithm != "SHA256" || got.Value != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("checksum kept: %+v", got)
	}
	// Only the three uploads' files are on the volumes.
	if n := len(c.AllFiles()); n != 3*3 {
		t.Fatalf("%d files on the volumes, want %d", n, 3*3)
	}
}

// stringsOfMeta is meta as name=value pairs, for a test's message.
func stringsOfMeta(meta []index.MetaHeader) string {
	var b strings.Builder
	for _, h := range meta {
		b.WriteString(h.Name + "=" + h.Value + " ")
	}
	return b.String()
}

// formPage is a web page that uploads a file straight to davkv: a form with the signed
// fields, whose file a script makes and submits, as a user's pick would.
var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html><body>
<form id="upload" action="{{.Action}}" method="post" enctype="multipart/form-data">
{{range $name, $value := .Fields}}<input type="hidden" name="{{$name}}" value="{{$value}}">
{{end}}<input type="file" name="file" id="file">
</form>
<script>
const files = new DataTransfer();
files.items.add(new File(["uploaded from a browser\n"], "page.txt", {type: "text/plain"}));
document.getElementById("file").files = files.files;
document.getElementById("upload").submit();
</script>
</body></html>`))

// TestS3PostFromChromium loads a web page in headless Chromium whose form uploads a
// file to davkv, as S3's browser uploads do: the browser follows the answer's redirect
// back to the page's server with the bucket, key and ETag, and the file is stored.
func TestS3PostFromChromium(t *testing.T) {
	c, _ := s3Cluster(t, 3, "web")
	done := make(chan url.Values, 1)
	var fields map[string]string // set before the site starts, read by its handler
	site := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/form":
			formPage.Execute(w, struct {
				Action string
				Fields map[string]string
			}{c.URL + "/web", fields})
		case "/done":
			select {
			case done <- r.URL.Query():
			default:
			}
			io.WriteString(w, "<!doctype html><p>uploaded</p>")
		default:
			http.NotFound(w, r)
		}
	}))
	siteURL := "http://" + site.Listener.Addr().String()
	fields = postFields(t, []any{map[string]string{"bucket": "web"}, []any{"starts-with", "$key", "pages/"}, []any{"content-length-range", 1, 1 << 20},
		map[string]string{"success_action_redirect": siteURL + "/done"}}, time.Now().Add(time.Hour))
	fields["key"], fields["success_action_redirect"] = "pages/${filename}", siteURL+"/done"
	site.Start()
	defer site.Close()

	// Chromium runs the page, follows the form's answer, and prints the last page.
	page := chromium(t, "--virtual-time-budget=20000", "--dump-dom", site.URL+"/form")
	select {
	case q := <-done:
		if q.Get("bucket") != "web" || q.Get("key") != "pages/page.txt" || q.Get("etag") == "" {
			t.Fatalf("redirected with %v", q)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the browser's upload never came back to the page; it showed:\n%s", page)
	}
	if status, b := c.Get("/web/pages/page.txt"); status != http.StatusOK || string(b) != "uploaded from a browser\n" {
		t.Fatalf("GET: %d %q", status, b)
	}
}
