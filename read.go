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
	"time"
)

// maxListKeys is the most keys one listing answers; a listing that would have more
// must ask for pages with limit.
const maxListKeys = 1_000_000

// get redirects to a replica on a volume that is up, without asking the volume.
func (m *Master) get(w http.ResponseWriter, key string) error {
	rec, err := m.index.Get(key)
	if errors.Is(err, ErrNotFound) || (err == nil && rec.State != StateLive) {
		if m.cfg.Fallback != "" {
			redirect(w, "http://"+m.cfg.Fallback+key)
			return nil
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	up := 0
	for _, v := range rec.Volumes {
		if m.health.Up(v) {
			up++
		}
	}
	if up == 0 {
		return fmt.Errorf("%w: every volume holding the key is down", ErrNoVolumes)
	}
	pick := rand.IntN(up)
	for _, v := range rec.Volumes {
		if !m.health.Up(v) {
			continue
		}
		if pick == 0 {
			if rec.MD5 != "" {
				h := w.Header()
				h["Content-Md5"] = []string{rec.MD5}
				h["Etag"] = []string{`"` + rec.MD5 + `"`}
			}
			path := rec.Path(key)
			loc := m.client.URL(v, path)
			if m.cfg.SignReads > 0 {
				loc = signURL(loc, path, m.cfg.Secret, time.Now().Add(m.cfg.SignReads).Unix())
			}
			redirect(w, loc)
			return nil
		}
		pick--
	}
	panic("unreachable: no up volume after counting one")
}

func redirect(w http.ResponseWriter, location string) {
	h := w.Header()
	h["Location"] = []string{location}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusFound)
}

func (m *Master) list(w http.ResponseWriter, prefix string, q url.Values, states ...RecordState) error {
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
	err := m.index.Scan(prefix, get1(q, "start"), func(key string, rec Record) (bool, error) {
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
