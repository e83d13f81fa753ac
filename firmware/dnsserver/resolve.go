package dnsserver

import (
	"strings"

	"github.com/miekg/dns"
)

// response is the outcome of resolving one question in one zone, before
// it is packed. The slow path packs it per query; precompute.go packs it
// once at build time.
type response struct {
	rcode  int
	aa     bool
	answer []dns.RR
	ns     []dns.RR
	extra  []dns.RR
	// For RRL (rrl.go): the wildcard that answered and the delegation a
	// referral came from, as wire names.
	wild, cut string
}

// maxChain bounds CNAME/DNAME chasing inside a zone (loops included).
const maxChain = 8

// resolve answers qname/qtype from this zone: RFC 1034 §4.3.2 step 3, with
// RFC 4592 wildcards, RFC 6672 DNAME and, when do is set, the RFC 4035 and
// RFC 5155 signatures and denial-of-existence proofs. key is qname in
// lower-case wire form; qname is presentation form, lower case.
func (z *Zone) resolve(key, qname string, qtype uint16, do bool) *response {
	r := &response{aa: true}
	z.lookup(r, key, qname, qtype, do, 0)
	return r
}

func (z *Zone) lookup(r *response, key, qname string, qtype uint16, do bool, depth int) {
	if n := z.lookupNode(key); n != nil {
		cut, dn := z.node(n.cut), z.node(n.dname)
		if cut != nil && !(cut == n && qtype == dns.TypeDS) && !z.dnameAbove(dn, cut) {
			z.referral(r, cut, do, depth)
			return
		}
		if dn != nil {
			z.synthDNAME(r, dn, key, qname, qtype, do, depth)
			return
		}
		z.answerNode(r, n, nil, key, qname, qtype, do, depth)
		return
	}
	// No such name: find the closest encloser.
	ce := z.apexN
	for p := parentName(key); p != z.apex; p = parentName(p) {
		if n := z.lookupNode(p); n != nil {
			ce = n
			break
		}
	}
	dn := z.node(ce.dname)
	if dn == nil && ce.set(dns.TypeDNAME) != nil {
		dn = ce
	}
	if cut := z.node(ce.cut); cut != nil && !z.dnameAbove(dn, cut) {
		z.referral(r, cut, do, depth)
		return
	}
	if dn != nil {
		z.synthDNAME(r, dn, key, qname, qtype, do, depth)
		return
	}
	if ce.wild {
		w := z.lookupNode(wildcardOf(ce.key))
		z.answerNode(r, w, ce, key, qname, qtype, do, depth)
		return
	}
	// Name error (RFC 6604: also at the end of a CNAME chain).
	r.rcode = dns.RcodeNameError
	z.addNegSOA(r, do)
	if do {
		z.addProof(r, denyNameProof(z, ce, wireBytes(key)))
	}
}

// dnameAbove reports whether a DNAME owner sits above a delegation cut, in
// which case the DNAME is met first on the way down.
func (z *Zone) dnameAbove(dn, cut *node) bool {
	return dn != nil && cut != nil && dn.labels < cut.labels
}

// answerNode answers from an existing node, or from a wildcard node w
// matched for qname (key) below closest encloser ce (ce is nil for exact
// matches).
func (z *Zone) answerNode(r *response, n, ce *node, key, qname string, qtype uint16, do bool, depth int) {
	wild := ce != nil
	owner := n.name()
	if wild {
		owner = qname
		if r.wild == "" {
			r.wild = n.key
		}
	}
	if qtype == dns.TypeANY && len(n.sets) > 0 {
		// RFC 8482: a minimal answer, one RRset, rather than everything.
		s := &n.sets[0]
		for i := range n.sets {
			if c := &n.sets[i]; c.n > 0 && c.t != dns.TypeNSEC {
				s = c
				break
			}
		}
		z.addSet(r, &r.answer, s, owner, do)
		if wild && do {
			z.addProof(r, wildAnswerProof(z, ce, wireBytes(key)))
		}
		return
	}
	if s := n.set(qtype); s != nil && s.n > 0 && qtype != dns.TypeRRSIG {
		rrs := z.addSet(r, &r.answer, s, owner, do)
		z.additional(r, rrs, do)
		if wild && do {
			z.addProof(r, wildAnswerProof(z, ce, wireBytes(key)))
		}
		return
	}
	if cn := n.set(dns.TypeCNAME); cn != nil && cn.n > 0 {
		rrs := z.addSet(r, &r.answer, cn, owner, do)
		if wild && do {
			z.addProof(r, wildAnswerProof(z, ce, wireBytes(key)))
		}
		target := strings.ToLower(rrs[0].(*dns.CNAME).Target)
		z.chase(r, target, qtype, do, depth)
		return
	}
	// NODATA.
	z.addNegSOA(r, do)
	if do {
		ni, _ := z.find(n.key)
		if wild {
			z.addProof(r, wildNoDataProof(z, ni, ce, wireBytes(key)))
		} else {
			z.addProof(r, noDataProof(z, ni))
		}
	}
}

// chase follows a CNAME (or synthesized CNAME) target inside this zone.
func (z *Zone) chase(r *response, target string, qtype uint16, do bool, depth int) {
	if depth+1 >= maxChain {
		return
	}
	tk, err := wireName(target)
	if err != nil || (tk != z.apex && !isBelow(tk, z.apex)) {
		return // out of zone: the resolver follows it
	}
	for _, rr := range r.answer {
		if rr.Header().Rrtype == dns.TypeCNAME && strings.EqualFold(rr.Header().Name, target) {
			return // loop
		}
	}
	z.lookup(r, tk, target, qtype, do, depth+1)
}

// synthDNAME answers a name below a DNAME owner (RFC 6672 §3).
func (z *Zone) synthDNAME(r *response, dn *node, key, qname string, qtype uint16, do bool, depth int) {
	dname := dn.name()
	d := z.addSet(r, &r.answer, dn.set(dns.TypeDNAME), dname, do)[0].(*dns.DNAME)
	prefix := qname[:len(qname)-len(dname)]
	if dname == "." {
		prefix = qname
	}
	target := prefix + strings.ToLower(d.Target)
	if d.Target == "." {
		target = prefix
	}
	if _, ok := dns.IsDomainName(target); !ok || len(target) > 254 {
		r.rcode = dns.RcodeYXDomain
		return
	}
	r.answer = append(r.answer, &dns.CNAME{
		Hdr:    dns.RR_Header{Name: qname, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl},
		Target: target,
	})
	z.chase(r, target, qtype, do, depth)
}

// referral answers with the delegation at cut: NS in authority, AA clear,
// glue in additional, and the DS (or proof of no DS) when do is set.
func (z *Zone) referral(r *response, cut *node, do bool, depth int) {
	if depth == 0 {
		r.aa = false
		r.cut = cut.key
	}
	name := cut.name()
	ns := z.addSet(r, &r.ns, cut.set(dns.TypeNS), name, false)
	if do {
		if ds := cut.set(dns.TypeDS); ds != nil && ds.n > 0 {
			z.addSet(r, &r.ns, ds, name, true)
		} else {
			cutIdx, _ := z.find(cut.key)
			z.addProof(r, noDSProof(z, cutIdx))
		}
	}
	z.additional(r, ns, do)
}

// additional adds addresses for the names NS, MX and SRV records point to,
// when this zone has them (glue below a cut, or authoritative data).
func (z *Zone) additional(r *response, rrs []dns.RR, do bool) {
	for _, rr := range rrs {
		var target string
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.MX:
			target = v.Mx
		case *dns.SRV:
			target = v.Target
		default:
			continue
		}
		tk, err := wireName(target)
		if err != nil {
			continue
		}
		n := z.lookupNode(tk)
		if n == nil {
			continue
		}
		glue := n.cut >= 0
		name := n.name()
		for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
			if s := n.set(t); s != nil && s.n > 0 {
				if containsSet(r.extra, name, t) {
					continue
				}
				z.addSet(r, &r.extra, s, name, do && !glue)
			}
		}
	}
}

func containsSet(rrs []dns.RR, name string, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t && rr.Header().Name == name {
			return true
		}
	}
	return false
}

// addSet appends an RRset (and, with do, its signatures) to a section
// under the given owner (the query name for a wildcard expansion) and
// returns the records it added.
func (z *Zone) addSet(r *response, sec *[]dns.RR, s *rrset, owner string, do bool) []dns.RR {
	rrs := z.records(s, owner, false)
	*sec = append(*sec, rrs...)
	if do && s.sigN > 0 {
		*sec = append(*sec, z.records(s, owner, true)...)
	}
	return rrs
}

// addNegSOA adds the SOA with the RFC 2308 negative TTL to the authority
// section, once.
func (z *Zone) addNegSOA(r *response, do bool) {
	for _, rr := range r.ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return
		}
	}
	r.ns = append(r.ns, z.negSOA)
	if do {
		r.ns = append(r.ns, z.negSigs...)
	}
}

// --- denial of existence (RFC 4035 §3.1.3, RFC 5155 §7.2) ---

// proof is the records that prove a denial or a wildcard expansion: NSEC
// owners (indexes in z.nodes) or, in a zone with an NSEC3 chain, NSEC3
// entries (indexes in its entries), in the order they go in the
// authority section, -1 for none; one already there is not added again.
// Both paths choose them here (the fast path with the name asked as
// bytes), so both carry the same records.
type proof struct {
	nsec3 bool
	at    [3]int32
}

// addProof adds a proof's records and their signatures, each once.
func (z *Zone) addProof(r *response, pf proof) {
	for _, i := range pf.at {
		switch {
		case i < 0:
		case pf.nsec3:
			e := &z.nsec3.entries[i]
			s := e.set()
			z.addOnce(r, &s, z.nsec3.ownerName(e, z.apex))
		default:
			n := &z.nodes[i]
			if s := n.set(dns.TypeNSEC); s != nil {
				z.addOnce(r, s, n.name())
			}
		}
	}
}

// addOnce adds an NSEC or NSEC3 RRset and its signatures to the
// authority section unless they are there already.
func (z *Zone) addOnce(r *response, s *rrset, name string) {
	if !containsSet(r.ns, name, s.t) {
		z.addSet(r, &r.ns, s, name, true)
	}
}

// coveringNSEC returns the index in z.nodes of the NSEC node whose
// interval holds key (a string, or the query's bytes on the fast path),
// or -1 when the zone has no NSEC chain: the last owner not after key in
// canonical order, or the last of all when key sorts before the apex.
// key is the apex or below it, as every owner is: only the labels above
// the apex are compared.
func coveringNSEC[T ~string | ~[]byte](z *Zone, key T) int32 {
	if len(z.nsec) == 0 {
		return -1
	}
	al := len(z.apex)
	key = key[:len(key)-al]
	var ko [maxLabels + 1]uint16
	kl := ko[:labelOffsets(key, &ko)]
	lo, hi := 0, len(z.nsec) // the first owner after key is in [lo, hi]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		owner := z.nodes[z.nsec[m]].key
		if canonicalCompareTo(owner[:len(owner)-al], key, kl) > 0 {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo == 0 {
		lo = len(z.nsec) // wraps around: the last record covers the start
	}
	return z.nsec[lo-1]
}

// denyNameProof proves that key does not exist and that no wildcard at
// its closest encloser ce could have matched it (RFC 4035 §3.1.3.2, RFC
// 5155 §7.2.2).
func denyNameProof(z *Zone, ce *node, key []byte) proof {
	// The wildcard (ce is a proper suffix of a name of at most 255
	// bytes: "*." and it fit).
	var wk [256]byte
	w := wk[:copy(wk[:], "\x01*")]
	w = w[:len(w)+copy(wk[len(w):], ce.key)]
	if c := z.nsec3; c != nil {
		return proof{true, [3]int32{c.match(wireBytes(ce.key)), c.cover(nextCloser(key, len(ce.key))), c.cover(w)}}
	}
	return proof{false, [3]int32{coveringNSEC(z, key), coveringNSEC(z, w), -1}}
}

// noDataProof proves that node ni has no RRset of the type asked (RFC
// 4035 §3.1.3.1, RFC 5155 §7.2.3).
func noDataProof(z *Zone, ni int32) proof {
	n := &z.nodes[ni]
	if z.nsec3 != nil {
		return nsec3NoDataProof(z, n)
	}
	if n.set(dns.TypeNSEC) != nil {
		return proof{false, [3]int32{ni, -1, -1}}
	}
	// An empty non-terminal has no NSEC; the one covering it proves it.
	return proof{false, [3]int32{coveringNSEC(z, n.key), -1, -1}}
}

// noDSProof proves that the delegation at node ni has no DS (RFC 4035
// §3.1.4.1, RFC 5155 §7.2.7).
func noDSProof(z *Zone, ni int32) proof {
	if z.nsec3 != nil {
		return nsec3NoDataProof(z, &z.nodes[ni])
	}
	return proof{false, [3]int32{ni, -1, -1}} // its NSEC, if it has one
}

// nsec3NoDataProof is the NSEC3 proof that node n has no RRset of a type:
// its NSEC3, or when it has none, as in an opt-out span, the closest
// provable encloser proof (RFC 5155 §7.2.4).
func nsec3NoDataProof(z *Zone, n *node) proof {
	c := z.nsec3
	if m := c.match(wireBytes(n.key)); m >= 0 {
		return proof{true, [3]int32{m, -1, -1}}
	}
	m, cv := c.closestProvable(n.key, z.apex)
	return proof{true, [3]int32{m, cv, -1}}
}

// wildAnswerProof proves that key, which the wildcard at its closest
// encloser ce answered, does not exist, so the expansion was right (RFC
// 4035 §3.1.3.3, RFC 5155 §7.2.6).
func wildAnswerProof(z *Zone, ce *node, key []byte) proof {
	if c := z.nsec3; c != nil {
		return proof{true, [3]int32{c.cover(nextCloser(key, len(ce.key))), -1, -1}}
	}
	return proof{false, [3]int32{coveringNSEC(z, key), -1, -1}}
}

// wildNoDataProof proves that the wildcard wi at key's closest encloser
// ce matched but lacks the type asked (RFC 4035 §3.1.3.4, RFC 5155
// §7.2.5).
func wildNoDataProof(z *Zone, wi int32, ce *node, key []byte) proof {
	if c := z.nsec3; c != nil {
		return proof{true, [3]int32{c.match(wireBytes(ce.key)), c.cover(nextCloser(key, len(ce.key))), c.match(wireBytes(z.nodes[wi].key))}}
	}
	return proof{false, [3]int32{coveringNSEC(z, key), wi, -1}}
}
