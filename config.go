package main

// The configuration every command that works on the volumes and the index shares.

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ClusterConfig is what every command that works on the volumes and the index needs.
type ClusterConfig struct {
	// Volumes are the host:port names of the nginx volumes.
	Volumes []string
	// DB is the LevelDB directory of the index.
	DB string
	// Replicas is how many volumes hold each value.
	Replicas int
	// Subvolumes is how many sv directories a volume is split into.
	Subvolumes int
	// Secret is the volumes' shared secret ($DAVKV_SECRET), sent with every request
	// to a volume: volumes started with it refuse writes without it (see volume.sh).
	// Empty sends none, for volumes that take writes from anyone.
	Secret string
}

// Validate says what is wrong with c, if anything.
func (c ClusterConfig) Validate() error {
	if c.DB == "" {
		return errors.New("missing -db: the index directory")
	}
	if len(c.Volumes) == 0 {
		return errors.New("missing -volumes: a comma-separated list of host:port")
	}
	seen := make(map[string]bool, len(c.Volumes))
	for _, v := range c.Volumes {
		if _, _, err := net.SplitHostPort(v); err != nil || strings.Contains(v, "/") {
			return fmt.Errorf("volume %q must be host:port", v)
		}
		if seen[v] {
			return fmt.Errorf("volume %s is listed twice", v)
		}
		seen[v] = true
	}
	if c.Replicas < 1 {
		return fmt.Errorf("-replicas must be at least 1, got %d", c.Replicas)
	}
	if len(c.Volumes) < c.Replicas {
		return fmt.Errorf("-replicas %d needs at least %d volumes, got %d", c.Replicas, c.Replicas, len(c.Volumes))
	}
	if c.Subvolumes < 1 || c.Subvolumes > 256 {
		return fmt.Errorf("-subvolumes must be from 1 to 256, got %d", c.Subvolumes)
	}
	return CheckSecret(c.Secret)
}

// CheckSecret says what is wrong with a volume secret, if anything: it goes into
// nginx's configuration and a header as it is, so it is at least 16 characters of
// letters, digits and -._~+/= (base64, hex and UUIDs are), and nothing else.
func CheckSecret(s string) error {
	if s == "" {
		return nil
	}
	if len(s) < 16 || strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~+/=", r))
	}) >= 0 {
		return errors.New("the volume secret ($DAVKV_SECRET or the file $DAVKV_SECRET_FILE names) must be at least 16 characters of letters, digits and -._~+/=")
	}
	return nil
}

// Placement is where c places keys.
func (c ClusterConfig) Placement() Placement {
	return Placement{Volumes: c.Volumes, Replicas: c.Replicas, Subvolumes: c.Subvolumes}
}
