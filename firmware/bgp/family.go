package bgp

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/jwhited/corebgp"
)

// familySet is a set of the address families the speaker knows: IPv4 and
// IPv6 unicast, nothing else.
type familySet uint8

const (
	famIPv4 familySet = 1 << iota
	famIPv6
)

func familyOf(p netip.Prefix) familySet {
	if p.Addr().Is4() {
		return famIPv4
	}
	return famIPv6
}

func (f familySet) has(g familySet) bool { return f&g == g }

// Strings names the families as gobgp and the RFCs do.
func (f familySet) Strings() []string {
	var s []string
	if f.has(famIPv4) {
		s = append(s, "ipv4-unicast")
	}
	if f.has(famIPv6) {
		s = append(s, "ipv6-unicast")
	}
	return s
}

func (f familySet) String() string { return strings.Join(f.Strings(), ",") }

// capabilities returns the multiprotocol capabilities (RFC 4760) for f.
// IPv4 unicast is listed explicitly too: once any MP capability is
// exchanged, a peer may treat unlisted IPv4 unicast as not negotiated.
func (f familySet) capabilities() []corebgp.Capability {
	var caps []corebgp.Capability
	if f.has(famIPv4) {
		caps = append(caps, corebgp.NewMPExtensionsCapability(corebgp.AFI_IPV4, corebgp.SAFI_UNICAST))
	}
	if f.has(famIPv6) {
		caps = append(caps, corebgp.NewMPExtensionsCapability(corebgp.AFI_IPV6, corebgp.SAFI_UNICAST))
	}
	return caps
}

// remoteFamilies reads the families a peer's OPEN offers. A peer that
// sends no multiprotocol capability at all speaks plain BGP-4, which is
// IPv4 unicast only (RFC 4760 section 1).
func remoteFamilies(caps []corebgp.Capability) familySet {
	var f familySet
	sawMP := false
	for _, c := range caps {
		if c.Code != corebgp.CAP_MP_EXTENSIONS || len(c.Value) != 4 {
			continue
		}
		sawMP = true
		afi, safi := binary.BigEndian.Uint16(c.Value), c.Value[3]
		switch {
		case afi == corebgp.AFI_IPV4 && safi == corebgp.SAFI_UNICAST:
			f |= famIPv4
		case afi == corebgp.AFI_IPV6 && safi == corebgp.SAFI_UNICAST:
			f |= famIPv6
		}
	}
	if !sawMP {
		f = famIPv4
	}
	return f
}
