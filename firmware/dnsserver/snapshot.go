package dnsserver

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// Zone is the immutable, indexed form of one zone that queries are answered
// from. It is built once per zone version by Build and never changed after;
// a new version is a new Zone swapped in by the Server.
//
// Memory matters (a 512 MB box may hold a million records), so a snapshot
// keeps no dns.RR per record: names live in one array of nodes, and record
// data and pre-packed answers live in one byte arena. The slow path decodes
// the few records it needs per query.
type Zone struct {
	origin   string // presentation, lower case
	apex     string // wire, lower case
	serial   uint32
	index    nameIndex // wire name → position in nodes (index.go)
	nodes    []node    // every owner name and empty non-terminal
	arena    []byte
	apexN    *node
	negSOA   *dns.SOA // the SOA as it goes in negative answers (RFC 2308 TTL)
	negSigs  []dns.RR // its signatures, with the same TTL
	signed   bool
	nsec     []int32 // nodes owning an NSEC record, in canonical order
	nsec3    *nsec3Chain
	nrecords int
	tmpl     negBlock   // the negative SOA, pre-packed (denial.go)
	neg      *signedNeg // and with its RRSIGs, when signed with NSEC or no chain (denial.go)
	expired  bool       // answer SERVFAIL: a secondary past its SOA expire
	stats    *zoneStats // the zone's query counters, kept across versions (metrics.go)
}

// node is one owner name of the zone, or an empty non-terminal.
type node struct {
	key  string // wire, lower case
	sets []rrset
	// cut is the topmost delegation point at or above this node, -1 when
	// the node is authoritative data; a referral always comes from there.
	cut int32
	// dname is the topmost proper ancestor owning a DNAME, or -1.
	dname  int32
	labels uint8
	// wild: a "*" label exists directly below this node.
	wild bool
	// plain: answers need no referral, CNAME or DNAME processing, so
	// every question here is answered from pre-packed data (or the SOA).
	plain bool
}

// rrset is one type's records at one owner. The records are in the arena
// at off as n entries of TTL(4) RDLENGTH(2) RDATA (names uncompressed); the
// covering RRSIGs the same way at sigOff. fast, when fastLen is not zero,
// is the pre-packed answer (precompute.go).
type rrset struct {
	t       uint16
	n       uint16
	sigN    uint16
	fastLen uint16
	off     uint32
	sigOff  uint32
	fast    uint32
}

func (n *node) set(t uint16) *rrset {
	for i := range n.sets {
		if n.sets[i].t == t {
			return &n.sets[i]
		}
	}
	return nil
}

// name returns the node's owner name in presentation form.
func (n *node) name() string { return presentation(n.key) }

// Origin returns the zone's origin in presentation form.
func (z *Zone) Origin() string { return z.origin }

// Serial returns the SOA serial the snapshot was built from.
func (z *Zone) Serial() uint32 { return z.serial }

// Records returns how many records the snapshot holds.
func (z *Zone) Records() int { return z.nrecords }

// Signed reports whether the zone carries DNSSEC signatures.
func (z *Zone) Signed() bool { return z.signed }

func (z *Zone) node(i int32) *node {
	if i < 0 {
		return nil
	}
	return &z.nodes[i]
}

// find returns the position in nodes of the node named key (wire, lower
// case).
func (z *Zone) find(key string) (int32, bool) { return z.index.get(z.nodes, key) }

// findBytes is find for a name held as bytes, which it does not copy.
func (z *Zone) findBytes(key []byte) (int32, bool) { return z.index.getBytes(z.nodes, key) }

func (z *Zone) lookupNode(key string) *node {
	if i, ok := z.find(key); ok {
		return &z.nodes[i]
	}
	return nil
}

// records decodes an RRset's records (or, with sigs, its signatures) with
// the given owner name. Only the slow path and the build call this.
func (z *Zone) records(s *rrset, owner string, sigs bool) []dns.RR {
	off, n, t := int(s.off), int(s.n), s.t
	if sigs {
		off, n, t = int(s.sigOff), int(s.sigN), dns.TypeRRSIG
	}
	out := make([]dns.RR, 0, n)
	for i := 0; i < n; i++ {
		ttl := binary.BigEndian.Uint32(z.arena[off:])
		rdlen := binary.BigEndian.Uint16(z.arena[off+4:])
		h := dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl, Rdlength: rdlen}
		rr, _, err := dns.UnpackRRWithHeader(h, z.arena[:off+6+int(rdlen)], off+6)
		if err == nil {
			out = append(out, rr)
		}
		off += 6 + int(rdlen)
	}
	return out
}

// buildBuffers lends Build its 64 KiB scratch space (a record, then a
// packed answer, can be that long). Zeroing fresh buffers for each of
// 10,000 small zones at boot cost more than building the zones.
var buildBuffers = sync.Pool{New: func() any { b := make([]byte, maxMsg); return &b }}

// Build indexes a validated zone for answering. The zone is not retained.
func Build(zn *zone.Zone) (*Zone, error) {
	origin := zone.Canonical(zn.Origin)
	b, err := NewBuilder(origin, len(zn.Records))
	if err != nil {
		return nil, err
	}
	bp := buildBuffers.Get().(*[]byte)
	defer buildBuffers.Put(bp)
	buf := *bp
	for _, rr := range zn.Records {
		end, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %s: %w", origin, rr.Header().Name, err)
		}
		// PackRR wrote the owner (uncompressed), TYPE, CLASS, TTL and
		// RDLENGTH before the RDATA.
		h := 0
		for h < end && buf[h] != 0 {
			h += 1 + int(buf[h])
		}
		h++
		if end < h+10 {
			return nil, fmt.Errorf("zone %s: %s: record too short", origin, rr.Header().Name)
		}
		b.Add(buf[:h], rr.Header().Rrtype, rr.Header().Ttl, buf[h+10:end])
	}
	return b.Finish()
}

// finish completes a snapshot whose nodes and RRsets are in place: the
// apex and its SOA, the NSEC3 chain, links, pre-packed answers.
func (z *Zone) finish(chain []nsec3Entry, params nsec3Params) (*Zone, error) {
	origin, apex := z.origin, z.apex
	apexIdx, ok := z.find(apex)
	if !ok {
		return nil, fmt.Errorf("zone %s: no SOA at the apex", origin)
	}
	z.apexN = &z.nodes[apexIdx]
	soaSet := z.apexN.set(dns.TypeSOA)
	if soaSet == nil || soaSet.n == 0 {
		return nil, fmt.Errorf("zone %s: no SOA at the apex", origin)
	}
	soa := z.records(soaSet, origin, false)[0].(*dns.SOA)
	z.serial = soa.Serial
	if soa.Minttl < soa.Hdr.Ttl {
		soa.Hdr.Ttl = soa.Minttl
	}
	z.negSOA = soa
	if soaSet.sigN > 0 {
		for _, sig := range z.records(soaSet, origin, true) {
			sig.Header().Ttl = soa.Hdr.Ttl
			z.negSigs = append(z.negSigs, sig)
		}
	}
	if len(chain) > 0 {
		z.nsec3 = &nsec3Chain{iterations: params.iterations, salt: string(params.salt), entries: chain}
	}
	z.link()
	z.precompute()
	z.compact()
	return z, nil
}

// compact trims the finished snapshot's slices. The builder made it of
// a few large allocations already (names in chunks, every RRset in one
// slice, the arena grown once): built piecemeal, its small objects would
// sit in the same memory spans as the build's garbage and keep them from
// ever going back to the OS; as it is, a replaced zone frees whole spans.
func (z *Zone) compact() {
	z.nodes = slices.Clip(z.nodes)
	z.arena = trim(z.arena)
	if z.nsec3 != nil {
		z.nsec3.entries = trim(z.nsec3.entries)
	}
	i, _ := z.find(z.apex)
	z.apexN = &z.nodes[i]
}

// trim returns s, or a copy of it without the room to grow it has when
// that is more than an eighth of it.
func trim[S ~[]E, E any](s S) S {
	if cap(s)-len(s) > len(s)/8 {
		return slices.Clone(s)
	}
	return s
}

func (z *Zone) addNode(w string) int32 {
	i := int32(len(z.nodes))
	z.nodes = append(z.nodes, node{key: w, labels: uint8(labelCount(w)), cut: -1, dname: -1})
	z.index.add(z.nodes, w, i)
	return i
}

// link resolves, top-down, each node's delegation cut and DNAME ancestor
// and whether it answers plainly, and orders the NSEC chain.
func (z *Zone) link() {
	order := make([]int32, len(z.nodes))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return int(z.nodes[a].labels) - int(z.nodes[b].labels) })
	for _, i := range order {
		n := &z.nodes[i]
		if n != z.apexN {
			pi, _ := z.find(parentName(n.key))
			p := &z.nodes[pi]
			switch {
			case p.cut >= 0:
				n.cut = p.cut
			case n.set(dns.TypeNS) != nil:
				n.cut = i
			}
			switch {
			case p.dname >= 0:
				n.dname = p.dname
			case p.set(dns.TypeDNAME) != nil:
				n.dname = pi
			}
			if isWildcard(n.key) {
				p.wild = true
			}
		}
		n.plain = n.cut < 0 && n.dname < 0 && n.set(dns.TypeCNAME) == nil
		if n.set(dns.TypeNSEC) != nil {
			z.nsec = append(z.nsec, i)
		}
	}
	sort.Slice(z.nsec, func(a, b int) bool {
		return canonicalCompare(z.nodes[z.nsec[a]].key, z.nodes[z.nsec[b]].key) < 0
	})
}
