package main

// What the master and the commands that talk to it (MasterClient) agree on: the
// reserved paths, the methods, and the JSON answers other than those of REBALANCE
// (KeyMove) and VERIFY (Finding).

const (
	// healthPath answers with a HealthPage; it is no key.
	healthPath = "/health"
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
}

// VolumeStatus is one volume's entry in GET /health.
type VolumeStatus struct {
	Volume string `json:"volume"`
	Up     bool   `json:"up"`
	// Full says the volume refused a write for want of room lately: it gets no
	// writes until it has room again, but serves reads and deletes.
	Full  bool   `json:"full"`
	Error string `json:"error,omitempty"`
}
