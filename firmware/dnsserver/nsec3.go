package dnsserver

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/miekg/dns"
)

// A zone's NSEC3 chain (RFC 5155) is kept packed, like the rest of the
// snapshot: its records and their RRSIGs are in the arena as any
// RRset's are, and the chain is one entry per owner, sorted by hash,
// each the raw SHA-1 hash its owner label spells and where its records
// are. A name asked is hashed on the stack (nsec3Chain.hash) and the
// chain searched by hash, so that neither path allocates to find a
// proof; the fast path copies the records from the arena (putNSEC3,
// denial.go) and the slow path decodes them like any record. Kept as
// decoded dns.NSEC3 and dns.RRSIG values with maps by owner and by hash,
// as it was, the chain took about 550 bytes a name where it now takes
// about 175 (200,000 names, an ECDSA signature over each NSEC3): for a
// zone of a million names, more than a box of 512 MB has, for the chain
// alone.

// nsec3HashLen is the length of a SHA-1 hash, the only NSEC3 hash
// algorithm there is (RFC 5155 §11): records of any other are not kept.
const nsec3HashLen = sha1.Size

// nsec3Label is base32hex (RFC 4648 §7) in lower case, as owners are
// kept: a SHA-1 hash is 32 characters of it, with no padding.
var nsec3Label = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// maxFastIterations: denials in a zone whose chain hashes names more
// times than this are left to the slow path. RFC 9276 §3.1 asks for no
// extra iterations and lets validators treat more than 100 as insecure
// (§3.2). Every iteration is another SHA-1 over each of the up to three
// names a denial hashes, on either path: past 100 the hashing costs many
// times what the fast path saves, and keeping such zones out bounds
// what a fast answer costs.
const maxFastIterations = 100

// nsec3Chain is a zone's NSEC3 chain: the hash parameters names are
// hashed with and the entries, sorted by hash.
type nsec3Chain struct {
	iterations uint16
	salt       string // raw
	entries    []nsec3Entry
}

// nsec3Entry is one owner of the chain: its hash, and its NSEC3 records
// and their RRSIGs in the arena as an rrset keeps them.
type nsec3Entry struct {
	hash        [nsec3HashLen]byte
	n, sigN     uint16
	off, sigOff uint32
}

// set returns the entry's records as an RRset, to be read as one.
func (e *nsec3Entry) set() rrset {
	return rrset{t: dns.TypeNSEC3, n: e.n, sigN: e.sigN, off: e.off, sigOff: e.sigOff}
}

// nsec3Params are the hash parameters of an NSEC3 or NSEC3PARAM record
// (their RDATA starts alike, RFC 5155 §§3.2, 4.2); ok when there were
// any.
type nsec3Params struct {
	ok         bool
	alg        uint8
	iterations uint16
	salt       []byte
}

// parseNSEC3 reads the hash parameters RDATA of an NSEC3 (or an
// NSEC3PARAM) starts with and returns what follows them.
func parseNSEC3(rd []byte) (p nsec3Params, rest []byte) {
	if len(rd) < 5 || len(rd) < 5+int(rd[4]) {
		return p, nil
	}
	sl := int(rd[4])
	return nsec3Params{ok: true, alg: rd[0], iterations: binary.BigEndian.Uint16(rd[2:]), salt: rd[5 : 5+sl]}, rd[5+sl:]
}

// nsec3Bitmap returns the type bitmap of NSEC3 RDATA, ok when the fields
// before it are whole.
func nsec3Bitmap(rd []byte) (bitmap []byte, ok bool) {
	p, rest := parseNSEC3(rd)
	if !p.ok || len(rest) < 1 || len(rest) < 1+int(rest[0]) {
		return nil, false
	}
	return rest[1+int(rest[0]):], true
}

// same reports whether a record of parameters q belongs in a chain of
// parameters p.
func (p *nsec3Params) same(q nsec3Params) bool {
	return q.ok && p.alg == q.alg && p.iterations == q.iterations && bytes.Equal(p.salt, q.salt)
}

// nsec3Hash returns the RFC 5155 §5 hash of a lower-case wire name (of
// up to 257 bytes, a wildcard's below a 255-byte one): SHA-1 over the
// name and the salt, then over the hash and the salt once per
// iteration. It does not allocate.
func (c *nsec3Chain) hash(name []byte) [nsec3HashLen]byte {
	var buf [2 * 256]byte
	n := copy(buf[:], name)
	n += copy(buf[n:], c.salt)
	h := sha1.Sum(buf[:n])
	for range c.iterations {
		n = copy(buf[:], h[:])
		n += copy(buf[n:], c.salt)
		h = sha1.Sum(buf[:n])
	}
	return h
}

// search returns the index of the first entry whose hash is not below
// name's, and whether its hash is name's.
func (c *nsec3Chain) search(name []byte) (int, bool) {
	return slices.BinarySearchFunc(c.entries, c.hash(name), func(e nsec3Entry, h [nsec3HashLen]byte) int {
		return bytes.Compare(e.hash[:], h[:])
	})
}

// match returns the entry whose owner is name's hash, or -1.
func (c *nsec3Chain) match(name []byte) int32 {
	if i, ok := c.search(name); ok {
		return int32(i)
	}
	return -1
}

// cover returns the entry whose interval holds name's hash: the last
// whose hash is not above it (its match, when there is one), or the last
// of all when every hash is above it (the chain wraps around); -1 for an
// empty chain.
func (c *nsec3Chain) cover(name []byte) int32 {
	i, ok := c.search(name)
	switch {
	case ok:
		return int32(i)
	case i == 0:
		return int32(len(c.entries)) - 1
	}
	return int32(i) - 1
}

// closestProvable returns the closest provable encloser proof for a
// name with no NSEC3 of its own, as in an opt-out span (RFC 5155
// §7.2.4): the entry matching its closest ancestor that has one and the
// entry covering the next closer name, or -1s when no ancestor up to the
// apex (then the root) has one.
func (c *nsec3Chain) closestProvable(key, apex string) (int32, int32) {
	for next := key; ; {
		parent := parentName(next)
		if m := c.match(wireBytes(parent)); m >= 0 {
			return m, c.cover(wireBytes(next))
		}
		if parent == apex || len(parent) <= 1 {
			return -1, -1
		}
		next = parent
	}
}

// nextCloser returns the suffix of the wire name key one label longer
// than its ancestor of ceLen bytes.
func nextCloser(key []byte, ceLen int) []byte {
	i := 0
	for len(key)-i-1-int(key[i]) > ceLen {
		i += 1 + int(key[i])
	}
	return key[i:]
}

// owner writes into buf the owner of entry e, its hash's label on the
// apex, and returns it.
func (c *nsec3Chain) owner(e *nsec3Entry, buf *[nsec3OwnerMax]byte, apex string) []byte {
	buf[0] = 32
	nsec3Label.Encode(buf[1:33], e.hash[:])
	return buf[:33+copy(buf[33:], apex)]
}

// nsec3OwnerMax is the longest an NSEC3 owner can be: a name of 255 bytes
// (the builder keeps no owner longer).
const nsec3OwnerMax = 255

// ownerName is owner in presentation form, for the slow path.
func (c *nsec3Chain) ownerName(e *nsec3Entry, apex string) string {
	var buf [nsec3OwnerMax]byte
	return presentation(string(c.owner(e, &buf, apex)))
}

// putNSEC3 writes entry i's NSEC3 records and their RRSIGs (addProof's)
// and returns how many records that is.
func putNSEC3(p *packer, z *Zone, i int32) int {
	e := &z.nsec3.entries[i]
	var buf [nsec3OwnerMax]byte
	s := e.set()
	return putSet(p, z, z.nsec3.owner(e, &buf, z.apex), &s)
}

// nsec3Packable reports whether putNSEC3 copies the chain's records as
// miekg/dns would pack them after decoding them (denialsPackable), and
// whether the chain hashes few enough times for the fast path.
func (z *Zone) nsec3Packable() bool {
	c := z.nsec3
	if c.iterations > maxFastIterations {
		return false
	}
	for i := range c.entries {
		s := c.entries[i].set()
		if !z.sigsPackable(&s) {
			return false
		}
		off := s.off
		for range s.n {
			rd := z.rdata(off)
			if bm, ok := nsec3Bitmap(rd); !ok || !canonicalBitmap(bm) {
				return false
			}
			off += 6 + uint32(len(rd))
		}
	}
	return true
}

// --- building the chain (Builder) ---

// nsec3Owner returns the hash an NSEC3 owner's label spells, ok when the
// owner is one: a SHA-1 hash in base32hex (any case) right below the
// apex. No name's hash could find records at any other owner.
func (b *Builder) nsec3Owner(owner []byte) (h [nsec3HashLen]byte, ok bool) {
	apex := b.z.apex
	if len(owner) != 33+len(apex) || owner[0] != 32 || len(owner) > nsec3OwnerMax {
		return h, false
	}
	b.key = append(b.key[:0], owner...)
	lower(b.key)
	if string(b.key[33:]) != apex {
		return h, false
	}
	n, err := nsec3Label.Decode(h[:], b.key[1:33])
	return h, err == nil && n == len(h)
}

// addNSEC3 puts an NSEC3 record, or with sig an RRSIG over one, in the
// arena for the chain: in the last entry when it is of the same owner
// and its records (or signatures) end where this one goes, else in a
// new entry (Finish puts an owner's entries together). The first NSEC3
// record's parameters are the chain's when the apex has no NSEC3PARAM.
func (b *Builder) addNSEC3(owner []byte, sig bool, ttl uint32, rdata []byte) {
	h, ok := b.nsec3Owner(owner)
	if !ok {
		return
	}
	if !sig {
		p, _ := parseNSEC3(rdata)
		if _, ok := nsec3Bitmap(rdata); !ok {
			b.err = fmt.Errorf("zone %s: NSEC3 record does not decode", b.z.origin)
			return
		}
		if !b.firstNSEC3.ok {
			p.salt = slices.Clone(p.salt)
			b.firstNSEC3 = p
		}
	}
	z := b.z
	off := uint32(len(z.arena))
	k := 0
	if sig {
		k = 1
	}
	last := len(b.chain) - 1
	if last < 0 || b.chain[last].hash != h {
		b.chain = append(b.chain, nsec3Entry{hash: h})
		last++
	}
	n, start := b.chain[last].group(sig)
	if *n > 0 && b.chainEnd[k] != off {
		// This owner's records came apart: a second entry for it.
		b.chain = append(b.chain, nsec3Entry{hash: h})
		n, start = b.chain[last+1].group(sig)
	}
	if *n == 0 {
		*start = off
	}
	*n++
	z.arena = appendRecord(z.arena, ttl, rdata)
	b.chainEnd[k] = uint32(len(z.arena))
}

// group returns where an entry keeps how many records (or, with sig,
// signatures) it has and where they start.
func (e *nsec3Entry) group(sig bool) (*uint16, *uint32) {
	if sig {
		return &e.sigN, &e.sigOff
	}
	return &e.n, &e.off
}

// noteNSEC3PARAM keeps the hash parameters of the apex's first
// NSEC3PARAM record, the chain's (RFC 5155 §4).
func (b *Builder) noteNSEC3PARAM(owner, rdata []byte) {
	if b.nsec3Param.ok || len(owner) != len(b.z.apex) {
		return
	}
	b.key = append(b.key[:0], owner...)
	lower(b.key)
	if string(b.key) != b.z.apex {
		return
	}
	p, _ := parseNSEC3(rdata)
	p.salt = slices.Clone(p.salt)
	b.nsec3Param = p
}

// chainParams returns the parameters of the chain: the NSEC3PARAM's, or
// the first NSEC3 record's.
func (b *Builder) chainParams() nsec3Params {
	if b.nsec3Param.ok {
		return b.nsec3Param
	}
	return b.firstNSEC3
}

// sortChain orders the chain's entries by hash, an owner's in the order
// they came, and reports whether it is tidy: one entry an owner, each
// with NSEC3 records, all of the chain's parameters. Records from the
// store are (in hash order already); others Finish tidies
// (regroupChain).
func (b *Builder) sortChain(p nsec3Params) bool {
	slices.SortStableFunc(b.chain, func(x, y nsec3Entry) int { return bytes.Compare(x.hash[:], y.hash[:]) })
	for i := range b.chain {
		e := &b.chain[i]
		if e.n == 0 || i > 0 && b.chain[i-1].hash == e.hash {
			return false
		}
		off := e.off
		for range e.n {
			rd := b.z.rdata(off)
			if q, _ := parseNSEC3(rd); !p.same(q) {
				return false
			}
			off += 6 + uint32(len(rd))
		}
	}
	return true
}

// regroupChain copies the sorted chain's records from old to the end of
// the arena, each owner's together, its records then its signatures,
// and only records of parameters p; an owner left with no NSEC3 record
// is left out, signatures and all.
func (b *Builder) regroupChain(old []byte, p nsec3Params) {
	z := b.z
	out := b.chain[:0] // an entry is written only once its owner's have been read
	for i := 0; i < len(b.chain); {
		j := i + 1
		for j < len(b.chain) && b.chain[j].hash == b.chain[i].hash {
			j++
		}
		e := nsec3Entry{hash: b.chain[i].hash, off: uint32(len(z.arena))}
		for _, f := range b.chain[i:j] {
			off := f.off
			for range f.n {
				n := 6 + uint32(binary.BigEndian.Uint16(old[off+4:]))
				if q, _ := parseNSEC3(old[off+6 : off+n]); p.same(q) {
					z.arena = append(z.arena, old[off:off+n]...)
					e.n++
				}
				off += n
			}
		}
		if e.n > 0 {
			e.sigOff = uint32(len(z.arena))
			for _, f := range b.chain[i:j] {
				n := recordsLen(old, f.sigOff, f.sigN)
				z.arena = append(z.arena, old[f.sigOff:f.sigOff+n]...)
				e.sigN += f.sigN
			}
			out = append(out, e)
		}
		i = j
	}
	b.chain = out
}

// recordsLen returns how many bytes n records kept at off in the arena
// take.
func recordsLen(arena []byte, off uint32, n uint16) uint32 {
	end := off
	for range n {
		end += 6 + uint32(binary.BigEndian.Uint16(arena[end+4:]))
	}
	return end - off
}
