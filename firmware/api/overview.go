package api

import (
	"context"
	"time"
)

// The overview is everything the status page shows besides the zones: the
// routing subsystem's BGP sessions, prefixes and their health checks, the
// secondary service's zone freshness, the tailnet, dnstap and recent log
// lines. Each part comes from the subsystem that owns it, read through its
// own API endpoint, and is nil when that subsystem is absent from the node.

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
	Logs      []LogLine        `json:"logs,omitempty"`
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

// Role is what a caller may do: read, or also change things.
type Role string

// Roles.
const (
	RoleNone  Role = ""
	RoleRead  Role = "read"
	RoleAdmin Role = "admin"
)

// Caller is who made a request, as the access control found them.
type Caller struct {
	// Login is the tailnet user's login name; empty for tagged nodes.
	Login string `json:"login,omitempty"`
	// Node is the calling machine's tailnet name.
	Node string   `json:"node,omitempty"`
	Tags []string `json:"tags,omitempty"`
	Addr string   `json:"addr"`
	Role Role     `json:"role"`
	// Local is set for callers on the box itself (loopback, dev mode).
	Local bool `json:"local,omitempty"`
}

// String names the caller for logs.
func (c Caller) String() string {
	switch {
	case c.Local:
		return "local:" + c.Addr
	case c.Login != "":
		return c.Login + " (" + c.Node + ")"
	case len(c.Tags) > 0:
		return c.Node + " " + c.Tags[0]
	}
	return c.Addr
}

type callerKey struct{}

// WithCaller returns ctx carrying the caller.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller a request was made by, if known.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Identity is the public "which node did I reach?" document.
type Identity struct {
	Name     string            `json:"name"`
	Location string            `json:"location,omitempty"`
	Version  string            `json:"version,omitempty"`
	Serials  map[string]uint32 `json:"serials"`
	Time     time.Time         `json:"time"`
}
