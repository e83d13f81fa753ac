package dnsserver

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// fastAnswer is a response packed at build time by the same resolve code
// the slow path runs, for a query without EDNS whose name is the node's
// own. At query time only the ID, two flag bits and the question's case
// are patched in (and the OPT record appended).
type fastAnswer struct {
	qtype uint16
	wire  []byte
	// relocs, for wildcard nodes, are the offsets of compression pointers
	// behind the question, shifted when the question name is longer.
	relocs []uint16
}

// negTemplate is the SOA record of negative answers with its owner and
// in-zone names left as pointers to the apex inside the question name,
// which is where the apex sits in every question for this zone.
type negTemplate struct {
	soa  []byte   // TYPE..RDATA, after the owner pointer
	ptrs []uint16 // offsets in soa of pointers to the apex
}

// precompute packs the answers for every RRset at every name that answers
// plainly (not below a cut, not a CNAME or DNAME owner), so those queries
// never reach the slow path.
func (z *Zone) precompute() {
	var scratch [maxMsg]byte
	var q query
	for _, n := range z.nodes {
		if n.cut != nil || n.dname != nil || n.set(dns.TypeCNAME) != nil {
			continue
		}
		n.fast = make([]fastAnswer, 0, len(n.sets))
		for _, s := range n.sets {
			if s.t == dns.TypeRRSIG {
				continue
			}
			r := z.resolve(n.key, n.name, s.t, false)
			canonicalQuery(&q, n.key, s.t)
			wire := packResponse(scratch[:0], &q, r, maxMsg, "", 0)
			fa := fastAnswer{qtype: s.t, wire: append([]byte(nil), wire...)}
			if isWildcard(n.key) {
				an := int(binary.BigEndian.Uint16(wire[6:]))
				ns := int(binary.BigEndian.Uint16(wire[8:]))
				ar := int(binary.BigEndian.Uint16(wire[10:]))
				ptrs, ok := pointerOffsets(wire, q.qend, an+ns+ar)
				if !ok {
					continue
				}
				fa.relocs = ptrs
			}
			n.fast = append(n.fast, fa)
		}
	}
	z.tmpl = z.buildNegTemplate()
}

// plainNegative reports whether a NODATA answer at n is just the SOA
// (true for names that are not below a cut and own no CNAME or DNAME).
func (n *node) plainNegative() bool { return n.fast != nil }

func (n *node) fastFor(t uint16) *fastAnswer {
	for i := range n.fast {
		if n.fast[i].qtype == t {
			return &n.fast[i]
		}
	}
	return nil
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

func (z *Zone) buildNegTemplate() negTemplate {
	var t negTemplate
	soa := z.negSOA
	b := make([]byte, 0, 64)
	b = binary.BigEndian.AppendUint16(b, dns.TypeSOA)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, soa.Hdr.Ttl)
	b = append(b, 0, 0) // rdlength, filled below
	rd := len(b)
	for _, name := range []string{soa.Ns, soa.Mbox} {
		w := mustWire(name)
		switch {
		case w == z.apex:
			t.ptrs = append(t.ptrs, uint16(len(b)))
			b = append(b, 0xC0, 0)
		case isBelow(w, z.apex):
			b = append(b, w[:len(w)-len(z.apex)]...)
			t.ptrs = append(t.ptrs, uint16(len(b)))
			b = append(b, 0xC0, 0)
		default:
			b = append(b, w...)
		}
	}
	for _, v := range []uint32{soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minttl} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	binary.BigEndian.PutUint16(b[rd-2:], uint16(len(b)-rd))
	t.soa = b
	return t
}
