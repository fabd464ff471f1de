package auth

// The access keys and the buckets' policies, read from the index and kept for a while.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"davkv/internal/index"
	"davkv/internal/policy"
)

// Errors of the Store.
var (
	// ErrUnknownKey says no key has the ID.
	ErrUnknownKey = errors.New("no such access key")
	// ErrKeyExists says a key with the ID is there already.
	ErrKeyExists = errors.New("the access key exists")
	// ErrRootKey says the ID is an administrator's, which davkv keys cannot change.
	ErrRootKey = errors.New("the access key is an administrator's (-s3keys), which only the master's flags can change")
	// ErrBadID says an ID is not one davkv keys can add.
	ErrBadID = errors.New("an access key ID is 3 to 128 letters, digits and -._")
)

// Key is an access key: an administrator's (Root: it may do anything, and manage the
// keys) or one from the index, which may do what its Policy allows.
type Key struct {
	ID     string
	Secret string
	Root   bool
	Policy policy.Policy
	// Stored is what the index holds of a key that is not Root.
	Stored index.AccessKey
}

// DefaultTTL is how long a Store keeps what it read, when its TTL is zero.
const DefaultTTL = time.Second

// Store finds access keys and bucket policies. Root keys are the administrators'; the
// others are entries of the index's KeySpace, read at most once per TTL.
type Store struct {
	// Root are the administrators' keys, ID to secret.
	Root map[string]string
	// Index holds the other keys and the buckets.
	Index index.Index
	// TTL is how long a key or bucket policy read is kept (zero: DefaultTTL).
	TTL time.Duration

	mu      sync.Mutex
	keys    map[string]cached[*Key]
	buckets map[string]cached[*policy.Policy]
}

// cached is a value read from the index at a time; nil is a miss (no such key, no
// policy), kept too so that unknown IDs cost no read each.
type cached[T any] struct {
	v  T
	at time.Time
}

// maxCached bounds each cache; past it, the cache starts again empty.
const maxCached = 10000

// cachedRead returns name's value from cache if it was read within s's TTL, else reads
// it with read and keeps it.
func cachedRead[T any](s *Store, cache *map[string]cached[T], name string, read func() (T, error)) (T, error) {
	now := time.Now()
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s.mu.Lock()
	c, ok := (*cache)[name]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < ttl {
		return c.v, nil
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	s.mu.Lock()
	if *cache == nil || len(*cache) >= maxCached {
		*cache = map[string]cached[T]{}
	}
	(*cache)[name] = cached[T]{v: v, at: now}
	s.mu.Unlock()
	return v, nil
}

// Key returns the key with id, or an error wrapping ErrUnknownKey, or the index's.
func (s *Store) Key(id string) (Key, error) {
	if secret, ok := s.Root[id]; ok {
		return Key{ID: id, Secret: secret, Root: true}, nil
	}
	k, err := cachedRead(s, &s.keys, id, func() (*Key, error) { return s.read(id) })
	if err != nil {
		return Key{}, err
	}
	if k == nil {
		return Key{}, fmt.Errorf("access key %s: %w", id, ErrUnknownKey)
	}
	return *k, nil
}

// read reads key id from the index: nil if there is none.
func (s *Store) read(id string) (*Key, error) {
	stored, _, err := s.stored(id)
	if errors.Is(err, ErrUnknownKey) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse([]byte(stored.Policy), policy.KeyPolicy, "")
	if err != nil {
		return nil, fmt.Errorf("access key %s's stored policy: %w", id, err)
	}
	return &Key{ID: id, Secret: stored.Secret, Policy: p, Stored: stored}, nil
}

// Lookup returns id's secret, found false if there is no such key: what a signature
// check needs.
func (s *Store) Lookup(id string) (secret string, found bool, err error) {
	k, err := s.Key(id)
	if errors.Is(err, ErrUnknownKey) {
		return "", false, nil
	}
	return k.Secret, err == nil, err
}

// Check returns the key c names if c's secret is its own, else an error wrapping
// ErrBadCredentials (or the index's). The secrets are compared in constant time, and
// an unknown ID costs the same comparison, so that timing tells nothing.
func (s *Store) Check(c Credential) (Key, error) {
	k, err := s.Key(c.ID)
	if err != nil && !errors.Is(err, ErrUnknownKey) {
		return Key{}, err
	}
	want := k.Secret
	if err != nil {
		want = "\x00never a secret\x00"
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.Secret)) != 1 || err != nil {
		return Key{}, ErrBadCredentials
	}
	return k, nil
}

// Allows reports whether k (nil: an anonymous request) may do action to resource (see
// policy.Request), given the policy of bucket (none if bucket is ""). A root key may do
// anything.
func (s *Store) Allows(k *Key, action, resource, bucket string) (bool, error) {
	if k != nil && k.Root {
		return true, nil
	}
	req := policy.Request{Action: action, Resource: resource}
	var policies []policy.Policy
	if k != nil {
		req.Key = k.ID
		policies = append(policies, k.Policy)
	}
	if bucket != "" {
		bp, err := s.BucketPolicy(bucket)
		if err != nil {
			return false, err
		}
		if bp != nil {
			policies = append(policies, *bp)
		}
	}
	return policy.Allows(req, policies...), nil
}

// BucketPolicy returns bucket's policy, nil if it has none or there is no such bucket.
func (s *Store) BucketPolicy(bucket string) (*policy.Policy, error) {
	return cachedRead(s, &s.buckets, bucket, func() (*policy.Policy, error) {
		rec, _, err := index.GetBucket(s.Index, bucket)
		switch {
		case errors.Is(err, index.ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("read bucket %s: %w", bucket, err)
		case rec.Policy == "":
			return nil, nil
		}
		p, err := policy.Parse([]byte(rec.Policy), policy.BucketPolicy, bucket)
		if err != nil {
			return nil, fmt.Errorf("bucket %s's stored policy: %w", bucket, err)
		}
		return &p, nil
	})
}

// Forget drops what s keeps of key id and bucket (either may be ""), after this master
// changed them, so that it sees the change at once.
func (s *Store) Forget(id, bucket string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, id)
	delete(s.buckets, bucket)
}

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{3,128}$`)

// NewSecret returns a new random secret: 40 characters of base64url, 240 bits.
func NewSecret() string {
	b := make([]byte, 30)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Add stores a new key id with k's secret, policy and note, stamped with the time.
// It fails with ErrBadID, ErrRootKey or ErrKeyExists, and changes nothing then.
func (s *Store) Add(id string, k index.AccessKey) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("access key ID %q: %w", id, ErrBadID)
	}
	if _, ok := s.Root[id]; ok {
		return fmt.Errorf("access key %s: %w", id, ErrRootKey)
	}
	p, err := policy.Parse([]byte(k.Policy), policy.KeyPolicy, "")
	if err != nil {
		return err
	}
	k.Policy = string(p.JSON())
	k.Created = time.Now().UnixNano()
	b, err := k.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = s.Index.PutEntry(index.KeySpace, id, b, 0)
	if errors.Is(err, index.ErrConflict) {
		return fmt.Errorf("access key %s: %w", id, ErrKeyExists)
	}
	s.Forget(id, "")
	if err != nil {
		return fmt.Errorf("add access key %s: %w", id, err)
	}
	return nil
}

// SetPolicy replaces key id's policy with doc's.
func (s *Store) SetPolicy(id string, doc []byte) error {
	if _, ok := s.Root[id]; ok {
		return fmt.Errorf("access key %s: %w", id, ErrRootKey)
	}
	p, err := policy.Parse(doc, policy.KeyPolicy, "")
	if err != nil {
		return err
	}
	for {
		k, rev, err := s.stored(id)
		if err != nil {
			return err
		}
		k.Policy = string(p.JSON())
		b, err := k.MarshalBinary()
		if err != nil {
			return err
		}
		_, err = s.Index.PutEntry(index.KeySpace, id, b, rev)
		s.Forget(id, "")
		if !errors.Is(err, index.ErrConflict) {
			return err
		}
	}
}

// Remove revokes key id: within TTL, no master takes it any more.
func (s *Store) Remove(id string) error {
	if _, ok := s.Root[id]; ok {
		return fmt.Errorf("access key %s: %w", id, ErrRootKey)
	}
	for {
		_, rev, err := s.stored(id)
		if err != nil {
			return err
		}
		err = s.Index.DeleteEntry(index.KeySpace, id, rev)
		s.Forget(id, "")
		if !errors.Is(err, index.ErrConflict) {
			return err
		}
	}
}

// stored reads key id's entry and its revision, or fails with ErrUnknownKey.
func (s *Store) stored(id string) (index.AccessKey, int64, error) {
	var k index.AccessKey
	b, rev, err := s.Index.GetEntry(index.KeySpace, id)
	if errors.Is(err, index.ErrNotFound) {
		return k, 0, fmt.Errorf("access key %s: %w", id, ErrUnknownKey)
	}
	if err == nil {
		err = k.UnmarshalBinary(b)
	}
	if err != nil {
		return k, 0, fmt.Errorf("read access key %s: %w", id, err)
	}
	return k, rev, nil
}

// List calls fn for each key of the index (not the administrators'), in ID order.
func (s *Store) List(fn func(id string, k index.AccessKey) error) error {
	return s.Index.Entries(index.KeySpace, "", func(id string, b []byte, _ int64) (bool, error) {
		var k index.AccessKey
		if err := k.UnmarshalBinary(b); err != nil {
			return false, fmt.Errorf("read access key %s: %w", id, err)
		}
		return true, fn(id, k)
	})
}
