package api

import (
	"encoding/json"
	"time"
)

// The routing part of the API: BGP sessions, BFD, announced prefixes and
// their health, the network, and the maintenance switch. RoutingRoutes
// (routing_handlers.go) serves it from firmware/routing; `shoestring ctl
// sessions|prefixes|network|drain|restore` reads it.

// Routing is everything at once: GET /api/v1/routing.
type Routing struct {
	Sessions []BGPSession `json:"sessions"`
	BFD      []BFDSession `json:"bfd,omitempty"`
	Prefixes []Prefix     `json:"prefixes"`
	Network  *Network     `json:"network,omitempty"`
}

// BGPSession is one BGP neighbour: GET /api/v1/routing/sessions.
type BGPSession struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	RemoteASN uint32    `json:"remote_asn"`
	IBGP      bool      `json:"ibgp"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	// Uptime is set while established.
	Uptime         string    `json:"uptime,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	Families       []string  `json:"families,omitempty"`
	PrefixesSent   int       `json:"prefixes_sent"`
	RoutesReceived int       `json:"routes_received"`
	// BFD is the peer's BFD session state, if it has one.
	BFD string `json:"bfd,omitempty"`
}

// BFDSession is one BFD session.
type BFDSession struct {
	Name          string    `json:"name"`
	Peer          string    `json:"peer"`
	State         string    `json:"state"`
	Since         time.Time `json:"since"`
	Diag          string    `json:"diag"`
	RemoteState   string    `json:"remote_state"`
	TxInterval    string    `json:"tx_interval"`
	DetectionTime string    `json:"detection_time"`
}

// Prefix is one announced (or withheld) prefix: GET
// /api/v1/routing/prefixes.
type Prefix struct {
	Prefix string `json:"prefix"`
	// State is announced, draining or withdrawn; Reason says why.
	State       string    `json:"state"`
	Reason      string    `json:"reason"`
	Since       time.Time `json:"since"`
	Healthy     bool      `json:"healthy"`
	Passes      int       `json:"passes"`
	Fails       int       `json:"fails"`
	Targets     []string  `json:"targets"`
	Query       string    `json:"query"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	Maintenance bool      `json:"maintenance"`
	// The attributes it is announced with.
	Communities      []string `json:"communities,omitempty"`
	LargeCommunities []string `json:"large_communities,omitempty"`
	Prepend          int      `json:"prepend,omitempty"`
	MED              *uint32  `json:"med,omitempty"`
	LocalPref        *uint32  `json:"local_pref,omitempty"`
}

// Network is the node's networking: GET /api/v1/routing/network.
type Network struct {
	LastApply time.Time `json:"last_apply"`
	LastError string    `json:"last_error,omitempty"`
	// Changes are those of the last apply that changed anything.
	Changes   []string   `json:"changes,omitempty"`
	ChangedAt time.Time  `json:"changed_at,omitzero"`
	Links     []Link     `json:"links"`
	Lease     *DHCPLease `json:"dhcp_lease,omitempty"`
	DHCPError string     `json:"dhcp_error,omitempty"`
}

// Link is one managed link.
type Link struct {
	Name      string   `json:"name"`
	Up        bool     `json:"up"`
	MTU       int      `json:"mtu"`
	Addresses []string `json:"addresses"`
	Error     string   `json:"error,omitempty"`
}

// DHCPLease is the management link's lease.
type DHCPLease struct {
	Link     string    `json:"link"`
	Address  string    `json:"address"`
	Router   string    `json:"router,omitempty"`
	Server   string    `json:"server"`
	Obtained time.Time `json:"obtained"`
	Renew    time.Time `json:"renew"`
	Expires  time.Time `json:"expires"`
}

// Maintenance is the body of POST /api/v1/routing/drain and
// /api/v1/routing/restore; an empty Prefix means every prefix.
type Maintenance struct {
	Prefix string `json:"prefix,omitempty"`
}

// Routing returns sessions, BFD, prefixes and network together.
func (c *Client) Routing() (Routing, error) {
	var r Routing
	return r, c.do("GET", "/api/v1/routing", nil, &r)
}

// Sessions returns the BGP sessions.
func (c *Client) Sessions() ([]BGPSession, error) {
	var s []BGPSession
	return s, c.do("GET", "/api/v1/routing/sessions", nil, &s)
}

// Prefixes returns the announced prefixes and their health.
func (c *Client) Prefixes() ([]Prefix, error) {
	var p []Prefix
	return p, c.do("GET", "/api/v1/routing/prefixes", nil, &p)
}

// Network returns the node's networking.
func (c *Client) Network() (Network, error) {
	var n Network
	return n, c.do("GET", "/api/v1/routing/network", nil, &n)
}

// Drain puts prefix ("" for all) into maintenance: announced with
// GRACEFUL_SHUTDOWN for the drain wait, then withdrawn until Restore. It
// returns the prefixes' states right after.
func (c *Client) Drain(prefix string) ([]Prefix, error) {
	return c.maintenance("drain", prefix)
}

// Restore ends maintenance of prefix ("" for all).
func (c *Client) Restore(prefix string) ([]Prefix, error) {
	return c.maintenance("restore", prefix)
}

func (c *Client) maintenance(op, prefix string) ([]Prefix, error) {
	body, err := json.Marshal(Maintenance{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	var p []Prefix
	return p, c.do("POST", "/api/v1/routing/"+op, body, &p)
}
