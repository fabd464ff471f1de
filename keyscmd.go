package main

// davkv keys: the access keys of a running master's index, through its native API
// (see keysapi.go), with an administrator's key.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"davkv/internal/httpconn"
	"davkv/internal/policy"
)

// KeysConfig is what davkv keys does: list the keys (the zero value), or Add, Remove
// or SetPolicy of one.
type KeysConfig struct {
	// Master is the master, host:port or URL.
	Master string
	// MasterKey is an administrator's key, ID:SECRET ($DAVKV_KEY).
	MasterKey string
	// Add, Remove and SetPolicy name the key to add, revoke or give Policy; at most
	// one is set.
	Add, Remove, SetPolicy string
	// Policy is the policy of the key added or changed: a name of policy.Canned, or a
	// JSON file's path.
	Policy string
	// Note is what the key added is for.
	Note string
	// Timeout bounds each request to the master.
	Timeout time.Duration
}

// Validate says what is wrong with c, if anything.
func (c KeysConfig) Validate() error {
	n := 0
	for _, s := range []string{c.Add, c.Remove, c.SetPolicy} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return errors.New("give at most one of -add, -remove and -set-policy")
	case (c.Add != "" || c.SetPolicy != "") && c.Policy == "":
		return errors.New("-add and -set-policy need -policy: readonly, readwrite, or a JSON file")
	case c.MasterKey == "":
		return errors.New("davkv keys needs an administrator's key: set DAVKV_KEY=ID:SECRET (or DAVKV_S3_KEYS)")
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout must be positive, got %v", c.Timeout)
	}
	return nil
}

// policyDoc reads c.Policy: a canned policy's document, or a file's.
func (c KeysConfig) policyDoc() ([]byte, error) {
	if doc, ok := policy.Canned[c.Policy]; ok {
		return []byte(doc), nil
	}
	b, err := os.ReadFile(c.Policy)
	if err != nil {
		return nil, fmt.Errorf("-policy %q is neither readonly, readwrite nor a file: %w", c.Policy, err)
	}
	return b, nil
}

// runKeys does what cfg says, printing the key added (ID:SECRET) or the keys listed.
func runKeys(ctx context.Context, cfg KeysConfig, stdout io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := NewMasterClient(cfg.Master, cfg.MasterKey, NewVolumeClient(cfg.Timeout, ""))
	id, method, query := "", http.MethodGet, "keys"
	var body []byte
	switch {
	case cfg.Add != "":
		doc, err := cfg.policyDoc()
		if err != nil {
			return err
		}
		if body, err = json.Marshal(keySpec{Policy: doc, Note: cfg.Note}); err != nil {
			return err
		}
		id, method = cfg.Add, http.MethodPut
	case cfg.SetPolicy != "":
		doc, err := cfg.policyDoc()
		if err != nil {
			return err
		}
		id, method, query, body = cfg.SetPolicy, http.MethodPut, "set-policy&keys", doc
	case cfg.Remove != "":
		id, method = cfg.Remove, http.MethodDelete
	}
	if id != "" {
		query += "=" + url.QueryEscape(id)
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	resp, err := m.Do(ctx, method, "/", query, r, int64(len(body)))
	if err != nil {
		return fmt.Errorf("master %s: %w", cfg.Master, err)
	}
	defer httpconn.Drain(resp)
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("master %s: read answer: %w", cfg.Master, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("master %s: %s: %s", cfg.Master, resp.Status, strings.TrimSpace(string(answer)))
	}
	switch {
	case cfg.Add != "":
		var info keyInfo
		if err := json.Unmarshal(answer, &info); err != nil {
			return fmt.Errorf("master %s: bad answer: %w", cfg.Master, err)
		}
		_, err = fmt.Fprintf(stdout, "%s:%s\n", info.ID, info.Secret)
		return err
	case cfg.Remove != "" || cfg.SetPolicy != "":
		return nil
	}
	var list keyList
	if err := json.Unmarshal(answer, &list); err != nil {
		return fmt.Errorf("master %s: bad answer: %w", cfg.Master, err)
	}
	for _, k := range list.Keys {
		if _, err := fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", k.ID, k.Created.Format(time.RFC3339), k.Policy, k.Note); err != nil {
			return err
		}
	}
	return nil
}
