package config

import (
	"fmt"
	"time"
)

// BGP is the speaker: who the node is, whom it talks to, and the service
// prefixes it announces while health checks pass (health section). An
// empty section means no BGP. README.md beside this file documents every
// option with its default.
type BGP struct {
	// ASN is the node's AS number (4-byte ASNs are fine).
	ASN uint32 `yaml:"asn,omitempty"`
	// RouterID is the BGP identifier, an IPv4 address.
	RouterID IPAddr `yaml:"router_id,omitempty"`
	// Listen are addresses to accept sessions on ("[::]:179"); needed
	// only for passive peers.
	Listen []HostPort `yaml:"listen,omitempty"`
	// HoldTime is the default for peers that set none (90s).
	HoldTime Duration   `yaml:"hold_time,omitempty"`
	Peers    []BGPPeer  `yaml:"peers,omitempty"`
	Prefixes []Announce `yaml:"prefixes,omitempty"`
}

// BGPPeer is one neighbour.
type BGPPeer struct {
	// Name identifies the peer in status and ctl (default: its address).
	Name    string `yaml:"name,omitempty"`
	Address IPAddr `yaml:"address"`
	// ASN is the neighbour's AS; equal to bgp.asn makes the session iBGP.
	ASN uint32 `yaml:"asn"`
	// Port is dialled for outgoing connections (default 179).
	Port         int    `yaml:"port,omitempty"`
	LocalAddress IPAddr `yaml:"local_address,omitempty"`
	Passive      bool   `yaml:"passive,omitempty"`
	// HoldTime proposed in OPEN (default bgp.hold_time); keepalives every
	// third of the negotiated value.
	HoldTime    Duration `yaml:"hold_time,omitempty"`
	MD5Password string   `yaml:"md5_password,omitempty"`
	// NextHop4 and NextHop6 are put on routes of that family; a family
	// without a next hop (none set, and not the session's own family) is
	// not carried on the session.
	NextHop4 IPAddr `yaml:"next_hop4,omitempty"`
	NextHop6 IPAddr `yaml:"next_hop6,omitempty"`
	// MaxPrefixes closes the session when the neighbour sends more (0: no
	// limit); MaxPrefixRestart is how long it stays down then (1m).
	MaxPrefixes      int      `yaml:"max_prefixes,omitempty"`
	MaxPrefixRestart Duration `yaml:"max_prefix_restart,omitempty"`
	// BFD, when enabled, runs a single-hop BFD session with the neighbour
	// and takes the BGP session down when it fails.
	BFD BFD `yaml:"bfd,omitempty"`
}

// BFD configures one peer's BFD session.
type BFD struct {
	Enabled bool `yaml:"enabled,omitempty"`
	// MinTx and MinRx are the intervals offered (300ms each); Multiplier
	// is how many missed packets mean down (3).
	MinTx      Duration `yaml:"min_tx,omitempty"`
	MinRx      Duration `yaml:"min_rx,omitempty"`
	Multiplier int      `yaml:"multiplier,omitempty"`
	// Interface binds the session to a link, as a link-local peer needs.
	Interface string `yaml:"interface,omitempty"`
}

// IsZero lets a disabled BFD block be left out when the config is saved.
func (b BFD) IsZero() bool { return b == BFD{} }

// Announce is one prefix the node announces while it is healthy.
type Announce struct {
	Prefix           IPPrefix         `yaml:"prefix"`
	Communities      []Community      `yaml:"communities,omitempty"`
	LargeCommunities []LargeCommunity `yaml:"large_communities,omitempty"`
	// Prepend adds that many copies of bgp.asn on eBGP sessions (a
	// secondary prefix); LocalPref does the same job on iBGP.
	Prepend   int     `yaml:"prepend,omitempty"`
	MED       *uint32 `yaml:"med,omitempty"`
	LocalPref *uint32 `yaml:"local_pref,omitempty"`
}

// BGP defaults.
const (
	DefaultBGPPort          = 179
	DefaultBGPHoldTime      = 90 * time.Second
	DefaultBFDInterval      = 300 * time.Millisecond
	DefaultBFDMultiplier    = 3
	DefaultMaxPrefixRestart = time.Minute
)

// Enabled reports whether the node speaks BGP.
func (s *BGP) Enabled() bool { return len(s.Peers) > 0 || len(s.Prefixes) > 0 }

func (s *BGP) check(c *Config, line func(string) int) []string {
	if !s.Enabled() && s.ASN == 0 {
		return nil
	}
	var errs []string
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("line %d: bgp: %s", line(key), fmt.Sprintf(format, args...)))
	}
	// at prefers the line of the offending value itself.
	at := func(value, fallback string) string {
		if line(value) > 0 {
			return value
		}
		return fallback
	}
	if s.ASN == 0 {
		bad("bgp:", "asn is required")
	}
	if !s.RouterID.Is4() {
		bad("bgp:", "router_id (an IPv4 address) is required")
	}
	checkHold := func(key string, d Duration) {
		v := time.Duration(d)
		if v != 0 && (v < 3*time.Second || v > 65535*time.Second || v%time.Second != 0) {
			bad(at("hold_time: "+v.String(), key), "hold_time %v: want whole seconds, 3s to 65535s", v)
		}
	}
	checkHold("hold_time", s.HoldTime)
	names := map[string]bool{}
	addrs := map[IPAddr]bool{}
	for _, p := range s.Peers {
		key := p.Address.String()
		if !p.Address.IsValid() {
			bad("peers", "a peer has no address")
			continue
		}
		name := p.Name
		if name == "" {
			name = key
		}
		if names[name] {
			bad(last(name), "peer name %q used twice", name)
		}
		if addrs[p.Address] {
			bad(last(key), "peer %s listed twice", key)
		}
		names[name], addrs[p.Address] = true, true
		if p.ASN == 0 {
			bad(key, "peer %s: asn is required", name)
		}
		if p.Port < 0 || p.Port > 65535 {
			bad(key, "peer %s: port %d out of range", name, p.Port)
		}
		if p.LocalAddress.IsValid() && p.LocalAddress.Is4() != p.Address.Is4() {
			bad(key, "peer %s: local_address %s and address differ in family", name, p.LocalAddress)
		}
		if p.Passive && len(s.Listen) == 0 {
			bad(key, "peer %s: passive needs bgp.listen", name)
		}
		checkHold(key, p.HoldTime)
		if len(p.MD5Password) > 80 {
			bad(key, "peer %s: md5_password longer than 80 bytes", name)
		}
		if p.NextHop4.IsValid() && !p.NextHop4.Is4() {
			bad(key, "peer %s: next_hop4 %s is not IPv4", name, p.NextHop4)
		}
		if p.NextHop6.IsValid() && !p.NextHop6.Is6() {
			bad(key, "peer %s: next_hop6 %s is not IPv6", name, p.NextHop6)
		}
		if p.MaxPrefixes < 0 {
			bad(key, "peer %s: max_prefixes must not be negative", name)
		}
		if b := p.BFD; b.Enabled {
			if (b.MinTx != 0 && time.Duration(b.MinTx) < time.Millisecond) || (b.MinRx != 0 && time.Duration(b.MinRx) < time.Millisecond) {
				bad(key, "peer %s: bfd intervals below 1ms", name)
			}
			if b.Multiplier < 0 || b.Multiplier > 255 {
				bad(key, "peer %s: bfd multiplier %d: must be 1..255", name, b.Multiplier)
			}
		} else if b != (BFD{}) {
			bad(key, "peer %s: bfd options given but bfd.enabled is false", name)
		}
	}
	prefixes := map[string]bool{}
	for _, a := range s.Prefixes {
		key := a.Prefix.String()
		if a.Prefix.Default || !a.Prefix.IsValid() {
			bad("prefix", "announcing %q: want a prefix like 192.0.2.0/24", key)
			continue
		}
		if a.Prefix.Masked() != a.Prefix.Prefix {
			bad(key, "prefix %s: host bits set (did you mean %s?)", a.Prefix, a.Prefix.Masked())
		}
		if prefixes[a.Prefix.Masked().String()] {
			bad(last(key), "prefix %s listed twice", a.Prefix)
		}
		prefixes[a.Prefix.Masked().String()] = true
		if a.Prepend < 0 || a.Prepend > 16 {
			bad(key, "prefix %s: prepend %d: must be 0..16", a.Prefix, a.Prepend)
		}
	}
	return errs
}

// anycastIn returns the configured anycast addresses inside p.
func anycastIn(c *Config, p IPPrefix) []IPAddr {
	var out []IPAddr
	for _, a := range c.Network.Anycast {
		if p.Contains(a.Addr) {
			out = append(out, a)
		}
	}
	return out
}

func (s *BGP) setDefaults(c *Config) {
	if !s.Enabled() {
		return
	}
	if s.HoldTime == 0 {
		s.HoldTime = Duration(DefaultBGPHoldTime)
	}
	for i := range s.Peers {
		p := &s.Peers[i]
		if p.Name == "" {
			p.Name = p.Address.String()
		}
		if p.Port == 0 {
			p.Port = DefaultBGPPort
		}
		if p.HoldTime == 0 {
			p.HoldTime = s.HoldTime
		}
		if p.MaxPrefixRestart == 0 {
			p.MaxPrefixRestart = Duration(DefaultMaxPrefixRestart)
		}
		if p.BFD.Enabled {
			if p.BFD.MinTx == 0 {
				p.BFD.MinTx = Duration(DefaultBFDInterval)
			}
			if p.BFD.MinRx == 0 {
				p.BFD.MinRx = Duration(DefaultBFDInterval)
			}
			if p.BFD.Multiplier == 0 {
				p.BFD.Multiplier = DefaultBFDMultiplier
			}
		}
	}
}
