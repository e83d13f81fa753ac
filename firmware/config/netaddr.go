package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Value types of the routing sections (network, bgp, health). Each checks
// its text when it is decoded, so a bad value is reported with its line,
// and writes itself back the way it is read, so the last good config
// round-trips through the store.

// IPAddr is an IPv4 or IPv6 address without a prefix length.
type IPAddr struct{ netip.Addr }

// UnmarshalYAML parses an address such as 192.0.2.1 or 2001:db8::1.
func (a *IPAddr) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := netip.ParseAddr(s)
	if err != nil {
		return lineErr(n, "%q is not an IP address", s)
	}
	a.Addr = v.Unmap()
	return nil
}

// MarshalYAML writes the address as text; an unset address is left out.
func (a IPAddr) MarshalYAML() (any, error) {
	if !a.IsValid() {
		return "", nil
	}
	return a.String(), nil
}

// IsZero lets omitempty leave unset addresses out.
func (a IPAddr) IsZero() bool { return !a.IsValid() }

// IPPrefix is an address with a prefix length: an interface address such
// as 192.0.2.10/24 (the host bits are kept) or a route such as
// 198.51.100.0/24. "default" means 0.0.0.0/0 or ::/0 and is resolved by
// the section that allows it.
type IPPrefix struct {
	netip.Prefix
	// Default is set for the word "default" (family still unknown).
	Default bool
}

// UnmarshalYAML parses a prefix; "default" is kept as a marker.
func (p *IPPrefix) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if s == "default" {
		*p = IPPrefix{Default: true}
		return nil
	}
	v, err := netip.ParsePrefix(s)
	if err != nil {
		return lineErr(n, "%q is not an address with a prefix length (like 192.0.2.1/24 or 2001:db8::/32)", s)
	}
	if v.Addr().Is4In6() {
		return lineErr(n, "%q: write IPv4 prefixes in IPv4 form", s)
	}
	p.Prefix = v
	return nil
}

// MarshalYAML writes the prefix as text.
func (p IPPrefix) MarshalYAML() (any, error) {
	if p.Default {
		return "default", nil
	}
	return p.String(), nil
}

// ParsePrefixOrAddr reads an address range as operators write one in an
// allow list or a drain request, and is the one parser for that:
//
//   - "192.0.2.0/24" or "2001:db8::/32": a prefix, masked to its length
//     ("192.0.2.77/24" is 192.0.2.0/24), since what is meant is the range;
//   - "192.0.2.53" or "2001:db8::53": one address, the host prefix
//     (/32, /128);
//   - an IPv4-mapped IPv6 address or prefix ("::ffff:192.0.2.1",
//     "::ffff:192.0.2.0/120") is unmapped to its IPv4 form (192.0.2.1/32,
//     192.0.2.0/24), because a socket's peer address comes unmapped and
//     a mapped range would never match it; a mapped prefix shorter than
//     /96 is more than the mapped space and stays IPv6;
//   - an address with a zone ("fe80::1%eth0") is refused.
//
// Interface addresses, whose host bits matter, are IPPrefix instead.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	bad := func() (netip.Prefix, error) {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix (like 192.0.2.53, 192.0.2.0/24 or 2001:db8::/32)", s)
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		v, err := netip.ParsePrefix(s)
		if err != nil {
			return bad()
		}
		p = v.Masked()
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return bad()
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: an address with a zone cannot be a prefix", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// Community is an RFC 1997 BGP community written ASN:VALUE ("65000:100").
type Community struct{ ASN, Value uint16 }

// UnmarshalYAML parses ASN:VALUE, each 0..65535.
func (c *Community) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	f := strings.Split(s, ":")
	if len(f) != 2 {
		return lineErr(n, "community %q: want ASN:VALUE, each 0..65535", s)
	}
	var v [2]uint16
	for i, x := range f {
		u, err := strconv.ParseUint(x, 10, 16)
		if err != nil {
			return lineErr(n, "community %q: want ASN:VALUE, each 0..65535", s)
		}
		v[i] = uint16(u)
	}
	*c = Community{v[0], v[1]}
	return nil
}

func (c Community) String() string { return fmt.Sprintf("%d:%d", c.ASN, c.Value) }

// MarshalYAML writes ASN:VALUE.
func (c Community) MarshalYAML() (any, error) { return c.String(), nil }

// LargeCommunity is an RFC 8092 large community ASN:DATA1:DATA2, each
// 0..4294967295.
type LargeCommunity struct{ ASN, Data1, Data2 uint32 }

// UnmarshalYAML parses ASN:DATA1:DATA2.
func (c *LargeCommunity) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return lineErr(n, "large community %q: want ASN:DATA1:DATA2", s)
	}
	var v [3]uint32
	for i, x := range f {
		u, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return lineErr(n, "large community %q: want ASN:DATA1:DATA2, each 0..4294967295", s)
		}
		v[i] = uint32(u)
	}
	*c = LargeCommunity{v[0], v[1], v[2]}
	return nil
}

func (c LargeCommunity) String() string { return fmt.Sprintf("%d:%d:%d", c.ASN, c.Data1, c.Data2) }

// MarshalYAML writes ASN:DATA1:DATA2.
func (c LargeCommunity) MarshalYAML() (any, error) { return c.String(), nil }
