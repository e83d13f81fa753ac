package bgp

import (
	"fmt"
	"net/netip"

	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// maxUpdateBody is the largest UPDATE body corebgp lets us write: the BGP
// message limit minus the header it prepends. We never negotiate extended
// messages (RFC 8654), and corebgp reads nothing larger either.
const maxUpdateBody = gbgp.BGP_MAX_MESSAGE_LENGTH - gbgp.BGP_HEADER_LENGTH

// Fixed parts of an UPDATE body, for packing prefixes into as few messages
// as fit: the two length fields, and the MP_REACH/MP_UNREACH overhead with
// an extended-length header (the worst case), AFI, SAFI, next-hop length,
// a 16-byte next hop and the reserved byte.
const (
	updateLengthFields = 4
	mpReachOverhead    = 4 + 2 + 1 + 1 + 16 + 1
	mpUnreachOverhead  = 4 + 2 + 1
)

// sessionParams are what every UPDATE on one session shares.
type sessionParams struct {
	localASN           uint32
	ibgp               bool
	nextHop4, nextHop6 netip.Addr
}

// pathAttrs builds the attributes common to routes sharing r's attributes on
// this session, in type-code order, without NEXT_HOP or MP_REACH_NLRI.
func (sp sessionParams) pathAttrs(r *ribRoute) (head, tail []gbgp.PathAttributeInterface) {
	head = append(head, gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP))
	if sp.ibgp {
		// Routes we originate carry an empty AS_PATH inside our AS.
		head = append(head, gbgp.NewPathAttributeAsPath(nil))
	} else {
		path := make([]uint32, 1+r.Prepend)
		for i := range path {
			path[i] = sp.localASN
		}
		head = append(head, gbgp.NewPathAttributeAsPath([]gbgp.AsPathParamInterface{
			gbgp.NewAs4PathParam(gbgp.BGP_ASPATH_ATTR_TYPE_SEQ, path),
		}))
	}
	// NEXT_HOP (3) goes between head and tail for IPv4.
	if r.MED != nil {
		tail = append(tail, gbgp.NewPathAttributeMultiExitDisc(*r.MED))
	}
	if sp.ibgp {
		lp := DefaultLocalPref
		switch {
		case r.GracefulShutdown:
			// RFC 8326 section 4: inside the AS, act on GRACEFUL_SHUTDOWN
			// ourselves by dropping LOCAL_PREF to 0.
			lp = 0
		case r.LocalPref != nil:
			lp = *r.LocalPref
		}
		tail = append(tail, gbgp.NewPathAttributeLocalPref(lp))
	}
	if len(r.Communities) > 0 {
		tail = append(tail, gbgp.NewPathAttributeCommunities(r.Communities))
	}
	return head, tail
}

func (sp sessionParams) largeCommunities(r *ribRoute) []gbgp.PathAttributeInterface {
	if len(r.LargeCommunities) == 0 {
		return nil
	}
	lcs := make([]*gbgp.LargeCommunity, len(r.LargeCommunities))
	for i, lc := range r.LargeCommunities {
		lcs[i] = gbgp.NewLargeCommunity(lc.ASN, lc.Data1, lc.Data2)
	}
	return []gbgp.PathAttributeInterface{gbgp.NewPathAttributeLargeCommunities(lcs)}
}

// announce returns the UPDATE bodies announcing prefixes, all of family fam
// and all sharing r's attributes.
func (sp sessionParams) announce(fam familySet, r *ribRoute, prefixes []netip.Prefix) ([][]byte, error) {
	head, tail := sp.pathAttrs(r)
	lc := sp.largeCommunities(r)
	var budget int
	switch fam {
	case famIPv4:
		if !sp.nextHop4.Is4() {
			return nil, fmt.Errorf("no IPv4 next hop")
		}
		nh, err := gbgp.NewPathAttributeNextHop(sp.nextHop4)
		if err != nil {
			return nil, err
		}
		head = append(head, nh)
		budget = maxUpdateBody - updateLengthFields
	case famIPv6:
		if !sp.nextHop6.Is6() {
			return nil, fmt.Errorf("no IPv6 next hop")
		}
		budget = maxUpdateBody - updateLengthFields - mpReachOverhead
	}
	for _, a := range append(append(append([]gbgp.PathAttributeInterface(nil), head...), tail...), lc...) {
		budget -= a.Len()
	}
	var out [][]byte
	for _, chunk := range chunkPrefixes(prefixes, budget) {
		nlri, err := pathNLRI(chunk)
		if err != nil {
			return nil, err
		}
		attrs := append(append([]gbgp.PathAttributeInterface(nil), head...), tail...)
		var msg *gbgp.BGPMessage
		if fam == famIPv4 {
			msg = gbgp.NewBGPUpdateMessage(nil, append(attrs, lc...), nlri)
		} else {
			mp, err := gbgp.NewPathAttributeMpReachNLRI(gbgp.RF_IPv6_UC, nlri, sp.nextHop6)
			if err != nil {
				return nil, err
			}
			msg = gbgp.NewBGPUpdateMessage(nil, append(append(attrs, mp), lc...), nil)
		}
		b, err := serializeBody(msg)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// withdraw returns the UPDATE bodies withdrawing prefixes, all of family fam.
func withdraw(fam familySet, prefixes []netip.Prefix) ([][]byte, error) {
	budget := maxUpdateBody - updateLengthFields
	if fam == famIPv6 {
		budget -= mpUnreachOverhead
	}
	var out [][]byte
	for _, chunk := range chunkPrefixes(prefixes, budget) {
		nlri, err := pathNLRI(chunk)
		if err != nil {
			return nil, err
		}
		var msg *gbgp.BGPMessage
		if fam == famIPv4 {
			msg = gbgp.NewBGPUpdateMessage(nlri, nil, nil)
		} else {
			mp, err := gbgp.NewPathAttributeMpUnreachNLRI(gbgp.RF_IPv6_UC, nlri)
			if err != nil {
				return nil, err
			}
			msg = gbgp.NewBGPUpdateMessage(nil, []gbgp.PathAttributeInterface{mp}, nil)
		}
		b, err := serializeBody(msg)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func serializeBody(msg *gbgp.BGPMessage) ([]byte, error) {
	b, err := msg.Body.Serialize()
	if err != nil {
		return nil, err
	}
	if len(b) > maxUpdateBody {
		return nil, fmt.Errorf("UPDATE of %d bytes exceeds %d", len(b), maxUpdateBody)
	}
	return b, nil
}

// nlriLen is a prefix's wire size: a length byte and the significant octets.
func nlriLen(p netip.Prefix) int { return 1 + (p.Bits()+7)/8 }

// chunkPrefixes splits prefixes into runs whose encoding fits budget bytes.
func chunkPrefixes(prefixes []netip.Prefix, budget int) [][]netip.Prefix {
	var out [][]netip.Prefix
	start, used := 0, 0
	for i, p := range prefixes {
		n := nlriLen(p)
		if used+n > budget && i > start {
			out = append(out, prefixes[start:i])
			start, used = i, 0
		}
		used += n
	}
	if start < len(prefixes) {
		out = append(out, prefixes[start:])
	}
	return out
}

func pathNLRI(prefixes []netip.Prefix) ([]gbgp.PathNLRI, error) {
	out := make([]gbgp.PathNLRI, len(prefixes))
	for i, p := range prefixes {
		n, err := gbgp.NewIPAddrPrefix(p)
		if err != nil {
			return nil, err
		}
		out[i] = gbgp.PathNLRI{NLRI: n}
	}
	return out, nil
}
