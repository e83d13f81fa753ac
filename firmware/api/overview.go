package api

import (
	"context"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/access"
)

// The overview is everything the status page shows besides the zones: the
// routing subsystem's BGP sessions, prefixes and their health checks, the
// secondary service's zone freshness, the tailnet, dnstap and recent log
// lines, and the node's health by part. Each part is read directly from
// the subsystem that owns it (Sources, management.go), and is nil when that
// subsystem is absent from the node.

// Overviewer is the optional part of a Backend that fills the overview.
type Overviewer interface {
	Overview() Overview
}

// Overview is the node's state at a glance: GET /api/v1/overview.
type Overview struct {
	Version   string           `json:"version,omitempty"`
	Tailnet   *Tailnet         `json:"tailnet,omitempty"`
	Routing   *Routing         `json:"routing,omitempty"`
	Secondary *SecondaryStatus `json:"secondary,omitempty"`
	Dnstap    *DnstapStatus    `json:"dnstap,omitempty"`
	Health    *Health          `json:"health,omitempty"`
	Budget    *MemoryBudget    `json:"memory_budget,omitempty"`
	Logs      []LogLine        `json:"logs,omitempty"`
}

// MemoryBudget is the node's memory budget (dns.memory_limit): zone versions
// and transfers that would take the node past it are refused.
type MemoryBudget struct {
	LimitBytes int64  `json:"limit_bytes"` // 0: no limit
	HeapBytes  int64  `json:"heap_bytes"`  // the Go heap's live bytes now
	Refused    uint64 `json:"refused"`     // zone versions refused for it since start
}

// Tailnet is the node's place on the management overlay.
type Tailnet struct {
	State string   `json:"state"` // "running", "starting", "needs login", …
	Name  string   `json:"name,omitempty"`
	IPs   []string `json:"ips,omitempty"`
	// Control is the coordination server's URL.
	Control string `json:"control,omitempty"`
	Peers   []Peer `json:"peers,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Peer is another node on the tailnet.
type Peer struct {
	Name     string    `json:"name"`
	IPs      []string  `json:"ips"`
	Online   bool      `json:"online"`
	Tags     []string  `json:"tags,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// DnstapStatus is the dnstap output's state.
type DnstapStatus struct {
	Target    string `json:"target"`
	Connected bool   `json:"connected"`
	Sent      uint64 `json:"sent"`
	Dropped   uint64 `json:"dropped"`
	Error     string `json:"error,omitempty"`
}

// LogLine is one recent log record.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// Caller and Role are defined by the access control (firmware/access),
// which finds them; the API shows them (GET /api/v1/whoami).
type (
	Caller = access.Caller
	Role   = access.Role
)

// Roles.
const (
	RoleNone  = access.RoleNone
	RoleRead  = access.RoleRead
	RoleAdmin = access.RoleAdmin
)

// WithCaller returns ctx carrying the caller.
func WithCaller(ctx context.Context, c Caller) context.Context { return access.WithCaller(ctx, c) }

// CallerFrom returns the caller a request was made by, if known.
func CallerFrom(ctx context.Context) (Caller, bool) { return access.CallerFrom(ctx) }

// Identity is the public "which node did I reach?" document.
type Identity struct {
	Name     string            `json:"name"`
	Location string            `json:"location,omitempty"`
	Version  string            `json:"version,omitempty"`
	Serials  map[string]uint32 `json:"serials"`
	Time     time.Time         `json:"time"`
}
