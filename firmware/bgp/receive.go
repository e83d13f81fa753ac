package bgp

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/jwhited/corebgp"
)

// received counts the distinct prefixes a peer currently announces to us,
// keeping no attributes. A counter alone would count every implicit
// replacement (a re-announcement with new attributes) again and drift up
// until max-prefix tripped on a healthy feed, so the prefixes themselves
// are kept, compactly: IPv4 and IPv6 up to /56 (nearly all of a full table)
// packed into a uint64 each in a prefixSet, only longer IPv6 prefixes as a
// netip.Prefix in a map. Owned by the session's FSM goroutine (corebgp
// calls the update handler from there).
type received struct {
	short prefixSet
	long  map[netip.Prefix]struct{}

	// Scratch space for one UPDATE: announcements are applied only after
	// the whole message decoded, because an attribute error found late
	// turns them into withdrawals (RFC 7606 treat-as-withdraw).
	announced []netip.Prefix
	// lastFamily is the family of the last prefix added, for the
	// max-prefix NOTIFICATION's AFI.
	lastFamily familySet
	decoder    *corebgp.UpdateDecoder[*received]
}

func newReceived() *received {
	r := &received{long: map[netip.Prefix]struct{}{}}
	r.decoder = corebgp.NewUpdateDecoder[*received](
		func(r *received, b []byte) error { return walkPrefixes(b, false, r.remove) },
		(*received).pathAttr,
		func(r *received, b []byte) error { return walkPrefixes(b, false, r.add) },
	)
	return r
}

func (r *received) count() int { return r.short.len() + len(r.long) }

// packPrefix packs p into a non-zero uint64 when it fits: IPv4 as
// address<<8 | (128+bits), IPv6 up to /56 as its top 56 bits | (bits+1).
// The low byte tells the two apart (IPv6 1..57, IPv4 128..160).
func packPrefix(p netip.Prefix) (uint64, bool) {
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return uint64(binary.BigEndian.Uint32(a[:]))<<8 | uint64(128+p.Bits()), true
	}
	if p.Bits() > 56 {
		return 0, false
	}
	a := p.Addr().As16()
	return binary.BigEndian.Uint64(a[:8])&^0xff | uint64(p.Bits()+1), true
}

func (r *received) add(p netip.Prefix) {
	r.announced = append(r.announced, p)
}

func (r *received) insert(p netip.Prefix) {
	r.lastFamily = familyOf(p)
	if k, ok := packPrefix(p); ok {
		r.short.add(k)
	} else {
		r.long[p] = struct{}{}
	}
}

func (r *received) remove(p netip.Prefix) {
	if k, ok := packPrefix(p); ok {
		r.short.remove(k)
	} else {
		delete(r.long, p)
	}
}

// pathAttr looks only at the multiprotocol attributes; everything else
// would be thrown away anyway.
func (r *received) pathAttr(code uint8, flags corebgp.PathAttrFlags, b []byte) error {
	switch code {
	case corebgp.PATH_ATTR_MP_REACH_NLRI:
		return corebgp.NewMPReachNLRIDecodeFn[*received](func(r *received, afi uint16, safi uint8, _, nlri []byte) error {
			if v6, ok := unicastAFI(afi, safi); ok {
				return mpErr(walkPrefixes(nlri, v6, r.add))
			}
			return nil
		})(r, flags, b)
	case corebgp.PATH_ATTR_MP_UNREACH_NLRI:
		return corebgp.NewMPUnreachNLRIDecodeFn[*received](func(r *received, afi uint16, safi uint8, wd []byte) error {
			if v6, ok := unicastAFI(afi, safi); ok {
				return mpErr(walkPrefixes(wd, v6, r.remove))
			}
			return nil
		})(r, flags, b)
	}
	return nil
}

func unicastAFI(afi uint16, safi uint8) (v6, ok bool) {
	if safi != corebgp.SAFI_UNICAST {
		return false, false
	}
	switch afi {
	case corebgp.AFI_IPV4:
		return false, true
	case corebgp.AFI_IPV6:
		return true, true
	}
	return false, false
}

// mpErr turns a malformed MP NLRI into a session reset: RFC 7606 section 5.3
// allows nothing milder when the NLRI cannot be parsed.
func mpErr(err error) error {
	if err == nil {
		return nil
	}
	return &corebgp.Notification{Code: corebgp.NOTIF_CODE_UPDATE_MESSAGE_ERR, Subcode: corebgp.NOTIF_SUBCODE_OPTIONAL_ATTR_ERR}
}

func badPrefix() error {
	return &corebgp.Notification{Code: corebgp.NOTIF_CODE_UPDATE_MESSAGE_ERR, Subcode: corebgp.NOTIF_SUBCODE_INVALID_NETWORK_FIELD}
}

// walkPrefixes calls fn for each prefix in an NLRI or withdrawn-routes field
// without building a slice, since a full table arrives as many of them.
func walkPrefixes(b []byte, v6 bool, fn func(netip.Prefix)) error {
	maxBits := 32
	if v6 {
		maxBits = 128
	}
	for len(b) > 0 {
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > maxBits || len(b) < 1+n {
			return badPrefix()
		}
		var a [16]byte
		copy(a[:], b[1:1+n])
		var addr netip.Addr
		if v6 {
			addr = netip.AddrFrom16(a)
		} else {
			addr = netip.AddrFrom4([4]byte(a[:4]))
		}
		fn(netip.PrefixFrom(addr, bits).Masked())
		b = b[1+n:]
	}
	return nil
}

// update applies one UPDATE body. It returns a NOTIFICATION when the message
// is too broken to apply (RFC 7606 session reset) and nil otherwise.
func (r *received) update(body []byte) *corebgp.Notification {
	r.announced = r.announced[:0]
	err := r.decoder.Decode(r, body)
	var n *corebgp.Notification
	if errors.As(err, &n) {
		return n
	}
	var taw *corebgp.TreatAsWithdrawUpdateErr
	withdrawAll := errors.As(err, &taw)
	for _, p := range r.announced {
		if withdrawAll {
			r.remove(p)
		} else {
			r.insert(p)
		}
	}
	r.announced = r.announced[:0]
	return nil
}
