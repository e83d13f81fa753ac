package dnsserver

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/miekg/dns"
)

// Denials with DO on a signed zone (NODATA, NXDOMAIN, a wildcard's
// NODATA) and wildcard answers with DO are written by the fast path too
// (emitProof), byte for byte what resolve and packResponse produce: the
// negative SOA and its RRSIGs come packed once per zone (signedNeg,
// z.neg), the NSEC or NSEC3 records and their RRSIGs are copied from the
// arena, and a packer on the stack compresses their names as miekg/dns
// would have. Which records prove what is chosen once for both paths
// (proof, resolve.go): the fast path cannot pick other ones.
//
// With NSEC3 the name asked (and its closest encloser, next closer name
// and wildcard) is hashed on the stack and the chain, kept packed as
// entries of hash and arena offsets (nsec3.go), searched by hash; the
// slow path decodes the same records. Left to the slow path: zones whose
// chain hashes more than maxFastIterations times, and any zone with a
// record the packer would not copy as miekg/dns packs it
// (denialsPackable).
//
// The negative answers without DO use the same packing of the SOA
// (emitNegative).

// maxCompNames bounds the names a packer remembers; a reply that needs
// more goes to the slow path.
const maxCompNames = 64

// maxCompOffset: miekg/dns remembers only names a pointer can reach.
const maxCompOffset = 1 << 14

// packer appends records behind a question exactly as packResponse packs
// them with miekg/dns. It remembers what miekg/dns keeps in its
// compression map — every suffix of every name written, from each label
// written out, at that label's offset, unless the suffix is known already;
// the question's suffixes first — and compresses the names miekg/dns
// compresses (owners, SOA RDATA) against them; the names it does not
// compress (an NSEC's next name, an RRSIG's signer, RFC 4034 §§3.1.7,
// 4.1.1) it writes whole, but still remembers. Names are compared byte for
// byte, case included, as the map compares strings; the question's are
// its lower-cased ones, which is what packResponse puts in the map.
//
// A packer lives on the stack of one query; nothing in it is allocated.
type packer struct {
	out  []byte
	key  []byte // the question name, lower case, at offset 12
	full bool   // out of table or buffer room: the slow path answers
	n    int
	off  [maxCompNames]uint16 // where each name is
	ln   [maxCompNames]uint8  // its length
	c0   [maxCompNames]uint8  // its first label's first octet: a cheap filter
}

// add remembers the name of l bytes, starting with octet c0 after its
// first label's length, at offset off.
func (p *packer) add(off, l int, c0 byte) {
	if off >= maxCompOffset {
		return
	}
	if p.n == len(p.off) {
		p.full = true
		return
	}
	p.off[p.n], p.ln[p.n], p.c0[p.n] = uint16(off), uint8(l), c0
	p.n++
}

// seed remembers the suffixes of the question name, as packResponse does
// before packing anything.
func (p *packer) seed() {
	for i := 0; i < len(p.key) && p.key[i] != 0; i += int(p.key[i]) + 1 {
		p.add(12+i, len(p.key)-i, p.key[i+1])
	}
}

// findName returns the offset of a remembered name equal to name (a wire
// name, uncompressed, not the root), or -1.
func (p *packer) findName(name []byte) int {
	for j := 0; j < p.n; j++ {
		if int(p.ln[j]) == len(name) && p.c0[j] == name[1] && p.nameAt(int(p.off[j]), name) {
			return int(p.off[j])
		}
	}
	return -1
}

// nameAt reports whether the name at off in the message, pointers
// followed, is name (of the same length). Inside the question it is the
// question name's lower case, which runs to its end without pointers.
func (p *packer) nameAt(off int, name []byte) bool {
	for i := 0; ; {
		if k := off - 12; k < len(p.key) {
			return bytes.Equal(p.key[k:], name[i:])
		}
		l := int(p.out[off])
		if l&0xC0 == 0xC0 {
			off = (l&0x3F)<<8 | int(p.out[off+1])
			continue
		}
		if l == 0 || int(name[i]) != l {
			return l == 0 && name[i] == 0
		}
		if !bytes.Equal(p.out[off+1:off+1+l], name[i+1:i+1+l]) {
			return false
		}
		off += 1 + l
		i += 1 + l
	}
}

// putName writes a wire name (exactly one, uncompressed) as miekg/dns's
// packDomainName does.
func (p *packer) putName(name []byte, compress bool) {
	for i := 0; i < len(name) && name[i] != 0; i += int(name[i]) + 1 {
		if ptr := p.findName(name[i:]); ptr >= 0 {
			if compress {
				p.out = append(p.out, byte(0xC0|ptr>>8), byte(ptr))
				return
			}
		} else {
			p.add(len(p.out), len(name)-i, name[i+1])
		}
		p.out = append(p.out, name[i:i+1+int(name[i])]...)
	}
	p.out = append(p.out, 0)
}

// wireBytes returns a name kept as a string as bytes, to be read only.
func wireBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// putRecords writes n records of type t (SOA, NSEC, NSEC3 or RRSIG) kept in the
// arena at off under owner, with TTL ttl when setTTL, else their own.
// Their RDATA was checked when the zone was built (soaPackable,
// denialsPackable).
func putRecords(p *packer, arena []byte, owner []byte, t uint16, off uint32, n uint16, ttl uint32, setTTL bool) {
	o := int(off)
	for i := 0; i < int(n); i++ {
		rttl := binary.BigEndian.Uint32(arena[o:])
		rdlen := int(binary.BigEndian.Uint16(arena[o+4:]))
		rd := arena[o+6 : o+6+rdlen]
		o += 6 + rdlen
		if setTTL {
			rttl = ttl
		}
		// Compression only shortens: this much room is enough.
		if len(p.out)+len(owner)+10+rdlen > cap(p.out) {
			p.full = true
			return
		}
		p.putName(owner, true)
		p.out = binary.BigEndian.AppendUint16(p.out, t)
		p.out = append(p.out, 0, byte(dns.ClassINET))
		p.out = binary.BigEndian.AppendUint32(p.out, rttl)
		p.out = append(p.out, 0, 0)
		start := len(p.out)
		switch t {
		case dns.TypeSOA:
			a := wireLen(rd)
			b := a + wireLen(rd[a:])
			p.putName(rd[:a], true)
			p.putName(rd[a:b], true)
			p.out = append(p.out, rd[b:]...)
		case dns.TypeNSEC:
			a := wireLen(rd)
			p.putName(rd[:a], false)
			p.out = append(p.out, rd[a:]...)
		case dns.TypeNSEC3:
			p.out = append(p.out, rd...) // no names in it
		case dns.TypeRRSIG:
			a := 18 + wireLen(rd[18:])
			p.out = append(p.out, rd[:18]...)
			p.putName(rd[18:a], false)
			p.out = append(p.out, rd[a:]...)
		}
		binary.BigEndian.PutUint16(p.out[start-2:], uint16(len(p.out)-start))
	}
}

// wireLen returns the length of the uncompressed wire name b starts with.
func wireLen(b []byte) int {
	i := 0
	for b[i] != 0 {
		i += int(b[i]) + 1
	}
	return i + 1
}

// checkName returns the length of the uncompressed wire name b starts
// with, or -1 when b does not start with one.
func checkName(b []byte) int {
	for i := 0; i < len(b) && i < 255; i += int(b[i]) + 1 {
		if b[i] == 0 {
			return i + 1
		}
		if b[i]&0xC0 != 0 {
			return -1
		}
	}
	return -1
}

// negBlock is the SOA of negative answers (with the RFC 2308 TTL) packed
// once per zone as packResponse packs it behind a question for the apex
// alone, with what it takes to move it behind the question of any name
// in the zone.
type negBlock struct {
	// block is the packed SOA; nil when it could not be packed (the
	// slow path answers).
	block []byte
	// ptrs are the offsets in block of its compression pointers, into
	// the question's apex or into block itself: behind a question delta
	// bytes longer than the apex, every one points delta bytes further.
	ptrs []uint16
	// guards are the labels right below the apex (wire, with length) of
	// the names in block that are below the apex: a question under one
	// of them shares more than the apex with such a name, which then
	// compresses differently; block does not serve that question.
	guards []string
}

// signedNeg is the negBlock of denials with DO: the SOA and its RRSIGs,
// and the names they leave for the NSEC or NSEC3 records behind to
// compress against. Only zones whose denials can be packed have one.
type signedNeg struct {
	negBlock
	nrec  int        // records in block
	names []compName // remembered by packing block (packer.add), offsets as behind the apex question
}

// compName is a name a packer remembers.
type compName struct {
	off    uint16
	ln, c0 uint8
}

// buildNegBlock packs the negative SOA.
func (z *Zone) buildNegBlock() negBlock { return z.packNeg(false).negBlock }

// buildSignedNeg packs the negative SOA and its RRSIGs; when they cannot
// be packed once, they are packed per query (signedNeg.put).
func (z *Zone) buildSignedNeg() *signedNeg {
	d := z.packNeg(true)
	return &d
}

// packNeg packs the negative SOA, and with sigs its RRSIGs, behind a
// question for the apex; block is nil when they could not be.
func (z *Zone) packNeg(sigs bool) signedNeg {
	var d signedNeg
	soa := z.apexN.set(dns.TypeSOA)
	if !soaPackable(z.rdata(soa.off)) {
		return d
	}
	var q query
	canonicalQuery(&q, z.apex, dns.TypeSOA)
	bp := buildBuffers.Get().(*[]byte)
	defer buildBuffers.Put(bp)
	p := &packer{out: append((*bp)[:0], q.msg...), key: q.key[:q.keyLen]}
	p.seed()
	seeded := p.n
	nrec := z.putNegSOA(p, sigs)
	if p.full || len(p.out)+256 > maxCompOffset {
		return d
	}
	ptrs, ok := pointerOffsets(p.out, q.qend, nrec)
	if !ok {
		return d
	}
	for _, o := range ptrs {
		d.ptrs = append(d.ptrs, o-uint16(q.qend))
	}
	for j := seeded; sigs && j < p.n; j++ {
		d.names = append(d.names, compName{p.off[j], p.ln[j], p.c0[j]})
	}
	rd := z.rdata(soa.off)
	a := wireLen(rd)
	d.addGuard(rd[:a], z.apex)
	d.addGuard(rd[a:a+wireLen(rd[a:])], z.apex)
	off := soa.sigOff
	for i := 0; sigs && i < int(soa.sigN); i++ {
		rd := z.rdata(off)
		d.addGuard(rd[18:18+wireLen(rd[18:])], z.apex)
		off += 6 + uint32(len(rd))
	}
	d.block, d.nrec = slices.Clone(p.out[q.qend:]), nrec
	return d
}

// soaPackable reports whether SOA RDATA is two uncompressed names and
// the five numbers.
func soaPackable(rd []byte) bool {
	a := checkName(rd)
	if a < 0 {
		return false
	}
	b := checkName(rd[a:])
	return b >= 0 && len(rd) == a+b+20
}

// rdata returns the RDATA of the record kept in the arena at off.
func (z *Zone) rdata(off uint32) []byte {
	n := binary.BigEndian.Uint16(z.arena[off+4:])
	return z.arena[off+6 : off+6+uint32(n)]
}

// addGuard adds the label of name right below the apex, if name is
// below the apex as written (only then can it equal the question's lower
// case).
func (d *negBlock) addGuard(name []byte, apex string) {
	prev := -1
	for i := 0; i < len(name); i += int(name[i]) + 1 {
		if string(name[i:]) == apex {
			if prev >= 0 && !slices.Contains(d.guards, string(name[prev:i])) {
				d.guards = append(d.guards, string(name[prev:i]))
			}
			return
		}
		prev = i
	}
}

// serves reports whether block serves the question key: it is there and
// key lies under none of the guards.
func (d *negBlock) serves(key []byte, apexLen int) bool {
	if d.block == nil {
		return false
	}
	if len(d.guards) == 0 || len(key) == apexLen {
		return true
	}
	i := 0
	for i+1+int(key[i]) < len(key)-apexLen {
		i += 1 + int(key[i])
	}
	label := key[i : len(key)-apexLen]
	for _, g := range d.guards {
		if string(label) == g {
			return false
		}
	}
	return true
}

// move points block's pointers, copied to b behind a question delta
// bytes longer than the apex, where they belong.
func (d *negBlock) move(b []byte, delta int) {
	if delta == 0 {
		return
	}
	for _, o := range d.ptrs {
		ptr := binary.BigEndian.Uint16(b[o:]) & 0x3FFF
		binary.BigEndian.PutUint16(b[o:], 0xC000|(ptr+uint16(delta)))
	}
}

// put writes the negative SOA and its RRSIGs and returns how many records
// that is.
func (d *signedNeg) put(p *packer, z *Zone) int {
	if !d.serves(p.key, len(z.apex)) || len(p.out)+len(d.block) > cap(p.out) {
		return z.putNegSOA(p, true)
	}
	delta := len(p.key) - len(z.apex)
	base := len(p.out)
	p.out = append(p.out, d.block...)
	d.move(p.out[base:], delta)
	for _, n := range d.names {
		p.add(int(n.off)+delta, int(n.ln), n.c0)
	}
	return d.nrec
}

// putNegSOA writes the negative SOA and, with sigs, its RRSIGs
// (addNegSOA's) and returns how many records that is.
func (z *Zone) putNegSOA(p *packer, sigs bool) int {
	s := z.apexN.set(dns.TypeSOA)
	ttl := z.negSOA.Hdr.Ttl
	putRecords(p, z.arena, wireBytes(z.apex), dns.TypeSOA, s.off, 1, ttl, true)
	if !sigs {
		return 1
	}
	putRecords(p, z.arena, wireBytes(z.apex), dns.TypeRRSIG, s.sigOff, s.sigN, ttl, true)
	return 1 + int(s.sigN)
}

// putNSEC writes node n's NSEC records and their RRSIGs (addProof's) and
// returns how many records that is.
func putNSEC(p *packer, z *Zone, n *node) int {
	s := n.set(dns.TypeNSEC)
	if s == nil {
		return 0
	}
	return putSet(p, z, wireBytes(n.key), s)
}

// putSet writes an RRset kept in the arena and its RRSIGs under owner,
// with their own TTLs, and returns how many records that is.
func putSet(p *packer, z *Zone, owner []byte, s *rrset) int {
	putRecords(p, z.arena, owner, s.t, s.off, s.n, 0, false)
	putRecords(p, z.arena, owner, dns.TypeRRSIG, s.sigOff, s.sigN, 0, false)
	return int(s.n) + int(s.sigN)
}

// denialsPackable reports whether the records a denial with DO carries
// are ones putRecords copies as miekg/dns would pack them after decoding
// them: the SOA, the NSEC (or NSEC3) records and the RRSIGs over them
// well formed, type bitmaps in canonical form (a bitmap miekg/dns would
// rewrite, or a record it would fail to decode and the slow path would
// leave out, sends every denial of the zone to the slow path).
func (z *Zone) denialsPackable() bool {
	soa := z.apexN.set(dns.TypeSOA)
	if !soaPackable(z.rdata(soa.off)) || !z.sigsPackable(soa) {
		return false
	}
	if z.nsec3 != nil {
		return z.nsec3Packable()
	}
	for _, ni := range z.nsec {
		s := z.nodes[ni].set(dns.TypeNSEC)
		// An NSEC set of signatures only would be added twice where
		// the slow path dedupes by the record: leave it to that.
		if s.n == 0 || !z.sigsPackable(s) {
			return false
		}
		off := s.off
		for i := 0; i < int(s.n); i++ {
			rd := z.rdata(off)
			a := checkName(rd)
			if a < 0 || !canonicalBitmap(rd[a:]) {
				return false
			}
			off += 6 + uint32(len(rd))
		}
	}
	return true
}

func (z *Zone) sigsPackable(s *rrset) bool {
	off := s.sigOff
	for i := 0; i < int(s.sigN); i++ {
		rd := z.rdata(off)
		if len(rd) < 18 || checkName(rd[18:]) < 0 {
			return false
		}
		off += 6 + uint32(len(rd))
	}
	return true
}

// canonicalBitmap reports whether an NSEC type bitmap is as miekg/dns
// packs one: windows in increasing order, each 1 to 32 octets long, the
// last octet not zero.
func canonicalBitmap(b []byte) bool {
	last := -1
	for len(b) > 0 {
		if len(b) < 2 {
			return false
		}
		w, l := int(b[0]), int(b[1])
		if w <= last || l == 0 || l > 32 || len(b) < 2+l || b[1+l] == 0 {
			return false
		}
		last = w
		b = b[2+l:]
	}
	return true
}

// nameFreeRdata reports whether RDATA of type t holds no domain name, so
// that a pre-packed answer of it leaves nothing in miekg/dns's compression
// map for the proof behind it.
func nameFreeRdata(t uint16) bool {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSPF, dns.TypeHINFO, dns.TypeCAA,
		dns.TypeSSHFP, dns.TypeTLSA, dns.TypeSMIMEA, dns.TypeOPENPGPKEY, dns.TypeURI,
		dns.TypeLOC, dns.TypeDNSKEY, dns.TypeCDNSKEY, dns.TypeCDS, dns.TypeCERT, dns.TypeDHCID:
		return true
	}
	return false
}

// emitProof writes, for a query with DO on a zone with a z.neg, what
// resolve and packResponse would: a wildcard expansion ans (a pre-packed
// answer of a name-free type, then its RRSIGs owned by the question
// name), the negative SOA and its RRSIGs when soa, and the NSEC or NSEC3
// records of proof pf with their RRSIGs (addProof's). It returns nil
// when the reply would not fit: the slow path truncates.
func (s *Server) emitProof(q *query, out []byte, limit int, z *Zone, rcode int, ans *rrset, soa bool, pf proof) []byte {
	var p packer
	p.key = q.key[:q.keyLen]
	out = append(out[:0], 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
	q.header(out, true, false, rcode)
	p.out = append(out, q.msg[12:q.qend]...)
	p.seed()
	an, ns := 0, 0
	if ans != nil {
		b := z.arena[ans.fast : ans.fast+uint32(ans.fastLen)]
		// A name-free answer's only pointers are its owners', to the
		// question: the tail goes behind any question as it is.
		tail := b[fastHdr+2*int(binary.BigEndian.Uint16(b[8:])):]
		if len(p.out)+len(tail) > cap(p.out) {
			return nil
		}
		p.out = append(p.out, tail...)
		putRecords(&p, z.arena, p.key, dns.TypeRRSIG, ans.sigOff, ans.sigN, 0, false)
		an = int(binary.BigEndian.Uint16(b[2:])) + int(ans.sigN)
	}
	if soa {
		ns += z.neg.put(&p, z)
	}
	for i, at := range pf.at {
		switch {
		case at < 0 || slices.Contains(pf.at[:i], at):
		case pf.nsec3:
			ns += putNSEC3(&p, z, at)
		default:
			ns += putNSEC(&p, z, &z.nodes[at])
		}
	}
	if p.full || len(p.out) > limit-optLen(q, s.cfg.NSID) {
		return nil // the slow path truncates properly
	}
	out = p.out
	binary.BigEndian.PutUint16(out[6:], uint16(an))
	binary.BigEndian.PutUint16(out[8:], uint16(ns))
	if q.edns {
		out = appendOPT(out, uint16(s.cfg.MaxUDPSize), 0, q.do, nsidFor(q, s.cfg.NSID), q.cookieOut())
		out[11] = 1
	}
	return out
}
