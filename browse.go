package main

// The browse page: a browser asking for / or a prefix ending in / gets the keys under
// it as HTML, grouped at / into directories, a page at a time, with a search by prefix.
// Server-rendered with html/template; curl and scripts keep their answers.

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// browsePageSize is how many entries a page shows unless ?limit says otherwise;
// browseBackMax bounds how many earlier pages' starts a link carries for "previous".
const (
	browsePageSize = 100
	browseBackMax  = 50
)

// wantsBrowse reports whether r is a browser's GET of a directory: the path ends in /
// (or is /) and the client accepts HTML. curl and the listings (?list, ...) never
// ask for HTML, so they keep their answers.
func wantsBrowse(r *http.Request, q url.Values) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/") &&
		strings.Contains(r.Header.Get("Accept"), "text/html") &&
		!q.Has("list") && !q.Has("unlinked") && !q.Has("pending")
}

// browseView is what the page template shows.
type browseView struct {
	Prefix  string
	Crumbs  []browseLink // the prefix's directories, from the root
	Entries []browseEntry
	Prev    string // the previous page's address, or empty on the first
	Next    string // the next page's address, or empty on the last
	First   string // the first page's address, when Prev is not it
}

type browseLink struct{ Name, Href string }

type browseEntry struct {
	Name, Href string
	Dir        bool
	Size       string
	MD5        string
	Modified   string
	Download   string // the file name a download gets
}

// browse answers a browser's GET of a directory (see wantsBrowse): the live keys under
// the prefix, which is the path or the search form's ?prefix, a page from ?start on,
// with ?back the starts of the pages before it.
func (m *Master) browse(w http.ResponseWriter, r *http.Request, q url.Values) error {
	prefix := r.URL.Path
	if p := get1(q, "prefix"); p != "" {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		prefix = p
	}
	limit := browsePageSize
	if s := get1(q, "limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxS3ListKeys {
			return fmt.Errorf("%w: limit must be a number from 1 to %d", ErrBadRequest, maxS3ListKeys)
		}
		limit = n
	}
	start, back := get1(q, "start"), q["back"]
	if !strings.HasPrefix(start, prefix) {
		start = prefix
	}
	// The listing is relative to the directory the prefix is in, so that a search for
	// /photos/2024- groups /photos/2024-01/... under /photos/2024-01/.
	dir := prefix[:strings.LastIndexByte(prefix, '/')+1]
	entries, next, err := m.listDelimited(dir, prefix[len(dir):], "/", start[len(dir):], limit)
	if err != nil {
		return err
	}
	view := browseView{Prefix: prefix, Crumbs: crumbs(prefix)}
	for _, e := range entries {
		key := dir + e.Name
		be := browseEntry{Name: strings.TrimPrefix(key, dir), Href: keyHref(key), Dir: e.Prefix}
		if !e.Prefix {
			be.Size = byteSize(e.Rec.Size)
			be.MD5 = e.Rec.MD5
			be.Modified = time.Unix(0, e.Rec.Modified).UTC().Format("2006-01-02 15:04:05")
			be.Download = path.Base(key)
		}
		view.Entries = append(view.Entries, be)
	}
	page := func(start string, back []string) string {
		v := url.Values{}
		if prefix != r.URL.Path {
			v.Set("prefix", prefix)
		}
		if start != prefix {
			v.Set("start", start)
		}
		if len(back) > 0 {
			v["back"] = back
		}
		if limit != browsePageSize {
			v.Set("limit", strconv.Itoa(limit))
		}
		if len(v) == 0 {
			return keyHref(r.URL.Path)
		}
		return keyHref(r.URL.Path) + "?" + v.Encode()
	}
	if next != "" {
		nb := append(append([]string(nil), back...), start)
		if len(nb) > browseBackMax {
			nb = nb[len(nb)-browseBackMax:]
		}
		view.Next = page(dir+next, nb)
	}
	if start != prefix {
		prev := prefix
		if len(back) > 0 {
			prev = back[len(back)-1]
		}
		view.Prev = page(prev, back[:max(len(back)-1, 0)])
		if prev != prefix {
			view.First = page(prefix, nil)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return browseTemplate.Execute(w, view)
}

// keyHref is the address of key on the master, escaped for a link.
func keyHref(key string) string { return (&url.URL{Path: key}).EscapedPath() }

// crumbs are the links to each directory of prefix, from the root.
func crumbs(prefix string) []browseLink {
	out := []browseLink{{Name: "/", Href: "/"}}
	for i := 1; i < len(prefix); i++ {
		if prefix[i] == '/' {
			out = append(out, browseLink{Name: prefix[strings.LastIndexByte(prefix[:i], '/')+1 : i+1], Href: keyHref(prefix[:i+1])})
		}
	}
	return out
}

// byteSize is n bytes for people: 1023 B, 1.5 KiB, 3.2 GiB.
func byteSize(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, unit := float64(n), 0
	for f >= 1024 && unit < 5 {
		f /= 1024
		unit++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + [...]string{"", "KiB", "MiB", "GiB", "TiB", "PiB"}[unit]
}

// browseTemplate is the page. html/template escapes every name and address for its
// place in the HTML.
var browseTemplate = template.Must(template.New("browse").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>davkv: {{.Prefix}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.2em; font-weight: normal; }
h1 a { text-decoration: none; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { text-align: left; padding: 0.2em 1.2em 0.2em 0; }
th { border-bottom: 1px solid #ccc; }
td.size { text-align: right; }
td.md5 { font-family: monospace; color: #666; }
nav a { margin-right: 1em; }
</style>
</head>
<body>
<h1>davkv: {{range .Crumbs}}<a href="{{.Href}}">{{.Name}}</a>{{end}}</h1>
<form method="get" action="/">
<input name="prefix" size="40" value="{{.Prefix}}" aria-label="prefix">
<button>Search by prefix</button>
</form>
{{if .Entries}}
<table>
<thead><tr><th>Name</th><th>Size</th><th>MD5</th><th>Modified (UTC)</th></tr></thead>
<tbody>
{{range .Entries}}{{if .Dir}}<tr class="dir"><td><a href="{{.Href}}">{{.Name}}</a></td><td></td><td></td><td></td></tr>
{{else}}<tr class="file"><td><a href="{{.Href}}" download="{{.Download}}">{{.Name}}</a></td><td class="size">{{.Size}}</td><td class="md5">{{.MD5}}</td><td>{{.Modified}}</td></tr>
{{end}}{{end}}</tbody>
</table>
{{else}}
<p>No keys start with {{.Prefix}}.</p>
{{end}}
<nav>{{if .First}}<a href="{{.First}}">First</a>{{end}}{{if .Prev}}<a href="{{.Prev}}" rel="prev">Previous</a>{{end}}{{if .Next}}<a href="{{.Next}}" rel="next">Next</a>{{end}}</nav>
</body>
</html>
`))
