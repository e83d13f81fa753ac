package dnsserver

import (
	"encoding/binary"
	"net/netip"

	"github.com/miekg/dns"
)

// query is a parsed question, pointing into the received bytes. Parsing
// allocates nothing: the lower-cased name is copied into key. The two
// arrays sit outside queryFields so that parsing the next query clears
// only the fields (a few dozen bytes, not 300): keyLen and outCookieN say
// how much of each is valid.
type query struct {
	queryFields
	key       [256]byte // lower-case wire qname, keyLen bytes
	outCookie [24]byte  // the COOKIE option data the reply carries, outCookieN bytes
}

type queryFields struct {
	msg     []byte
	id      uint16
	opcode  int
	rd, cd  bool
	qend    int // offset just after the question section
	keyLen  int
	qtype   uint16
	qclass  uint16
	edns    bool
	version uint8
	udpSize uint16
	do      bool
	nsid    bool
	formerr bool  // answer FORMERR (malformed but has an ID to answer to)
	zone    *Zone // the zone that answered, for the metrics (metrics.go)

	// The first COOKIE option (RFC 7873): where its data is in msg and
	// how long it is; cookieBad when its length is not one RFC 7873
	// §5.2.2 allows.
	cookieOff, cookieLen int
	cookieBad            bool

	// Set while answering (server.go, cookie.go, rrl.go).
	recv        int64      // when the query arrived (Unix ns), 0: unknown
	client      netip.Addr // the source address, unmapped
	cookieState uint8      // cookieNone, cookieClientOnly, ... (cookie.go)
	badCookie   bool       // the reply is BADCOOKIE
	outCookieN  int        // length of outCookie; 0: the reply carries none
	wild        string     // the wildcard that answered (wire), for RRL
	cut         string     // the delegation a referral came from (wire), for RRL
	rrlClass    uint8      // the RRL class the reply was counted in
	rrlAction   uint8      // rrlPass, rrlSlip or rrlDrop
}

func (q *query) keyString() string { return string(q.key[:q.keyLen]) }

// Header flag bits.
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4
)

// parseQuery parses msg into q. It returns false when the message must be
// dropped without a reply: too short to carry an ID, or itself a response
// (answering responses invites reflection loops).
func parseQuery(msg []byte, q *query) bool {
	q.queryFields = queryFields{msg: msg}
	if len(msg) < 12 {
		return false
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR != 0 {
		return false
	}
	q.id = binary.BigEndian.Uint16(msg)
	q.opcode = int(flags>>11) & 0xF
	q.rd = flags&flagRD != 0
	q.cd = flags&flagCD != 0
	qd := binary.BigEndian.Uint16(msg[4:])
	an := binary.BigEndian.Uint16(msg[6:])
	ns := binary.BigEndian.Uint16(msg[8:])
	ar := binary.BigEndian.Uint16(msg[10:])
	if q.opcode != dns.OpcodeQuery {
		// Other opcodes are answered by the slow path; their question is
		// still parsed when present so the reply can echo it.
		if qd == 0 {
			q.qend = 12
			return true
		}
	}
	if qd != 1 || an != 0 {
		q.formerr = true
		q.qend = 12
		return true
	}
	off, ok := q.parseName(12)
	if !ok || off+4 > len(msg) {
		q.formerr = true
		q.qend = 12
		return true
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.qend = off + 4
	off = q.qend
	// Skip the authority section (empty in queries, but harmless), then
	// look for the OPT record among the additional records.
	for i := 0; i < int(ns)+int(ar); i++ {
		rrStart := off
		var isOPT bool
		if off < len(msg) && msg[off] == 0 {
			isOPT = true
			off++
		} else {
			var ok bool
			if off, ok = skipName(msg, off); !ok {
				q.formerr = true
				return true
			}
		}
		if off+10 > len(msg) {
			q.formerr = true
			return true
		}
		t := binary.BigEndian.Uint16(msg[off:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		if off+10+rdlen > len(msg) {
			q.formerr = true
			return true
		}
		if t == dns.TypeOPT && i >= int(ns) {
			if q.edns || !isOPT {
				// RFC 6891 §6.1.1: more than one OPT, or one not at the
				// root, is a format error.
				q.formerr = true
				return true
			}
			q.edns = true
			q.udpSize = binary.BigEndian.Uint16(msg[off+2:])
			q.version = msg[off+5]
			q.do = msg[off+6]&0x80 != 0
			q.parseOptions(msg[off+10:off+10+rdlen], off+10)
		}
		_ = rrStart
		off += 10 + rdlen
	}
	return true
}

// parseName copies the question name, lower-cased, into q.key. Compression
// pointers are not followed: the question is the first name in a message
// and has nothing to point back to. The labels are checked first (only
// their length bytes are read), then the name is copied in one go and
// lower-cased eight bytes at a time: length bytes are below 64, so never
// mistaken for letters.
func (q *query) parseName(off int) (int, bool) {
	msg := q.msg
	// The root label must sit within 255 octets of the start (RFC 1035
	// §3.1) and inside the message.
	end := min(off+255, len(msg))
	p := off
	for p < end {
		l := int(msg[p])
		if l == 0 {
			n := p + 1 - off
			copy(q.key[:n], msg[off:p+1])
			q.keyLen = n
			k := &q.key
			for i := 0; i < n; i += 8 {
				binary.LittleEndian.PutUint64(k[i:], lower8(binary.LittleEndian.Uint64(k[i:])))
			}
			return p + 1, true
		}
		if l&0xC0 != 0 {
			return 0, false
		}
		p += 1 + l
	}
	return 0, false
}

// lower8 lower-cases the ASCII letters among eight bytes.
func lower8(x uint64) uint64 {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	h := x &^ high               // each byte's low 7 bits
	ge := h + ones*(0x80-'A')    // high bit: byte >= 'A'
	gt := h + ones*(0x80-'Z'-1)  // high bit: byte > 'Z'
	up := (ge &^ gt) &^ x & high // 'A'..'Z', and ASCII
	return x | up>>2
}

// skipName steps over a possibly compressed name.
func skipName(msg []byte, off int) (int, bool) {
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, true
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return 0, false
			}
			return off + 2, true
		case l&0xC0 != 0:
			return 0, false
		}
		off += 1 + l
	}
}

// parseOptions reads the EDNS options; base is the offset of b in msg.
func (q *query) parseOptions(b []byte, base int) {
	at := base
	for len(b) >= 4 {
		code := binary.BigEndian.Uint16(b)
		l := int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			q.formerr = true
			return
		}
		switch code {
		case dns.EDNS0NSID:
			q.nsid = true
		case dns.EDNS0COOKIE:
			// Only the first COOKIE option counts (RFC 7873 §5.2).
			if q.cookieLen == 0 && !q.cookieBad {
				if validCookieLen(l) {
					q.cookieOff, q.cookieLen = at+4, l
				} else {
					q.cookieBad = true
				}
			}
		}
		b = b[4+l:]
		at += 4 + l
	}
	if len(b) != 0 {
		q.formerr = true
	}
}

// header writes a response header for q into out[0:12].
func (q *query) header(out []byte, aa, tc bool, rcode int) {
	binary.BigEndian.PutUint16(out, q.id)
	f := uint16(flagQR) | uint16(q.opcode&0xF)<<11 | uint16(rcode&0xF)
	if aa {
		f |= flagAA
	}
	if tc {
		f |= flagTC
	}
	if q.rd {
		f |= flagRD
	}
	if q.cd {
		f |= flagCD
	}
	binary.BigEndian.PutUint16(out[2:], f)
}

// appendOPT appends our OPT record: our payload size, the extended RCODE
// bits, version 0, the DO bit echoed, NSID when asked for and set, and the
// COOKIE option when the reply carries one (cookie.go).
func appendOPT(out []byte, size uint16, rcode int, do bool, nsid string, cookie []byte) []byte {
	var ttl uint32 = uint32(rcode>>4) << 24
	if do {
		ttl |= 1 << 15
	}
	out = append(out, 0, 0, byte(dns.TypeOPT), byte(size>>8), byte(size))
	out = binary.BigEndian.AppendUint32(out, ttl)
	rdlen := 0
	if nsid != "" {
		rdlen += 4 + len(nsid)
	}
	if len(cookie) != 0 {
		rdlen += 4 + len(cookie)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(rdlen))
	if nsid != "" {
		out = binary.BigEndian.AppendUint16(out, dns.EDNS0NSID)
		out = binary.BigEndian.AppendUint16(out, uint16(len(nsid)))
		out = append(out, nsid...)
	}
	if len(cookie) != 0 {
		out = binary.BigEndian.AppendUint16(out, dns.EDNS0COOKIE)
		out = binary.BigEndian.AppendUint16(out, uint16(len(cookie)))
		out = append(out, cookie...)
	}
	return out
}

func optLen(q *query, nsid string) int {
	if !q.edns {
		return 0
	}
	n := 11
	if q.nsid && nsid != "" {
		n += 4 + len(nsid)
	}
	if q.outCookieN != 0 {
		n += 4 + q.outCookieN
	}
	return n
}

// cookieOut is the COOKIE option data the reply to q carries, or nil.
func (q *query) cookieOut() []byte {
	return q.outCookie[:q.outCookieN]
}

// compressibleRdata reports how names sit in the RDATA of types whose
// names RFC 1035 allows to be compressed (and miekg/dns compresses): the
// offset of the first name and the number of names.
func compressibleRdata(t uint16) (skip, names int) {
	switch t {
	case dns.TypeNS, dns.TypeMD, dns.TypeMF, dns.TypeCNAME, dns.TypeMB, dns.TypeMG, dns.TypeMR, dns.TypePTR:
		return 0, 1
	case dns.TypeMX:
		return 2, 1
	case dns.TypeSOA, dns.TypeMINFO:
		return 0, 2
	}
	return 0, 0
}

// pointerOffsets lists where the compression pointers are in the count
// records starting at off, so a packed answer can be moved to follow a
// question name of another length.
func pointerOffsets(msg []byte, off, count int) ([]uint16, bool) {
	var ptrs []uint16
	walk := func(off int) (int, bool) {
		for off < len(msg) {
			l := int(msg[off])
			switch {
			case l == 0:
				return off + 1, true
			case l&0xC0 == 0xC0:
				ptrs = append(ptrs, uint16(off))
				return off + 2, true
			}
			off += 1 + l
		}
		return 0, false
	}
	for i := 0; i < count; i++ {
		var ok bool
		if off, ok = walk(off); !ok || off+10 > len(msg) {
			return nil, false
		}
		t := binary.BigEndian.Uint16(msg[off:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		rd := off + 10
		skip, names := compressibleRdata(t)
		p := rd + skip
		for j := 0; j < names; j++ {
			if p, ok = walk(p); !ok {
				return nil, false
			}
		}
		off = rd + rdlen
	}
	return ptrs, true
}
