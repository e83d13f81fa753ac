package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// GracefulShutdownCommunity is GRACEFUL_SHUTDOWN, 65535:0 (RFC 8326): peers
// that honour it lower the route's preference so traffic moves elsewhere
// before the route is withdrawn.
const GracefulShutdownCommunity uint32 = 0xFFFF0000

// DefaultLocalPref is sent on iBGP routes that set no LocalPref, because
// RFC 4271 requires LOCAL_PREF on every iBGP UPDATE.
const DefaultLocalPref uint32 = 100

// maxCommunityBytes bounds the community attributes of one route.
const maxCommunityBytes = 3072

// Community builds an RFC 1997 community asn:value.
func Community(asn, value uint16) uint32 { return uint32(asn)<<16 | uint32(value) }

// LargeCommunity is an RFC 8092 large community ASN:Data1:Data2.
type LargeCommunity struct {
	ASN, Data1, Data2 uint32
}

// Route is one prefix to announce and the attributes to announce it with.
type Route struct {
	Prefix           netip.Prefix
	Communities      []uint32 // see Community
	LargeCommunities []LargeCommunity
	// Prepend adds that many extra copies of our ASN to the AS path on eBGP
	// sessions. iBGP sessions ignore it: our own ASN in an iBGP path makes
	// the neighbour discard the route as a loop; use LocalPref there.
	Prepend int
	// MED, if set, is sent as MULTI_EXIT_DISC.
	MED *uint32
	// LocalPref is sent on iBGP sessions only (default DefaultLocalPref).
	LocalPref *uint32
	// GracefulShutdown marks the route as about to go (RFC 8326): it adds
	// GracefulShutdownCommunity and, on iBGP, sets LOCAL_PREF to 0.
	GracefulShutdown bool
}

// ribRoute is a validated Route in canonical form; key identifies its
// attributes so that sessions can tell a changed route from an unchanged one.
type ribRoute struct {
	Route
	key string
}

// rib is an immutable desired state; SetRoutes replaces it whole.
type rib struct {
	routes map[netip.Prefix]*ribRoute
	// sorted lists the prefixes in a fixed order so UPDATEs go out in a
	// deterministic sequence.
	sorted []netip.Prefix
}

// newRIB validates routes and builds the desired state from them.
func newRIB(routes []Route) (*rib, error) {
	r := &rib{routes: make(map[netip.Prefix]*ribRoute, len(routes))}
	for _, rt := range routes {
		if !rt.Prefix.IsValid() {
			return nil, fmt.Errorf("bgp: invalid prefix %v", rt.Prefix)
		}
		// A v4-mapped prefix would be announced as IPv6 and never match
		// the IPv4 route the caller meant; refuse it rather than guess.
		if rt.Prefix.Addr().Is4In6() || rt.Prefix.Addr().Zone() != "" {
			return nil, fmt.Errorf("bgp: prefix %v is v4-mapped or zoned", rt.Prefix)
		}
		p := rt.Prefix.Masked()
		if _, dup := r.routes[p]; dup {
			return nil, fmt.Errorf("bgp: prefix %v listed twice", p)
		}
		if rt.Prepend < 0 || rt.Prepend > maxPrepend {
			return nil, fmt.Errorf("bgp: %v: prepend %d out of range 0..%d", p, rt.Prepend, maxPrepend)
		}
		c := rt
		c.Prefix = p
		c.Communities = slices.Clone(rt.Communities)
		if rt.GracefulShutdown {
			c.Communities = append(c.Communities, GracefulShutdownCommunity)
		}
		slices.Sort(c.Communities)
		c.Communities = slices.Compact(c.Communities)
		c.LargeCommunities = slices.Clone(rt.LargeCommunities)
		slices.SortFunc(c.LargeCommunities, func(a, b LargeCommunity) int {
			return cmp.Or(cmp.Compare(a.ASN, b.ASN), cmp.Compare(a.Data1, b.Data1), cmp.Compare(a.Data2, b.Data2))
		})
		c.LargeCommunities = slices.Compact(c.LargeCommunities)
		// Leave room for the other attributes and at least one prefix in
		// a 4096-byte UPDATE, so a valid route can always be sent.
		if 4*len(c.Communities)+12*len(c.LargeCommunities) > maxCommunityBytes {
			return nil, fmt.Errorf("bgp: %v: too many communities", p)
		}
		if rt.MED != nil {
			v := *rt.MED
			c.MED = &v
		}
		if rt.LocalPref != nil {
			v := *rt.LocalPref
			c.LocalPref = &v
		}
		r.routes[p] = &ribRoute{Route: c, key: attrKey(c)}
		r.sorted = append(r.sorted, p)
	}
	slices.SortFunc(r.sorted, comparePrefix)
	return r, nil
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// attrKey renders everything but the prefix, so equal keys mean the
// routes can share one UPDATE.
func attrKey(r Route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%v l%v p%d g%t", r.Communities, r.LargeCommunities, r.Prepend, r.GracefulShutdown)
	if r.MED != nil {
		fmt.Fprintf(&b, " m%d", *r.MED)
	}
	if r.LocalPref != nil {
		fmt.Fprintf(&b, " lp%d", *r.LocalPref)
	}
	return b.String()
}
