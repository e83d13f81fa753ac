package bgp

import (
	"net/netip"
	"time"
)

// Session states shown in PeerStatus.State. Between "idle" and
// "established" the state is corebgp's FSM state ("connect", "active",
// "openSent", "openConfirm"); with a collision the further one is shown.
const (
	StateIdle = "idle"
	// StateConnect: we are dialing the neighbour.
	StateConnect     = "connect"
	StateEstablished = "established"
	// StateHeldDown: the neighbour exceeded its max-prefix limit and the
	// session stays down until MaxPrefixRestart has passed.
	StateHeldDown = "held down"
)

// PeerStatus is one session as the status page and `ctl` show it.
type PeerStatus struct {
	Name      string
	Address   netip.Addr
	RemoteASN uint32
	IBGP      bool
	State     string
	// Since is when State was entered: the session's uptime when
	// established.
	Since time.Time
	// LastError is the last reason the session failed or was refused, kept
	// after it recovers so that a flap can be explained afterwards.
	LastError   string
	LastErrorAt time.Time
	// Families are those negotiated on the established session and carried
	// (a family without a next hop is not carried).
	Families []string
	// PrefixesSent is how many prefixes the neighbour has from us now.
	PrefixesSent int
	// RoutesReceived is how many distinct prefixes the neighbour announces
	// to us now (counted, then dropped).
	RoutesReceived int
}

// fsmRank orders corebgp's FSM states by progress, to pick which of the
// two FSMs (incoming and outgoing connection) a peer's status shows.
func fsmRank(s string) int {
	switch s {
	case "idle":
		return 1
	case "connect":
		return 2
	case "active":
		return 3
	case "openSent":
		return 4
	case "openConfirm":
		return 5
	case "established":
		return 6
	}
	return 0 // "disabled" or not started
}
