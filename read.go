package main

// The master's read side: GET and HEAD redirect to a volume, and the listings.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"davkv/internal/index"
	"davkv/internal/signurl"
)

// maxListKeys is the most keys one listing answers; a listing that would have more
// must ask for pages with limit.
const maxListKeys = 1_000_000

// get redirects to a replica on a volume that is up, without asking the volume.
func (m *Master) get(w http.ResponseWriter, key string) error {
	rec, err := m.index.Get(key)
	if errors.Is(err, index.ErrNotFound) || (err == nil && rec.State != index.StateLive) {
		if m.cfg.Fallback != "" {
			redirect(w, "http://"+m.cfg.Fallback+key)
			return nil
		}
		return index.ErrNotFound
	}
	if err != nil {
		return err
	}
	// On the stack for up to 4 replicas: a redirect allocates nothing to choose.
	var nearBuf, farBuf [4]string
	near, far, _ := m.readOrder(rec.Volumes, nearBuf[:0], farBuf[:0], nil)
	if len(near) == 0 {
		near = far
	}
	if len(near) == 0 {
		return fmt.Errorf("%w: every volume holding the key is down", ErrNoVolumes)
	}
	v := near[rand.IntN(len(near))]
	if rec.MD5 != "" {
		h := w.Header()
		h["Content-Md5"] = []string{rec.MD5}
		h["Etag"] = []string{`"` + rec.MD5 + `"`}
	}
	path := rec.Path(key)
	loc := m.client.URL(v, path)
	if m.cfg.SignReads > 0 {
		loc = signurl.Sign(loc, path, m.cfg.Secret, time.Now().Add(m.cfg.SignReads).Unix())
	}
	redirect(w, loc)
	return nil
}

// readOrder sorts the volumes holding a replica for reading, appending to near those
// up in the master's -zone (none without one), to far the others up, and to down those
// down, each in vols's order.
func (m *Master) readOrder(vols, near, far, down []string) ([]string, []string, []string) {
	for _, v := range vols {
		switch {
		case !m.health.Up(v):
			down = append(down, v)
		case m.cfg.Zone != "" && m.placement.Zone(v) == m.cfg.Zone:
			near = append(near, v)
		default:
			far = append(far, v)
		}
	}
	return near, far, down
}

func redirect(w http.ResponseWriter, location string) {
	h := w.Header()
	h["Location"] = []string{location}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusFound)
}

func (m *Master) list(w http.ResponseWriter, prefix string, q url.Values, states ...index.RecordState) error {
	limit := maxListKeys
	tooMany := ErrTooManyKeys
	if s := get1(q, "limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxListKeys {
			return fmt.Errorf("%w: limit must be a number from 1 to %d", ErrBadRequest, maxListKeys)
		}
		limit, tooMany = n, nil
	}
	page := ListPage{Keys: []string{}}
	err := m.index.Scan(prefix, get1(q, "start"), func(key string, rec index.Record) (bool, error) {
		if !slices.Contains(states, rec.State) {
			return true, nil
		}
		if len(page.Keys) == limit {
			if tooMany != nil {
				return false, tooMany
			}
			page.Next = key
			return false, nil
		}
		page.Keys = append(page.Keys, key)
		return true, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, page)
}

// listEntry is one entry of a delimited listing (see listDelimited): a live key, by
// its name, with its record, or a common prefix that stands for every key under it.
type listEntry struct {
	Name   string
	Rec    index.Record
	Prefix bool
}

// listDelimited reads one page of the live keys under root+prefix, from root+start on,
// at most limit entries, with names relative to root. With a delimiter, the keys that
// have one after prefix roll up into a common prefix each (up to and with the
// delimiter), which costs one seek in the index however many keys it holds: S3's
// listings and the browse page share it. next is the name the following page starts
// at, or "" at the end.
func (m *Master) listDelimited(root, prefix, delimiter, start string, limit int) (entries []listEntry, next string, err error) {
	from := root + start
	for from != "" {
		seek := ""
		err := m.index.Scan(root+prefix, from, func(key string, rec index.Record) (bool, error) {
			if rec.State != index.StateLive {
				return true, nil
			}
			name := key[len(root):]
			entry := listEntry{Name: name, Rec: rec}
			if delimiter != "" {
				if i := strings.Index(name[len(prefix):], delimiter); i >= 0 {
					entry = listEntry{Name: name[:len(prefix)+i+len(delimiter)], Prefix: true}
				}
			}
			if len(entries) == limit {
				next = name
				return false, nil
			}
			entries = append(entries, entry)
			if entry.Prefix {
				// Every key under this common prefix rolls up into it: seek past them all.
				seek = index.PrefixEnd(root + entry.Name)
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			return entries, next, err
		}
		from = seek
	}
	return entries, next, nil
}
