// Package status describes a node's place on its management tailnet —
// its state, addresses and peers — without the tailnet itself: the
// packages that report it (the management API) use these types and do
// not link tsnet (two hundred packages) to do so.
package status

import (
	"net/netip"
	"time"
)

// Status is the node's place on the tailnet.
type Status struct {
	State string // "running", "starting", "needs login", …
	Name  string
	IPs   []netip.Addr
	// Control is the coordination server's URL.
	Control string
	Peers   []Peer
	Error   string
}

// Peer is another node on the tailnet.
type Peer struct {
	Name     string
	IPs      []netip.Addr
	Online   bool
	Tags     []string
	LastSeen time.Time
}
