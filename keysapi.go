package main

// The native API's management of access keys, for davkv keys and curl: / with ?keys,
// which only an administrator (-s3keys) may use.
//
//	GET    /?keys            every key of the index: ID, policy, note, when created
//	GET    /?keys=ID         one
//	PUT    /?keys=ID         add one: the body is a keySpec; answers its secret, once
//	PUT    /?keys=ID&set-policy  replace its policy with the body's
//	DELETE /?keys=ID         revoke it
//
// Secrets are answered only when a key is added, never listed.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"davkv/internal/auth"
	"davkv/internal/index"
)

// keysParam is the query parameter of the keys' requests.
const keysParam = "keys"

// ErrNoKeys says a master without -s3keys was asked to manage keys.
var ErrNoKeys = errors.New("this master has no administrator's key, so no keys of the index are checked: start it with -s3keys or $DAVKV_S3_KEYS")

// keySpec is the body that adds a key.
type keySpec struct {
	// Secret is the key's secret; empty makes a new random one.
	Secret string `json:"secret,omitempty"`
	// Policy is the key's policy document (see package policy).
	Policy json.RawMessage `json:"policy"`
	Note   string          `json:"note,omitempty"`
}

// keyInfo is what is answered of a key: never its secret, but when it is added.
type keyInfo struct {
	ID      string          `json:"id"`
	Secret  string          `json:"secret,omitempty"`
	Policy  json.RawMessage `json:"policy"`
	Note    string          `json:"note,omitempty"`
	Created time.Time       `json:"created"`
}

// keyList is the answer of GET /?keys.
type keyList struct {
	Keys []keyInfo `json:"keys"`
}

func infoOf(id string, k index.AccessKey) keyInfo {
	return keyInfo{ID: id, Policy: json.RawMessage(k.Policy), Note: k.Note, Created: time.Unix(0, k.Created).UTC()}
}

// maxKeySpec bounds the body of a key's request: a policy is at most 20 KB.
const maxKeySpec = 64 << 10

// serveKeys answers the keys' requests.
func (m *Master) serveKeys(w http.ResponseWriter, r *http.Request, q url.Values) error {
	if m.keys == nil {
		return ErrNoKeys
	}
	id := q.Get(keysParam)
	switch {
	case r.Method == http.MethodGet && id == "":
		list := keyList{Keys: []keyInfo{}}
		err := m.keys.List(func(id string, k index.AccessKey) error {
			list.Keys = append(list.Keys, infoOf(id, k))
			return nil
		})
		if err != nil {
			return err
		}
		return writeJSON(w, list)
	case id == "":
		return fmt.Errorf("%w: name the key: ?keys=ID", ErrBadRequest)
	case r.Method == http.MethodGet:
		k, err := m.keys.Key(id)
		if err != nil {
			return err
		}
		if k.Root {
			return fmt.Errorf("access key %s: %w", id, auth.ErrRootKey)
		}
		return writeJSON(w, infoOf(id, k.Stored))
	case r.Method == http.MethodDelete:
		if err := m.keys.Remove(id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case r.Method != http.MethodPut:
		return ErrMethod
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxKeySpec+1))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClientBody, err)
	}
	if len(body) > maxKeySpec {
		return fmt.Errorf("%w: the body is over %d bytes", ErrBadRequest, maxKeySpec)
	}
	if q.Has("set-policy") {
		if err := m.keys.SetPolicy(id, body); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	var spec keySpec
	if err := json.Unmarshal(body, &spec); err != nil {
		return fmt.Errorf("%w: the body must be {\"policy\": {...}, \"note\": \"...\"}: %w", ErrBadRequest, err)
	}
	if spec.Secret == "" {
		spec.Secret = auth.NewSecret()
	}
	if err := m.keys.Add(id, index.AccessKey{Secret: spec.Secret, Policy: string(spec.Policy), Note: spec.Note}); err != nil {
		return err
	}
	k, err := m.keys.Key(id)
	if err != nil {
		return err
	}
	info := infoOf(id, k.Stored)
	info.Secret = spec.Secret
	return writeJSONStatus(w, http.StatusCreated, info)
}
