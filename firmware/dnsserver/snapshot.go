package dnsserver

import (
	"encoding/base32"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Zone is the immutable, indexed form of one zone that queries are answered
// from. It is built once per zone version by Build and never changed after;
// a new version is a new Zone swapped in by the Server.
type Zone struct {
	origin  string // presentation, lower case
	apex    string // wire, lower case
	labels  int    // labels of the apex
	serial  uint32
	nodes   map[string]*node // by wire name; includes empty non-terminals
	apexN   *node
	soa     *dns.SOA
	negSOA  *dns.SOA // the SOA as it goes in negative answers (RFC 2308 TTL)
	signed  bool
	nsec    []*node // nodes owning an NSEC record, in canonical order
	nsec3   *nsec3Chain
	records int
	// tmpl holds pre-packed pieces of negative answers (precompute.go).
	tmpl negTemplate
}

// node is one owner name of the zone, or an empty non-terminal.
type node struct {
	key    string // wire, lower case
	name   string // presentation, lower case
	labels int
	sets   []*rrset // sorted by type
	// cut is the topmost delegation point at or above this node (nil when
	// the node is authoritative data). A referral always comes from there.
	cut *node
	// dname is the topmost proper ancestor owning a DNAME, if any.
	dname *node
	// hasWildcardChild: a "*" label exists directly below this node.
	hasWildcardChild bool
	// fast holds packed answers for the questions precompute.go prepared.
	fast []fastAnswer
}

// rrset is the records of one type at one owner, with their signatures.
type rrset struct {
	t    uint16
	rrs  []dns.RR
	sigs []dns.RR
}

func (n *node) set(t uint16) *rrset {
	for _, s := range n.sets {
		if s.t == t {
			return s
		}
	}
	return nil
}

func (n *node) isDelegation(z *Zone) bool { return n != z.apexN && n.set(dns.TypeNS) != nil }

// Origin returns the zone's origin in presentation form.
func (z *Zone) Origin() string { return z.origin }

// Serial returns the SOA serial the snapshot was built from.
func (z *Zone) Serial() uint32 { return z.serial }

// Records returns how many records the snapshot holds.
func (z *Zone) Records() int { return z.records }

// Build indexes a validated zone for answering. The zone's records are
// shared with the snapshot, not copied, and must not be modified afterwards.
func Build(zn *zone.Zone) (*Zone, error) {
	origin := zone.Canonical(zn.Origin)
	apex, err := wireName(origin)
	if err != nil {
		return nil, fmt.Errorf("zone %s: bad origin: %w", origin, err)
	}
	z := &Zone{
		origin:  origin,
		apex:    apex,
		labels:  labelCount(apex),
		nodes:   make(map[string]*node, len(zn.Records)/2+1),
		records: len(zn.Records),
	}
	var sigs []*dns.RRSIG
	var nsec3s []*dns.NSEC3
	for _, rr := range zn.Records {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		switch r := rr.(type) {
		case *dns.RRSIG:
			sigs = append(sigs, r)
			continue
		case *dns.NSEC3:
			nsec3s = append(nsec3s, r)
			continue
		}
		n, err := z.nodeFor(h.Name)
		if err != nil {
			return nil, err
		}
		s := n.set(h.Rrtype)
		if s == nil {
			s = &rrset{t: h.Rrtype}
			n.sets = append(n.sets, s)
		}
		h.Name = n.name // share one string per owner
		s.rrs = append(s.rrs, rr)
	}
	z.apexN = z.nodes[apex]
	if z.apexN == nil || z.apexN.set(dns.TypeSOA) == nil {
		return nil, fmt.Errorf("zone %s: no SOA at the apex", origin)
	}
	z.soa = z.apexN.set(dns.TypeSOA).rrs[0].(*dns.SOA)
	z.serial = z.soa.Serial
	neg := dns.Copy(z.soa).(*dns.SOA)
	if neg.Minttl < neg.Hdr.Ttl {
		neg.Hdr.Ttl = neg.Minttl
	}
	z.negSOA = neg

	// NSEC3 records live in their own chain, not in the name tree: their
	// hashed owners are not names a client can ask about.
	if len(nsec3s) > 0 {
		z.nsec3 = newNSEC3Chain(z, nsec3s)
	}
	for _, sig := range sigs {
		z.signed = true
		if sig.TypeCovered == dns.TypeNSEC3 && z.nsec3 != nil {
			if e := z.nsec3.byOwner[mustWire(sig.Hdr.Name)]; e != nil {
				e.sigs = append(e.sigs, sig)
				continue
			}
		}
		n := z.nodes[mustWire(sig.Hdr.Name)]
		if n == nil {
			continue // a signature without data (validation warns elsewhere)
		}
		sig.Hdr.Name = n.name
		if s := n.set(sig.TypeCovered); s != nil {
			s.sigs = append(s.sigs, sig)
		}
	}

	// Index: sort sets, link delegation cuts and DNAMEs top-down, collect
	// the NSEC chain. Parents are visited before children by label count.
	all := make([]*node, 0, len(z.nodes))
	for _, n := range z.nodes {
		sort.Slice(n.sets, func(i, j int) bool { return n.sets[i].t < n.sets[j].t })
		all = append(all, n)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].labels < all[j].labels })
	for _, n := range all {
		if n == z.apexN {
			continue
		}
		p := z.nodes[parentName(n.key)]
		if p.cut != nil {
			n.cut = p.cut
		} else if n.set(dns.TypeNS) != nil {
			n.cut = n
		}
		if p.dname != nil {
			n.dname = p.dname
		} else if p.set(dns.TypeDNAME) != nil {
			n.dname = p
		}
		if isWildcard(n.key) {
			p.hasWildcardChild = true
		}
	}
	for _, n := range z.nodes {
		if n.set(dns.TypeNSEC) != nil {
			z.nsec = append(z.nsec, n)
		}
	}
	sort.Slice(z.nsec, func(i, j int) bool { return canonicalCompare(z.nsec[i].key, z.nsec[j].key) < 0 })
	z.precompute()
	return z, nil
}

// nodeFor returns the node for a presentation name, creating it and any
// missing ancestors (empty non-terminals) up to the apex.
func (z *Zone) nodeFor(name string) (*node, error) {
	w, err := wireName(name)
	if err != nil {
		return nil, fmt.Errorf("zone %s: bad owner %q: %w", z.origin, name, err)
	}
	if n := z.nodes[w]; n != nil {
		return n, nil
	}
	if w != z.apex && !isBelow(w, z.apex) {
		return nil, fmt.Errorf("zone %s: %s is outside the zone", z.origin, name)
	}
	n := &node{key: w, name: presentation(w), labels: labelCount(w)}
	z.nodes[w] = n
	for p := w; p != z.apex; {
		p = parentName(p)
		if z.nodes[p] != nil {
			break
		}
		z.nodes[p] = &node{key: p, name: presentation(p), labels: labelCount(p)}
	}
	return n, nil
}

// nsec3Chain is a zone's NSEC3 records ordered by hash, with the
// parameters needed to hash query names.
type nsec3Chain struct {
	hash       uint8
	iterations uint16
	salt       string
	entries    []*nsec3Entry          // sorted by hash
	byOwner    map[string]*nsec3Entry // wire owner name
	byHash     map[string]*nsec3Entry // upper-case base32hex hash label
}

type nsec3Entry struct {
	hash string // base32hex, upper case, as dns.HashName returns it
	rr   *dns.NSEC3
	sigs []dns.RR
}

var b32 = base32.HexEncoding.WithPadding(base32.NoPadding)

func newNSEC3Chain(z *Zone, rrs []*dns.NSEC3) *nsec3Chain {
	c := &nsec3Chain{byOwner: map[string]*nsec3Entry{}, byHash: map[string]*nsec3Entry{}}
	// The NSEC3PARAM at the apex says which parameters the chain uses; fall
	// back to the first record's when it is missing.
	params := rrs[0]
	c.hash, c.iterations, c.salt = params.Hash, params.Iterations, params.Salt
	if p := z.apexN; p != nil {
		if s := p.set(dns.TypeNSEC3PARAM); s != nil {
			np := s.rrs[0].(*dns.NSEC3PARAM)
			c.hash, c.iterations, c.salt = np.Hash, np.Iterations, np.Salt
		}
	}
	for _, rr := range rrs {
		if rr.Hash != c.hash || rr.Iterations != c.iterations || !strings.EqualFold(rr.Salt, c.salt) {
			continue
		}
		w := mustWire(rr.Hdr.Name)
		e := &nsec3Entry{hash: strings.ToUpper(firstLabel(w)), rr: rr}
		c.entries = append(c.entries, e)
		c.byOwner[w] = e
		c.byHash[e.hash] = e
	}
	sort.Slice(c.entries, func(i, j int) bool { return c.entries[i].hash < c.entries[j].hash })
	return c
}

// hashOf returns the NSEC3 hash of a presentation name.
func (c *nsec3Chain) hashOf(name string) string {
	return dns.HashName(name, c.hash, c.iterations, c.salt)
}

// match returns the NSEC3 record whose owner hash equals the name's.
func (c *nsec3Chain) match(name string) *nsec3Entry { return c.byHash[c.hashOf(name)] }

// cover returns the NSEC3 record whose interval covers the name's hash.
func (c *nsec3Chain) cover(name string) *nsec3Entry {
	if len(c.entries) == 0 {
		return nil
	}
	h := c.hashOf(name)
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].hash > h }) - 1
	if i < 0 {
		i = len(c.entries) - 1 // wraps around: the last record covers the start
	}
	return c.entries[i]
}
