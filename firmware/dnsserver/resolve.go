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
		z.answerNode(r, n, nil, qname, qtype, do, depth)
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
		z.answerNode(r, w, ce, qname, qtype, do, depth)
		return
	}
	// Name error (RFC 6604: also at the end of a CNAME chain).
	r.rcode = dns.RcodeNameError
	z.addNegSOA(r, do)
	if do {
		z.denyName(r, ce, key, qname)
	}
}

// dnameAbove reports whether a DNAME owner sits above a delegation cut, in
// which case the DNAME is met first on the way down.
func (z *Zone) dnameAbove(dn, cut *node) bool {
	return dn != nil && cut != nil && dn.labels < cut.labels
}

// answerNode answers from an existing node, or from a wildcard node w
// matched for qname below closest encloser ce (ce is nil for exact
// matches).
func (z *Zone) answerNode(r *response, n, ce *node, qname string, qtype uint16, do bool, depth int) {
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
			z.proveWildcardAnswer(r, ce, qname)
		}
		return
	}
	if s := n.set(qtype); s != nil && s.n > 0 && qtype != dns.TypeRRSIG {
		rrs := z.addSet(r, &r.answer, s, owner, do)
		z.additional(r, rrs, do)
		if wild && do {
			z.proveWildcardAnswer(r, ce, qname)
		}
		return
	}
	if cn := n.set(dns.TypeCNAME); cn != nil && cn.n > 0 {
		rrs := z.addSet(r, &r.answer, cn, owner, do)
		if wild && do {
			z.proveWildcardAnswer(r, ce, qname)
		}
		target := strings.ToLower(rrs[0].(*dns.CNAME).Target)
		z.chase(r, target, qtype, do, depth)
		return
	}
	// NODATA.
	z.addNegSOA(r, do)
	if do {
		if wild {
			z.proveWildcardNoData(r, n, ce, qname)
		} else {
			z.proveNoData(r, n)
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
			z.proveNoDS(r, cut)
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

// addNSEC adds an NSEC node's record and signatures, once.
func (z *Zone) addNSEC(r *response, n *node) {
	if n == nil {
		return
	}
	s := n.set(dns.TypeNSEC)
	name := n.name()
	if s == nil || containsSet(r.ns, name, dns.TypeNSEC) {
		return
	}
	z.addSet(r, &r.ns, s, name, true)
}

// addNSEC3 adds an NSEC3 record and signatures, once.
func (z *Zone) addNSEC3(r *response, e *nsec3Entry) {
	if e == nil {
		return
	}
	for _, rr := range r.ns {
		if rr == dns.RR(e.rr) {
			return
		}
	}
	r.ns = append(r.ns, e.rr)
	r.ns = append(r.ns, e.sigs...)
}

// coveringNSEC returns the NSEC node whose interval holds key.
func (z *Zone) coveringNSEC(key string) *node { return z.node(coveringNSEC(z, key)) }

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

// nextCloser returns the name one label longer than ce on the way to
// qname (both presentation, lower case).
func nextCloser(qname, ce string) string {
	prefix := strings.TrimSuffix(qname, ce)
	if ce == "." {
		prefix = strings.TrimSuffix(qname, ".")
	}
	prefix = strings.TrimSuffix(prefix, ".")
	labels := dns.SplitDomainName(prefix)
	if len(labels) == 0 {
		return qname
	}
	last := labels[len(labels)-1]
	if ce == "." {
		return last + "."
	}
	return last + "." + ce
}

// denyName proves that qname does not exist and that no wildcard at its
// closest encloser ce could have matched.
func (z *Zone) denyName(r *response, ce *node, key, qname string) {
	if c := z.nsec3; c != nil {
		cen := ce.name()
		z.addNSEC3(r, c.match(cen))
		z.addNSEC3(r, c.cover(nextCloser(qname, cen)))
		z.addNSEC3(r, c.cover("*."+cen))
		return
	}
	z.addNSEC(r, z.coveringNSEC(key))
	z.addNSEC(r, z.coveringNSEC(wildcardOf(ce.key)))
}

// proveNoData proves that node n has no RRset of the asked type.
func (z *Zone) proveNoData(r *response, n *node) {
	if c := z.nsec3; c != nil {
		if e := c.match(n.name()); e != nil {
			z.addNSEC3(r, e)
			return
		}
		// An opt-out span may hold the name (RFC 5155 §7.2.4).
		z.closestProvable(r, n.name())
		return
	}
	if n.set(dns.TypeNSEC) != nil {
		z.addNSEC(r, n)
		return
	}
	// An empty non-terminal has no NSEC; the one covering it proves it.
	z.addNSEC(r, z.coveringNSEC(n.key))
}

// proveNoDS proves an insecure delegation has no DS.
func (z *Zone) proveNoDS(r *response, cut *node) {
	if c := z.nsec3; c != nil {
		if e := c.match(cut.name()); e != nil {
			z.addNSEC3(r, e)
			return
		}
		z.closestProvable(r, cut.name())
		return
	}
	z.addNSEC(r, cut)
}

// closestProvable adds the NSEC3 closest provable encloser proof for name:
// the match for its closest ancestor with an NSEC3 and the record covering
// the next closer name.
func (z *Zone) closestProvable(r *response, name string) {
	c := z.nsec3
	next := name
	for cur := name; ; {
		parent := "."
		if _, rest, ok := strings.Cut(cur, "."); ok && rest != "" {
			parent = rest
		}
		if e := c.match(parent); e != nil {
			z.addNSEC3(r, e)
			z.addNSEC3(r, c.cover(next))
			return
		}
		if parent == z.origin || parent == "." {
			return
		}
		next, cur = parent, parent
	}
}

// proveWildcardAnswer proves that qname itself does not exist, so the
// wildcard expansion was right (RFC 4035 §3.1.3.3, RFC 5155 §7.2.6).
func (z *Zone) proveWildcardAnswer(r *response, ce *node, qname string) {
	if c := z.nsec3; c != nil {
		z.addNSEC3(r, c.cover(nextCloser(qname, ce.name())))
		return
	}
	if k, err := wireName(qname); err == nil {
		z.addNSEC(r, z.coveringNSEC(k))
	}
}

// proveWildcardNoData proves the wildcard matched but lacks the type
// (RFC 4035 §3.1.3.4, RFC 5155 §7.2.5).
func (z *Zone) proveWildcardNoData(r *response, w, ce *node, qname string) {
	if c := z.nsec3; c != nil {
		cen := ce.name()
		z.addNSEC3(r, c.match(cen))
		z.addNSEC3(r, c.cover(nextCloser(qname, cen)))
		z.addNSEC3(r, c.match(w.name()))
		return
	}
	if k, err := wireName(qname); err == nil {
		z.addNSEC(r, z.coveringNSEC(k))
	}
	z.addNSEC(r, w)
}
