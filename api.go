package main

// What the master and the commands that talk to it (MasterClient) agree on: the
// reserved paths, the methods, and the JSON answers other than those of REBALANCE
// (KeyMove) and VERIFY (Finding).

const (
	// healthPath answers with a HealthPage; it is no key.
	healthPath = "/health"
	// metricsPath answers with the metrics; it is no key.
	metricsPath = "/metrics"
	// allowedMethods are the methods the master serves, for 405's Allow header.
	allowedMethods = "GET, HEAD, PUT, DELETE, UNLINK, REBALANCE, VERIFY"
)

// ListPage is the answer to ?list, ?unlinked and ?pending.
type ListPage struct {
	// Next is the first key of the following page, or empty at the end.
	Next string   `json:"next"`
	Keys []string `json:"keys"`
}

// HealthPage is the answer to GET /health.
type HealthPage struct {
	// Ready says the master has finished its start-up recovery (see Master.recover).
	Ready   bool           `json:"ready"`
	Volumes []VolumeStatus `json:"volumes"`
	// Domains are the failure domains the volumes are in, one per host (in its zone),
	// in the order of the volumes: placement spreads each key's replicas over them.
	Domains []DomainStatus `json:"domains"`
}

// DomainStatus is one failure domain, a host in its zone, in GET /health.
type DomainStatus struct {
	Zone    string   `json:"zone,omitempty"`
	Host    string   `json:"host"`
	Volumes []string `json:"volumes"`
	// Up is how many of Volumes answer.
	Up int `json:"up"`
}

// VolumeStatus is one volume's entry in GET /health.
type VolumeStatus struct {
	Volume string `json:"volume"`
	Up     bool   `json:"up"`
	// Full says the volume refused a write for want of room lately: it gets no
	// writes until it has room again, but serves reads and deletes.
	Full  bool   `json:"full"`
	Error string `json:"error,omitempty"`
	// Zone, Host and Weight are where placement counts the volume to be and its
	// share of keys (see Placement).
	Zone   string  `json:"zone,omitempty"`
	Host   string  `json:"host"`
	Weight float64 `json:"weight"`
}
