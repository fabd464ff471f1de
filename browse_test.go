package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium runs Debian's headless Chromium with args and returns what it prints. It
// may reach only loopback: every name but 127.0.0.1 fails to resolve, and anything not
// on loopback goes to a proxy that is not there, so that none of its own services are
// called.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run the tests with 'make test', which installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-domain-reliability", "--disable-breakpad", "--metrics-recording-only",
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9"}
	cmd := exec.CommandContext(ctx, bin, append(flags, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestBrowsePage loads the browse page in headless Chromium: directories rolled up at
// /, files with size, MD5 and date, names escaped, pages of 100 with next and previous,
// a search by prefix, and a link that leads to the value. Clients that do not ask for
// HTML keep their answers.
func TestBrowsePage(t *testing.T) {
	c := startCluster(t, 3, nil)
	values := map[string]string{
		"/photos/2024/a.jpg":       "jpeg a",
		"/photos/2024/b.jpg":       "jpeg b",
		"/photos/cat <script>.txt": "meow",
		"/docs/readme.txt":         "read me",
		"/top.txt":                 "top of the tree",
		"/photos/2025-01/e&f.jpg":  "jpeg e&f",
	}
	for key, v := range values {
		c.Put(key, []byte(v))
	}
	for i := range 150 {
		c.Put(fmt.Sprintf("/many/%03d", i), []byte("x"))
	}
	dom := func(path string) string { return chromium(t, "--dump-dom", c.URL+path) }
	rows := regexp.MustCompile(`<tr class="(dir|file)"><td><a href="([^"]*)"[^>]*>([^<]*)</a>`)
	names := func(page string) []string {
		var out []string
		for _, m := range rows.FindAllStringSubmatch(page, -1) {
			out = append(out, m[3])
		}
		return out
	}
	href := func(page, rel string) string {
		m := regexp.MustCompile(`<a href="([^"]*)" rel="` + rel + `">`).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return strings.ReplaceAll(m[1], "&amp;", "&")
	}

	root := dom("/")
	if got := strings.Join(names(root), " "); got != "docs/ many/ photos/ top.txt" {
		t.Fatalf("/ shows %q", got)
	}
	photos := dom("/photos/")
	if got := strings.Join(names(photos), " | "); got != "2024/ | 2025-01/ | cat &lt;script&gt;.txt" {
		t.Fatalf("/photos/ shows %q", got)
	}
	top := c.Record("/top.txt")
	if !strings.Contains(root, top.MD5) || !strings.Contains(root, "15 B") || !strings.Contains(root, time.Unix(0, top.Modified).UTC().Format("2006-01-02")) {
		t.Fatalf("/ lacks top.txt's MD5, size or date:\n%s", root)
	}
	if strings.Contains(photos, "<script>") {
		t.Fatal("a key's name is not escaped")
	}

	// Pages of 100: next, then previous.
	first := dom("/many/")
	if n := len(names(first)); n != 100 || href(first, "prev") != "" || href(first, "next") == "" {
		t.Fatalf("/many/ first page: %d entries, prev %q, next %q", n, href(first, "prev"), href(first, "next"))
	}
	second := dom(href(first, "next"))
	if got := names(second); len(got) != 50 || got[0] != "100" || href(second, "next") != "" {
		t.Fatalf("/many/ second page: %d entries from %v, next %q", len(got), got[:1], href(second, "next"))
	}
	if again := dom(href(second, "prev")); strings.Join(names(again), ",") != strings.Join(names(first), ",") {
		t.Fatalf("previous from the second page is not the first")
	}

	// The search form's prefix.
	if got := strings.Join(names(dom("/?prefix=/photos/2024/a")), " "); got != "a.jpg" {
		t.Fatalf("search /photos/2024/a shows %q", got)
	}
	if got := strings.Join(names(dom("/?prefix=/photos/202")), " "); got != "2024/ 2025-01/" {
		t.Fatalf("search /photos/202 shows %q", got)
	}

	// A file's link leads to its value, through the master's redirect.
	m := regexp.MustCompile(`<a href="([^"]*)" download="e&amp;f.jpg">`).FindStringSubmatch(dom("/photos/2025-01/"))
	if m == nil {
		t.Fatal("no download link for e&f.jpg")
	}
	resp, err := http.Get(c.URL + strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || got != "jpeg e&f" {
		t.Fatalf("following the link: %d %q", resp.StatusCode, got)
	}

	// curl and scripts keep their answers.
	if resp := c.Do(http.MethodGet, "/", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET / without Accept: text/html: %d, want 400", resp.StatusCode)
	}
	if resp := c.Do(http.MethodGet, "/photos/?list", nil, "Accept", "text/html"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("?list with Accept: text/html: %s", resp.Header.Get("Content-Type"))
	}

	// The picture in the README: DAVKV_BROWSE_SCREENSHOT names where to put it.
	shot := filepath.Join(t.TempDir(), "browse.png")
	if p := os.Getenv("DAVKV_BROWSE_SCREENSHOT"); p != "" {
		shot = p
	}
	chromium(t, "--screenshot="+shot, "--window-size=760,230", "--hide-scrollbars", c.URL+"/photos/")
	if b, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
}
