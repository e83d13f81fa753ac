package dnsserver

import (
	"encoding/binary"
	"slices"

	"github.com/miekg/dns"
)

// A pre-packed answer is a response packed at build time by the same
// resolve code the slow path runs, for a query without EDNS whose name is
// the node's own. It is kept in the zone's arena as:
//
//	flags(2) ANCOUNT(2) NSCOUNT(2) ARCOUNT(2) nrelocs(2) relocs(2×n) tail
//
// where tail is everything after the question. At query time the header is
// written from the query, the question is copied from the query (so its
// case is kept) and the tail appended. relocs, for wildcard nodes, are the
// tail offsets of compression pointers, shifted when the query name is
// longer than the wildcard's own.
const fastHdr = 10

// precompute packs the answers for every RRset at every name that answers
// plainly (not below a cut, not a CNAME or DNAME owner), so those queries
// never reach the slow path.
func (z *Zone) precompute() {
	bp := buildBuffers.Get().(*[]byte)
	defer buildBuffers.Put(bp)
	scratch := (*bp)[:0]
	z.growForAddresses()
	var q query
	for ni := range z.nodes {
		n := &z.nodes[ni]
		if !n.plain {
			continue
		}
		name := ""
		for si := range n.sets {
			s := &n.sets[si]
			if s.t == dns.TypeRRSIG || s.n == 0 {
				continue
			}
			if (s.t == dns.TypeA || s.t == dns.TypeAAAA) && !isWildcard(n.key) {
				z.packAddresses(s)
				continue
			}
			if name == "" {
				name = n.name()
			}
			r := z.resolve(n.key, name, s.t, false)
			canonicalQuery(&q, n.key, s.t)
			wire := packResponse(scratch[:0], &q, r, maxMsg, "", 0)
			var relocs []uint16
			if isWildcard(n.key) {
				an := int(binary.BigEndian.Uint16(wire[6:]))
				ns := int(binary.BigEndian.Uint16(wire[8:]))
				ar := int(binary.BigEndian.Uint16(wire[10:]))
				ptrs, ok := pointerOffsets(wire, q.qend, an+ns+ar)
				if !ok {
					continue
				}
				relocs = ptrs
			}
			tail := wire[q.qend:]
			size := fastHdr + 2*len(relocs) + len(tail)
			if size > 0xFFFF {
				continue // too large to pre-pack; the slow path answers
			}
			off := len(z.arena)
			z.arena = append(z.arena, wire[2:4]...)
			z.arena = append(z.arena, wire[6:12]...)
			z.arena = binary.BigEndian.AppendUint16(z.arena, uint16(len(relocs)))
			for _, p := range relocs {
				z.arena = binary.BigEndian.AppendUint16(z.arena, p-uint16(q.qend))
			}
			z.arena = append(z.arena, tail...)
			s.fast, s.fastLen = uint32(off), uint16(size)
		}
	}
	z.tmpl = z.buildNegBlock()
	if z.signed && z.denialsPackable() {
		z.neg = z.buildSignedNeg()
	}
}

// growForAddresses grows the arena once for every pre-packed address
// answer, which is most of what precompute adds: grown by append, a large
// zone's arena would be copied several times over, each copy briefly
// alive next to the last.
func (z *Zone) growForAddresses() {
	extra := 0
	for ni := range z.nodes {
		n := &z.nodes[ni]
		if !n.plain || isWildcard(n.key) {
			continue
		}
		for si := range n.sets {
			s := &n.sets[si]
			if s.t != dns.TypeA && s.t != dns.TypeAAAA {
				continue
			}
			extra += fastHdr
			off := int(s.off)
			for i := 0; i < int(s.n); i++ {
				rdlen := int(binary.BigEndian.Uint16(z.arena[off+4:]))
				extra += 12 + rdlen
				off += 6 + rdlen
			}
		}
	}
	z.arena = slices.Grow(z.arena, extra+extra/16)
}

// packAddresses pre-packs an A or AAAA answer straight from the arena:
// each record behind a pointer to the question name, nothing else — which
// is what resolve and packResponse produce for it, at a fraction of the
// cost (most of a large zone is addresses).
func (z *Zone) packAddresses(s *rrset) {
	size := fastHdr
	off := int(s.off)
	for i := 0; i < int(s.n); i++ {
		rdlen := int(binary.BigEndian.Uint16(z.arena[off+4:]))
		size += 12 + rdlen
		off += 6 + rdlen
	}
	if size > 0xFFFF {
		return
	}
	start := len(z.arena)
	z.arena = binary.BigEndian.AppendUint16(z.arena, flagQR|flagAA)
	z.arena = binary.BigEndian.AppendUint16(z.arena, s.n)
	z.arena = append(z.arena, 0, 0, 0, 0, 0, 0) // NS, AR, relocs
	off = int(s.off)
	for i := 0; i < int(s.n); i++ {
		rdlen := int(binary.BigEndian.Uint16(z.arena[off+4:]))
		z.arena = append(z.arena, 0xC0, 12)
		z.arena = binary.BigEndian.AppendUint16(z.arena, s.t)
		z.arena = binary.BigEndian.AppendUint16(z.arena, dns.ClassINET)
		z.arena = append(z.arena, z.arena[off:off+6+rdlen]...)
		off += 6 + rdlen
	}
	s.fast, s.fastLen = uint32(start), uint16(size)
}

// canonicalQuery makes q a plain IN query for a wire name.
func canonicalQuery(q *query, key string, t uint16) {
	*q = query{}
	msg := make([]byte, 12, 12+len(key)+4)
	msg = append(msg, key...)
	msg = binary.BigEndian.AppendUint16(msg, t)
	msg = binary.BigEndian.AppendUint16(msg, dns.ClassINET)
	q.msg = msg
	q.qend = len(msg)
	q.keyLen = copy(q.key[:], key)
	q.qtype = t
	q.qclass = dns.ClassINET
}
