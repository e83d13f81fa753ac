package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/config"
)

// Defaults applied by New to zero-valued fields, the config document's
// (package config owns them).
const (
	DefaultPort             = config.DefaultBGPPort
	DefaultHoldTime         = config.DefaultBGPHoldTime
	DefaultMaxPrefixRestart = config.DefaultMaxPrefixRestart
	// maxMD5KeyLen is the kernel's TCP_MD5SIG_MAXKEYLEN.
	maxMD5KeyLen = 80
	// maxPrepend keeps AS paths sane: more than a handful of prepends
	// changes nothing in path selection but trips peers' path-length filters.
	maxPrepend = 16
)

// Config describes the speaker: who we are and whom we talk to.
type Config struct {
	// LocalASN is our AS number; 4-byte ASNs are fine.
	LocalASN uint32
	// RouterID is the BGP identifier, an IPv4 address.
	RouterID netip.Addr
	// ListenAddrs are "host:port" TCP addresses to accept sessions on, e.g.
	// "[::]:179" (dual stack) or "192.0.2.1:179". Empty: no listener, and
	// then no peer may be passive.
	ListenAddrs []string
	Peers       []PeerConfig
}

// PeerConfig is one BGP neighbour.
type PeerConfig struct {
	// Name identifies the peer in logs and status; defaults to the address.
	Name string
	// Address is the neighbour's IPv4 or IPv6 address; it decides the
	// session's transport family.
	Address netip.Addr
	// Port is the neighbour's TCP port for outgoing connections (default 179).
	Port int
	// RemoteASN is the neighbour's AS; equal to Config.LocalASN means iBGP.
	RemoteASN uint32
	// LocalAddress, if set, is the source address for outgoing connections
	// and the only destination accepted for incoming ones.
	LocalAddress netip.Addr
	// Passive: never dial, only accept the neighbour's connection.
	Passive bool
	// HoldTime is proposed in our OPEN (default 90 s, at least 3 s, whole
	// seconds); keepalives go out every third of the negotiated value.
	HoldTime time.Duration
	// MD5Password enables TCP-MD5 (RFC 2385) on the session.
	MD5Password string
	// NextHop4 and NextHop6 are the next hops put on IPv4 and IPv6 routes.
	// A family is carried on the session when its next hop is known: set
	// explicitly here, or, for the session's own transport family, taken
	// from LocalAddress or else from the address the kernel uses to reach
	// the neighbour. So an IPv4 session carries IPv4 routes, and also IPv6
	// routes if NextHop6 is set (and vice versa).
	NextHop4, NextHop6 netip.Addr
	// MaxPrefixes closes the session with a CEASE (RFC 4486 subcode 1) when
	// the neighbour announces more prefixes than this; 0 means no limit.
	MaxPrefixes int
	// MaxPrefixRestart is how long the session stays down after a
	// max-prefix cease before we accept or attempt it again (default 1 min).
	MaxPrefixRestart time.Duration
}

// ibgp reports whether the peer is in our own AS.
func (p PeerConfig) ibgp(localASN uint32) bool { return p.RemoteASN == localASN }

// normalize validates cfg and returns a copy with defaults filled in.
func (cfg Config) normalize() (Config, error) {
	if cfg.LocalASN == 0 {
		return cfg, errors.New("bgp: local ASN must not be 0")
	}
	if !cfg.RouterID.Is4() {
		return cfg, fmt.Errorf("bgp: router ID %v is not an IPv4 address", cfg.RouterID)
	}
	out := cfg
	out.ListenAddrs = append([]string(nil), cfg.ListenAddrs...)
	out.Peers = make([]PeerConfig, len(cfg.Peers))
	names := map[string]bool{}
	addrs := map[netip.Addr]bool{}
	for i, p := range cfg.Peers {
		np, err := p.normalize(len(cfg.ListenAddrs) > 0)
		if err != nil {
			return cfg, fmt.Errorf("bgp: peer %d (%s): %w", i, p.Address, err)
		}
		if names[np.Name] {
			return cfg, fmt.Errorf("bgp: duplicate peer name %q", np.Name)
		}
		// corebgp keys peers by address, so two sessions to one address
		// (say, on two ports) cannot coexist.
		if addrs[np.Address] {
			return cfg, fmt.Errorf("bgp: duplicate peer address %v", np.Address)
		}
		names[np.Name], addrs[np.Address] = true, true
		out.Peers[i] = np
	}
	return out, nil
}

func (p PeerConfig) normalize(haveListener bool) (PeerConfig, error) {
	if !p.Address.IsValid() {
		return p, errors.New("address missing")
	}
	p.Address = p.Address.Unmap()
	if p.Name == "" {
		p.Name = p.Address.String()
	}
	if p.RemoteASN == 0 {
		return p, errors.New("remote ASN must not be 0")
	}
	if p.Port == 0 {
		p.Port = DefaultPort
	}
	if p.Port < 1 || p.Port > 65535 {
		return p, fmt.Errorf("port %d out of range", p.Port)
	}
	if p.LocalAddress.IsValid() {
		p.LocalAddress = p.LocalAddress.Unmap()
		if p.LocalAddress.Is4() != p.Address.Is4() {
			return p, fmt.Errorf("local address %v and peer address differ in family", p.LocalAddress)
		}
	}
	if p.Passive && !haveListener {
		return p, errors.New("passive peer needs a listen address")
	}
	if p.HoldTime == 0 {
		p.HoldTime = DefaultHoldTime
	}
	if p.HoldTime < 3*time.Second || p.HoldTime > 65535*time.Second || p.HoldTime%time.Second != 0 {
		return p, fmt.Errorf("hold time %v: want whole seconds, 3s to 65535s", p.HoldTime)
	}
	if len(p.MD5Password) > maxMD5KeyLen {
		return p, fmt.Errorf("MD5 password longer than %d bytes", maxMD5KeyLen)
	}
	if p.NextHop4.IsValid() {
		p.NextHop4 = p.NextHop4.Unmap()
		if !p.NextHop4.Is4() {
			return p, fmt.Errorf("next hop %v for IPv4 is not IPv4", p.NextHop4)
		}
	}
	if p.NextHop6.IsValid() && (!p.NextHop6.Is6() || p.NextHop6.Is4In6()) {
		return p, fmt.Errorf("next hop %v for IPv6 is not IPv6", p.NextHop6)
	}
	if p.MaxPrefixes < 0 {
		return p, errors.New("max prefixes must not be negative")
	}
	if p.MaxPrefixRestart == 0 {
		p.MaxPrefixRestart = DefaultMaxPrefixRestart
	}
	if p.MaxPrefixRestart < 0 {
		return p, errors.New("max-prefix restart must not be negative")
	}
	return p, nil
}

// families returns the address families this peer is configured to carry;
// the next hop of the transport family may still have to be discovered.
func (p PeerConfig) families() familySet {
	var f familySet
	if p.Address.Is4() || p.NextHop4.IsValid() {
		f |= famIPv4
	}
	if p.Address.Is6() || p.NextHop6.IsValid() {
		f |= famIPv6
	}
	return f
}
