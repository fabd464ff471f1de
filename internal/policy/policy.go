package policy

// A policy document: its parsing, with clear errors for what davkv does not implement,
// and its canonical JSON.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformed says a document is not a policy davkv understands; the error it wraps
// says where.
var ErrMalformed = errors.New("malformed policy")

// Version is the only policy language version, as S3 requires it (the older
// 2008-10-17 is accepted and means the same).
const Version = "2012-10-17"

// ARNPrefix starts every S3 resource's name: the bucket b is arn:aws:s3:::b, its object
// k arn:aws:s3:::b/k.
const ARNPrefix = "arn:aws:s3:::"

// Policy is a parsed policy document.
type Policy struct {
	Version   string      `json:"Version"`
	ID        string      `json:"Id,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one rule of a Policy.
type Statement struct {
	Sid    string `json:"Sid,omitempty"`
	Effect string `json:"Effect"`
	// Principal is who a bucket policy's statement is about: nil in a key's own
	// policy, which is about that key.
	Principal *Principal `json:"Principal,omitempty"`
	Action    Strings    `json:"Action"`
	Resource  Strings    `json:"Resource"`
}

// Principal is a bucket policy statement's Principal: everyone (Anyone: "*" or
// {"AWS": "*"}), anonymous requests included, or the access keys named.
type Principal struct {
	Anyone bool
	Keys   []string
}

// The effects of a Statement.
const (
	Allow = "Allow"
	Deny  = "Deny"
)

// Strings is a list that JSON may give as one string or an array of them, as S3's
// policies do.
type Strings []string

// UnmarshalJSON reads a string or an array of strings.
func (s *Strings) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = Strings{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("must be a string or an array of strings")
	}
	*s = many
	return nil
}

// MarshalJSON writes one string as a string, else an array.
func (s Strings) MarshalJSON() ([]byte, error) {
	if len(s) == 1 {
		return json.Marshal(s[0])
	}
	return json.Marshal([]string(s))
}

// UnmarshalJSON reads "*", {"AWS": "*"} or {"AWS": [IDs]}.
func (p *Principal) UnmarshalJSON(b []byte) error {
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		if star != "*" {
			return errors.New(`Principal must be "*" or {"AWS": ...}`)
		}
		*p = Principal{Anyone: true}
		return nil
	}
	var m map[string]Strings
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New(`Principal must be "*" or {"AWS": "*" or [access key IDs]}`)
	}
	ids, ok := m["AWS"]
	if !ok || len(m) != 1 || len(ids) == 0 {
		return errors.New(`Principal must name "AWS" principals only: "*" or access key IDs`)
	}
	for _, id := range ids {
		switch {
		case id == "*":
			p.Anyone = true
		case id == "" || strings.ContainsAny(id, "*?:"):
			return fmt.Errorf("principal %q must be \"*\" or an access key ID (davkv has no accounts or users)", id)
		default:
			p.Keys = append(p.Keys, id)
		}
	}
	return nil
}

// MarshalJSON writes what UnmarshalJSON reads.
func (p Principal) MarshalJSON() ([]byte, error) {
	if p.Anyone && len(p.Keys) == 0 {
		return json.Marshal("*")
	}
	ids := Strings(p.Keys)
	if p.Anyone {
		ids = append(Strings{"*"}, ids...)
	}
	return json.Marshal(map[string]Strings{"AWS": ids})
}

// Kind is which kind of document is parsed: they differ in their Principal.
type Kind int

const (
	// KeyPolicy is an access key's own policy, which names no Principal.
	KeyPolicy Kind = iota
	// BucketPolicy is a bucket's, each of whose statements names one, and whose
	// resources are that bucket's.
	BucketPolicy
)

// maxSize bounds a document, as S3 bounds a bucket policy.
const maxSize = 20 << 10

// Parse reads a policy document of kind. For a BucketPolicy, bucket is the bucket it
// is for, which every resource must be in. Every error wraps ErrMalformed and says
// what is wrong.
func Parse(doc []byte, kind Kind, bucket string) (Policy, error) {
	if len(doc) > maxSize {
		return Policy{}, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, maxSize)
	}
	// Statement may be one object or an array of them.
	var raw struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.DisallowUnknownFields()
	if err := d.Decode(&raw); err != nil {
		return Policy{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.More() {
		return Policy{}, fmt.Errorf("%w: more than one JSON value", ErrMalformed)
	}
	p := Policy{Version: raw.Version, ID: raw.ID}
	switch p.Version {
	case Version, "2008-10-17":
	default:
		return Policy{}, fmt.Errorf("%w: Version must be %q, got %q", ErrMalformed, Version, p.Version)
	}
	s := bytes.TrimSpace(raw.Statement)
	if len(s) > 0 && s[0] == '{' {
		s = append(append([]byte{'['}, s...), ']')
	}
	d = json.NewDecoder(bytes.NewReader(s))
	d.DisallowUnknownFields()
	if err := d.Decode(&p.Statement); err != nil {
		return Policy{}, fmt.Errorf("%w: Statement: %w (davkv knows Sid, Effect, Principal, Action and Resource; not Condition, NotAction, NotResource or NotPrincipal)", ErrMalformed, err)
	}
	if len(p.Statement) == 0 {
		return Policy{}, fmt.Errorf("%w: no Statement", ErrMalformed)
	}
	for i, st := range p.Statement {
		if err := st.check(kind, bucket); err != nil {
			name := st.Sid
			if name == "" {
				name = fmt.Sprint(i + 1)
			}
			return Policy{}, fmt.Errorf("%w: statement %s: %w", ErrMalformed, name, err)
		}
	}
	return p, nil
}

// check says what is wrong with st in a document of kind, if anything.
func (st Statement) check(kind Kind, bucket string) error {
	if st.Effect != Allow && st.Effect != Deny {
		return fmt.Errorf("the Effect must be Allow or Deny, got %q", st.Effect)
	}
	switch {
	case kind == KeyPolicy && st.Principal != nil:
		return errors.New("a key's policy is about that key: it names no Principal")
	case kind == BucketPolicy && st.Principal == nil:
		return errors.New("a bucket policy's statement must name a Principal")
	}
	if len(st.Action) == 0 {
		return errors.New("no Action")
	}
	for _, a := range st.Action {
		if err := checkAction(a); err != nil {
			return err
		}
	}
	if len(st.Resource) == 0 {
		return errors.New("no Resource")
	}
	for _, r := range st.Resource {
		if r == "*" {
			if kind == BucketPolicy {
				return fmt.Errorf("resource %q must be bucket %s or in it: a bucket's policy is about its bucket", r, bucket)
			}
			continue
		}
		name, ok := strings.CutPrefix(r, ARNPrefix)
		if !ok || name == "" {
			return fmt.Errorf("resource %q must be * or start with %s", r, ARNPrefix)
		}
		if b, _, _ := strings.Cut(name, "/"); kind == BucketPolicy && b != bucket {
			return fmt.Errorf("resource %q must be bucket %s or in it: a bucket's policy is about its bucket", r, bucket)
		}
	}
	return nil
}

// checkAction says what is wrong with an Action, if anything: it is *, or s3: and an
// action davkv knows, or a pattern that matches one.
func checkAction(a string) error {
	if a == "*" {
		return nil
	}
	name, ok := cutPrefixFold(a, "s3:")
	if !ok {
		return fmt.Errorf("action %q must be * or an s3: action", a)
	}
	for _, known := range Actions {
		if match(name, strings.TrimPrefix(known, "s3:"), true) {
			return nil
		}
	}
	return fmt.Errorf("action %q is none that davkv knows (see the README's Access control)", a)
}

// cutPrefixFold is strings.CutPrefix, ignoring case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// JSON returns p's canonical encoding, as davkv stores and answers it.
func (p Policy) JSON() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic("policy: cannot encode a parsed policy: " + err.Error())
	}
	return b
}
