package main

// The configuration of the master (ServerConfig) and what every command that works on
// the volumes and the index shares (ClusterConfig, -volumes).

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"davkv/internal/layout"
	"davkv/internal/s3proto"
)

// ClusterConfig is what every command that works on the volumes and the index needs.
type ClusterConfig struct {
	// Volumes are the host:port names of the nginx volumes.
	Volumes []string
	// Zones and Weights are where the volumes are and how big, as -volumes names
	// them (see Placement): nil is no zones, and weight 1 each.
	Zones   map[string]string
	Weights map[string]float64
	// DB is the LevelDB directory of the index.
	DB string
	// Replicas is how many volumes hold each value.
	Replicas int
	// Subvolumes is how many sv directories a volume is split into.
	Subvolumes int
	// Ranking is how keys are placed on volumes (-placement): davkv's rendezvous
	// hashing (the zero value), or minikeyvalue's, for a cluster adopted from it.
	Ranking layout.Ranking
	// Secret is the volumes' shared secret ($DAVKV_SECRET), sent with every request
	// to a volume: volumes started with it refuse writes without it (see volume.sh).
	// Empty sends none, for volumes that take writes from anyone.
	Secret string
	// VolumeTLS says the volumes speak HTTPS (volume.sh with DAVKV_TLS_CERT): every
	// connection to them is TLS, trusting the system's certificates (or those of
	// $SSL_CERT_FILE), and clients are redirected to https. False: plain HTTP, for a
	// network the masters, volumes and clients trust.
	VolumeTLS bool
}

// VolumeClient returns a client for c's volumes, whose connects and answer waits are
// bounded by timeout.
func (c ClusterConfig) VolumeClient(timeout time.Duration) *VolumeClient {
	client := NewVolumeClient(timeout, c.Secret)
	if c.VolumeTLS {
		client.UseTLS(nil)
	}
	return client
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
		if _, port, err := net.SplitHostPort(v); err != nil || strings.Contains(v, "/") || !validPort(port) {
			return fmt.Errorf("volume %q must be host:port (or ZONE/host:port, a zone being letters, digits and -._)", v)
		}
		if seen[v] {
			return fmt.Errorf("volume %s is listed twice", v)
		}
		seen[v] = true
	}
	for v, z := range c.Zones {
		if !seen[v] {
			return fmt.Errorf("zone %q is named for volume %s, which is not one of -volumes", z, v)
		}
		if !validZone(z) {
			return fmt.Errorf("volume %s: zone %q must be letters, digits and -._", v, z)
		}
	}
	if len(c.Zones) > 0 && len(c.Zones) < len(c.Volumes) {
		return errors.New("some volumes have no zone while others have: name a zone for every volume or for none")
	}
	for v, w := range c.Weights {
		if !seen[v] {
			return fmt.Errorf("a weight is given for volume %s, which is not one of -volumes", v)
		}
		if !(w > 0 && w <= maxWeight) {
			return fmt.Errorf("volume %s: weight %g must be above 0 and at most %d", v, w, maxWeight)
		}
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
	switch c.Ranking {
	case layout.RankDavkv:
	case layout.RankMKV:
		if len(c.Zones) > 0 || len(c.Weights) > 0 {
			return errors.New("-placement mkv ranks volumes as minikeyvalue did, which knows no zones or weights: name none in -volumes")
		}
	default:
		return fmt.Errorf("-placement must be davkv or mkv, got %q", c.Ranking)
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
func (c ClusterConfig) Placement() layout.Placement {
	return layout.Placement{Volumes: c.Volumes, Replicas: c.Replicas, Subvolumes: c.Subvolumes, Zones: c.Zones, Weights: c.Weights, Ranking: c.Ranking}.Prepared()
}

// maxWeight bounds a volume's weight: a volume 10,000 times another's share is a
// typo, not a disk.
const maxWeight = 10000

// volumesFlag fills a list of volumes, their zones and their weights from -volumes:
// comma-separated [ZONE/]HOST:PORT[*WEIGHT]. A plain HOST:PORT list, as minikeyvalue
// takes, is zone "" and weight 1 throughout.
type volumesFlag struct {
	volumes *[]string
	zones   *map[string]string
	weights *map[string]float64
}

func (f volumesFlag) String() string {
	if f.volumes == nil {
		return ""
	}
	var out []string
	for _, v := range *f.volumes {
		entry := v
		if z := (*f.zones)[v]; z != "" {
			entry = z + "/" + v
		}
		if w, ok := (*f.weights)[v]; ok {
			entry += "*" + strconv.FormatFloat(w, 'g', -1, 64)
		}
		out = append(out, entry)
	}
	return strings.Join(out, ",")
}

func (f volumesFlag) Set(s string) error {
	vols, zones, weights, err := parseVolumes(s)
	if err != nil {
		return err
	}
	*f.volumes, *f.zones, *f.weights = vols, zones, weights
	return nil
}

// parseVolumes reads -volumes. Zones are all or none: a volume left out of the zones
// of the others would be a zone of its own by mistake.
func parseVolumes(s string) (vols []string, zones map[string]string, weights map[string]float64, err error) {
	var unzoned []string
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		v := entry
		// What is no zone before a / (http://host:port) stays in the address,
		// which Validate then says is not host:port.
		zone, rest, hasZone := strings.Cut(v, "/")
		if hasZone = hasZone && validZone(zone); hasZone {
			v = rest
		}
		if addr, w, ok := strings.Cut(v, "*"); ok {
			weight, err := strconv.ParseFloat(w, 64)
			if err != nil || !(weight > 0 && weight <= maxWeight) {
				return nil, nil, nil, fmt.Errorf("volume %q: a weight is a number above 0 and at most %d, after the *", entry, maxWeight)
			}
			v = addr
			if weights == nil {
				weights = map[string]float64{}
			}
			weights[v] = weight
		}
		if hasZone {
			if zones == nil {
				zones = map[string]string{}
			}
			zones[v] = zone
		} else {
			unzoned = append(unzoned, v)
		}
		vols = append(vols, v)
	}
	if len(zones) > 0 && len(unzoned) > 0 {
		return nil, nil, nil, fmt.Errorf("volumes %s have no zone while others have: name a zone for every volume or for none", strings.Join(unzoned, ", "))
	}
	return vols, zones, weights, nil
}

// validPort reports whether port is a TCP port number.
func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == port
}

// validZone reports whether zone is a name a zone may have: it shows in metrics
// labels and log lines as it is.
func validZone(zone string) bool {
	return zone != "" && len(zone) <= 64 && strings.IndexFunc(zone, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._", r))
	}) < 0
}

// ServerConfig is the master's configuration, filled from flags.
type ServerConfig struct {
	ClusterConfig
	// Port is the TCP port to listen on, on all addresses.
	Port int
	// Protect refuses DELETE of a live key: it must be UNLINKed first.
	Protect bool
	// Fallback, if set, is a host:port that GETs of unknown keys are redirected to.
	Fallback string
	// MinReplicas, if not zero, is how few replicas a PUT may store when fewer than
	// Replicas volumes are up; the key is then under-replicated until verify -fix or
	// rebalance copies it. Zero means Replicas.
	MinReplicas int
	// MD5Sum computes each value's MD5 while storing it and serves it as Content-Md5.
	MD5Sum bool
	// VolTimeout bounds connecting to a volume and waiting for its answer.
	VolTimeout time.Duration
	// Sync makes every index write wait for the disk.
	Sync bool
	// Grace is how long old replicas are kept, those of a key REBALANCE moved and the
	// values S3 overwrites replaced, so that redirects already sent still land. Zero
	// deletes them at once.
	Grace time.Duration
	// Verbose logs every request.
	Verbose bool
	// S3Keys are the administrators' access keys: S3 requests must be signed with
	// them or with a key of the index (davkv keys), and only they may manage keys.
	// Empty, signatures are not checked and anyone who reaches the master may use the
	// S3 API.
	S3Keys s3proto.Keys
	// Auth makes native requests need credentials too (see access.go), but GET and
	// HEAD of what a bucket's policy lets anyone read. It needs S3Keys. False leaves
	// the native API as open as minikeyvalue's.
	Auth bool
	// AuthBurst and AuthRate bound the failed authentications of one client address:
	// AuthBurst at once, then AuthRate a second (zero: auth.Limiter's defaults, 20 and
	// 1).
	AuthBurst int
	AuthRate  float64
	// TLSCert and TLSKey are the PEM files of the master's TLS certificate and key:
	// set, the master speaks HTTPS (HTTP/1.1 and HTTP/2) only, and reads them again
	// on SIGHUP. Empty, it speaks plain HTTP.
	TLSCert, TLSKey string
	// S3Domain, if set, makes requests to BUCKET.S3Domain virtual-host S3 requests
	// for BUCKET; empty, only path-style S3 requests (/BUCKET/KEY) are understood.
	S3Domain string
	// UploadGrace is how old an S3 multipart upload may grow before it counts as
	// abandoned and is removed, parts and all. Zero means 7 days.
	UploadGrace time.Duration
	// CompleteKeepalive is how often CompleteMultipartUpload sends a space while it
	// assembles the object, so that clients do not time out. Zero means 5 seconds.
	CompleteKeepalive time.Duration
	// SignReads, if positive, signs every redirect to a volume for that long (see
	// signurl.Sign), for volumes that refuse unsigned reads (volume.sh with
	// DAVKV_SIGNREADS); it needs ClusterConfig.Secret. Zero sends plain links.
	SignReads time.Duration
	// Zone is the zone this master is in: GETs redirect to a replica in it when one
	// is up, and S3 reads read from one, so that reads stay near their reader. Empty
	// reads from any replica.
	Zone string
	// NoMetrics turns off GET /metrics and the counting behind it, which costs the
	// master a little CPU per request; zero counts.
	NoMetrics bool
	// LifecycleDay is how long a day of the buckets' lifecycle rules lasts, so that
	// tests see keys expire without waiting for real days. Zero means 24 hours.
	LifecycleDay time.Duration
}

// Validate says what is wrong with c, if anything.
func (c ServerConfig) Validate() error {
	if err := c.ClusterConfig.Validate(); err != nil {
		return err
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("-port %d is not a TCP port", c.Port)
	}
	if c.MinReplicas < 0 || c.MinReplicas > c.Replicas {
		return fmt.Errorf("-minreplicas must be from 1 to -replicas (%d), got %d", c.Replicas, c.MinReplicas)
	}
	if c.Grace < 0 {
		return fmt.Errorf("-grace must not be negative, got %v", c.Grace)
	}
	if c.UploadGrace < 0 {
		return fmt.Errorf("-upload-grace must not be negative, got %v", c.UploadGrace)
	}
	if c.LifecycleDay < 0 {
		return fmt.Errorf("-lifecycle-day must not be negative, got %v", c.LifecycleDay)
	}
	if c.VolTimeout <= 0 {
		return fmt.Errorf("-voltimeout must be positive, got %v", c.VolTimeout)
	}
	if c.SignReads < 0 {
		return fmt.Errorf("-signreads must not be negative, got %v", c.SignReads)
	}
	if c.AuthBurst < 0 || c.AuthRate < 0 {
		return errors.New("-auth-burst and -auth-rate must not be negative")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("-tls-cert and -tls-key go together: give both, or neither")
	}
	if c.Auth && len(c.S3Keys) == 0 {
		return errors.New("-auth needs an administrator's key: give -s3keys or $DAVKV_S3_KEYS")
	}
	if c.SignReads > 0 && c.Secret == "" {
		return errors.New("-signreads needs the volumes' secret: set DAVKV_SECRET (or DAVKV_SECRET_FILE)")
	}
	if c.Zone != "" && !c.Placement().HasZone(c.Zone) {
		return fmt.Errorf("-zone %q: no volume is in that zone (-volumes names zones as ZONE/HOST:PORT)", c.Zone)
	}
	if c.Fallback != "" {
		if _, _, err := net.SplitHostPort(c.Fallback); err != nil {
			return fmt.Errorf("-fallback %q must be host:port: %w", c.Fallback, err)
		}
	}
	return nil
}
