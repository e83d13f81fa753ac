package zone

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"

	"github.com/miekg/dns"
)

// Validate checks the zone as a whole, whatever it came from (master file,
// transfer, API), so that nothing the store accepts can make the server
// give answers that contradict the DNS rules. It returns an ErrorList
// (every problem, in file order) or nil. Identical duplicate records are
// not errors: they are merged when the zone is parsed or stored. It runs
// the same Checker a streamed import does, over records held in memory.
func (z *Zone) Validate() error {
	c, err := NewChecker(z.Origin)
	if err != nil {
		return err
	}
	pos := func(i int) Position {
		if i < len(z.Pos) {
			return z.Pos[i]
		}
		return Position{}
	}
	// Each record on its own, then the placement pass in the order it
	// needs: names after their ancestors, duplicates next to each other.
	type placed struct {
		order []byte // AppendOrderKey of the owner, then type and rdata
		owner []byte
		t     uint16
		i     int
	}
	var recs []placed
	buf := make([]byte, scratchSize)
	for i, rr := range z.Records {
		wire, h, ok := c.Record(i, rr, pos(i), buf)
		if !ok {
			continue
		}
		t := rr.Header().Rrtype
		order := AppendOrderKey(nil, wire[:h])
		order = append(order, byte(t>>8), byte(t))
		order = append(order, wire[h+10:]...)
		recs = append(recs, placed{order: order, owner: slices.Clone(wire[:h]), t: t, i: i})
	}
	slices.SortStableFunc(recs, func(a, b placed) int { return bytes.Compare(a.order, b.order) })
	for k, r := range recs {
		if k > 0 && bytes.Equal(recs[k-1].order, r.order) {
			continue // a duplicate: merged, not an error
		}
		c.Place(r.i, pos(r.i), r.owner, r.t)
	}
	return c.Err()
}

// AppendOrderKey appends the key that orders a zone's names as the
// Checker's placement pass needs them (and as the store keeps them):
// labels lower-cased and reversed, each followed by a zero byte, with
// 0x00 and 0x01 inside labels escaped as 0x01 0x01 and 0x01 0x02; so a
// name sorts right after its parent, and before its children.
func AppendOrderKey(dst, name []byte) []byte {
	var starts [128]int
	n := 0
	for off := 0; off < len(name) && name[off] != 0 && n < len(starts); off += 1 + int(name[off]) {
		starts[n] = off
		n++
	}
	for k := n - 1; k >= 0; k-- {
		off := starts[k]
		end := min(off+1+int(name[off]), len(name))
		label := name[off+1 : end]
		// Most labels need no escape: copied whole, then lower-cased
		// in place (this runs for every record of an import).
		at := len(dst)
		dst = append(dst, label...)
		for i, c := range dst[at:] {
			if c <= 1 {
				dst = appendEscaped(dst[:at], label)
				break
			}
			if 'A' <= c && c <= 'Z' {
				dst[at+i] = c + 'a' - 'A'
			}
		}
		dst = append(dst, 0)
	}
	return dst
}

// appendEscaped appends a label as AppendOrderKey keys it when it holds
// 0x00 or 0x01 bytes.
func appendEscaped(dst, label []byte) []byte {
	for _, c := range label {
		switch {
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case c == 0:
			dst = append(dst, 1, 1)
		case c == 1:
			dst = append(dst, 1, 2)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Checker validates a zone record by record, so that a zone too big to
// hold as dns.RR values (a million records on a 512 MB box) is checked
// while it streams: Record checks each record on its own as it arrives;
// Place then checks each against the others at its name and above it,
// fed in AppendOrderKey order (the store's); Err adds the zone-wide
// checks. Its memory does not grow with the zone: only the chain of names
// above the current one is kept.
type Checker struct {
	origin string
	apex   string // wire, lower case
	c      collector

	// What Record needs to know of each type, looked up once: types
	// below 256 (nearly every record) in an array, the rest in a map.
	small *[256]typeInfo
	large map[uint16]*typeInfo

	soas   int
	apexNS bool

	// The names from the apex down to the current one that have records,
	// with what constrains the names below them; their keys (wire, lower
	// case) are stacked in keys.
	stack []frame
	keys  []byte
	// Records at the current name before its CNAME (types below CNAME
	// sort first), reported if a CNAME follows.
	pending      []pendingRec
	pendingOwner []byte
}

// typeInfo is what Checker knows of one record type.
type typeInfo struct {
	goType reflect.Type // the Go type miekg/dns decodes it to; nil: none
	zero   string       // wire rdata of its zero value (see empty)
	known  bool         // goType and zero are filled
}

// typeInfo returns t's entry, filled.
func (c *Checker) typeInfo(t uint16) *typeInfo {
	var ti *typeInfo
	if t < 256 {
		if c.small == nil {
			c.small = new([256]typeInfo)
		}
		ti = &c.small[t]
	} else {
		if ti = c.large[t]; ti == nil {
			if c.large == nil {
				c.large = make(map[uint16]*typeInfo)
			}
			ti = new(typeInfo)
			c.large[t] = ti
		}
	}
	if !ti.known {
		ti.known = true
		if newRR, ok := dns.TypeToRR[t]; ok {
			z := newRR()
			ti.goType = reflect.TypeOf(z)
			*z.Header() = dns.RR_Header{Name: ".", Rrtype: t, Class: dns.ClassINET}
			buf := make([]byte, scratchSize)
			if n, err := dns.PackRR(z, buf, 0, nil, false); err == nil {
				ti.zero = string(buf[11:n]) // after the root owner and fixed fields
			}
		}
	}
	return ti
}

type frame struct {
	end            int // keys[start:end] is the name; start is the previous frame's end
	cnames, dnames int
	cut            bool // a delegation point (NS below the apex)
}

type pendingRec struct {
	i         int
	pos       Position
	t         uint16
	ownerFrom int // the owner as written: pendingOwner[ownerFrom:ownerTo]
	ownerTo   int
}

// NewChecker starts checking a zone of the given canonical origin; an
// origin that is not canonical is an ErrorList.
func NewChecker(origin string) (*Checker, error) {
	c := &Checker{origin: origin}
	if origin == "" {
		c.c.add(-1, Position{}, "zone has no origin")
		return nil, c.c.list()
	}
	if _, ok := dns.IsDomainName(origin); !ok || origin != Canonical(origin) {
		c.c.add(-1, Position{}, "origin %q is not in canonical form (%q)", origin, Canonical(origin))
		return nil, c.c.list()
	}
	apex, err := wireKey(origin, make([]byte, 256))
	if err != nil {
		c.c.add(-1, Position{}, "origin %q: %v", origin, err)
		return nil, c.c.list()
	}
	c.apex = apex
	return c, nil
}

// Fail records a problem found with record i elsewhere (the parser's).
func (c *Checker) Fail(i int, pos Position, msg string) { c.c.add(i, pos, "%s", msg) }

// Record checks record i on its own: class, type, that it packs into
// wire form and back, that it has data, that it is inside the zone. It
// returns the record packed (owner, TYPE, CLASS, TTL, RDLENGTH, RDATA, no
// name compression) in buf, which must be scratchSize bytes, and the
// owner's length; ok is false, and the problem collected, when the record
// is refused. It allocates nothing for a good record.
func (c *Checker) Record(i int, rr dns.RR, pos Position, buf []byte) (wire []byte, ownerLen int, ok bool) {
	if rr == nil {
		c.c.add(i, pos, "empty record")
		return nil, 0, false
	}
	h := rr.Header()
	name, t := h.Name, h.Rrtype
	if h.Class != dns.ClassINET {
		c.c.add(i, pos, "%s %s: class %s is not supported, only IN", name, typ(t), dns.Class(h.Class))
		return nil, 0, false
	}
	if isMeta(t) {
		c.c.add(i, pos, "%s %s: not a type that can be zone data", name, typ(t))
		return nil, 0, false
	}
	// A record built in code (API) can carry a header type that does not
	// match its Go type; packing would then write data that unpacks as
	// something else.
	ti := c.typeInfo(t)
	if _, generic := rr.(*dns.RFC3597); !generic {
		if gt := ti.goType; gt != nil && reflect.TypeOf(rr) != gt {
			c.c.add(i, pos, "%s: header type %s does not match record data %T", name, typ(t), rr)
			return nil, 0, false
		}
	}
	wire, h0, err := pack(rr, buf)
	if err != nil {
		c.c.add(i, pos, "%s %s: %v", name, typ(t), err)
		return nil, 0, false
	}
	if c.empty(rr, wire[h0+10:]) {
		c.c.add(i, pos, "%s %s: record has no data", name, typ(t))
		return nil, 0, false
	}
	key := appendLower(buf[packBufSize:packBufSize], wire[:h0])
	if !inZone(string(key), c.apex) {
		c.c.add(i, pos, "%s %s is outside the zone %s", name, typ(t), c.origin)
		return nil, 0, false
	}
	if t == dns.TypeSOA && string(key) != c.apex {
		c.c.add(i, pos, "%s SOA is not at the zone apex %s", name, c.origin)
		return nil, 0, false
	}
	return wire, h0, true
}

// pack packs rr without compression into buf and unpacks it again: the
// store keeps records in wire form, and a record that packs into bytes
// that do not unpack must be refused here, not found unreadable when the
// box boots. It returns the packed record and the owner's length.
func pack(rr dns.RR, buf []byte) ([]byte, int, error) {
	buf = buf[:packBufSize]
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot be encoded: %v", err)
	}
	h := 0
	for h < n && buf[h] != 0 {
		h += 1 + int(buf[h])
	}
	h++
	if n < h+10 {
		return nil, 0, errors.New("cannot be encoded: short record")
	}
	// An address of its full length always unpacks (most of a big zone
	// is addresses, and unpacking each costs a tenth of an import).
	t, rdlen := rr.Header().Rrtype, n-h-10
	if (t == dns.TypeA && rdlen == net.IPv4len) || (t == dns.TypeAAAA && rdlen == net.IPv6len) {
		return buf[:n], h, nil
	}
	if _, off, err := dns.UnpackRR(buf[:n], 0); err != nil || off != n {
		return nil, 0, errors.New("incomplete record data")
	}
	return buf[:n], h, nil
}

// empty reports a record whose data is its type's zero value. ZoneParser
// returns such records for "www MX" with nothing after it (it reads them
// as RFC 2136 update records), and code can build them by leaving fields
// unset. Their wire form is malformed or meaningless (an MX without a
// target name, an A of no length), so they are not zone data. Types whose
// data may legitimately be empty are exempt.
func (c *Checker) empty(rr dns.RR, rdata []byte) bool {
	t := rr.Header().Rrtype
	if _, generic := rr.(*dns.RFC3597); generic || oneOf(t, dns.TypeNULL, dns.TypeAPL) {
		return false
	}
	return string(rdata) == c.typeInfo(t).zero
}

// Place checks record i, which passed Record, against the other data at
// its owner and above it: SOA and NS at the apex, CNAME exclusivity,
// delegations and DNAME. owner is its owner in wire form as written.
// Records must come without duplicates and in AppendOrderKey order of
// their owners, a name's records in type order (the store's order: a
// name may come back after its children for types above 255, which is
// why the names above the current one are kept as a chain).
func (c *Checker) Place(i int, pos Position, owner []byte, t uint16) {
	var kb [256]byte
	key := appendLower(kb[:0], owner)
	// Leave the names that are not the owner or above it.
	for len(c.stack) > 0 {
		top := c.stack[len(c.stack)-1]
		start := 0
		if len(c.stack) > 1 {
			start = c.stack[len(c.stack)-2].end
		}
		tk := c.keys[start:top.end]
		if bytes.Equal(tk, key) {
			break
		}
		if inZone(string(key), string(tk)) {
			c.enter(key)
			break
		}
		c.stack = c.stack[:len(c.stack)-1]
		c.keys = c.keys[:start]
		c.pending = c.pending[:0]
		c.pendingOwner = c.pendingOwner[:0]
	}
	if len(c.stack) == 0 {
		c.enter(key)
	}
	f := &c.stack[len(c.stack)-1]
	name := func() string { return ownerName(owner) }

	if string(key) == c.apex {
		switch t {
		case dns.TypeSOA:
			if c.soas++; c.soas > 1 {
				c.c.add(i, pos, "more than one SOA record at the zone apex")
			}
		case dns.TypeNS:
			c.apexNS = true
		case dns.TypeCNAME:
			c.c.add(i, pos, "CNAME at the zone apex %s", name())
		case dns.TypeDS:
			c.c.add(i, pos, "DS at the zone apex %s: it belongs in the parent zone", name())
		}
		return
	}
	switch t {
	case dns.TypeCNAME:
		if f.cnames++; f.cnames > 1 {
			c.c.add(i, pos, "more than one CNAME record for %s", name())
		}
		// RFC 1034 §3.6.2: what came before it at this name.
		for _, p := range c.pending {
			c.c.add(p.i, p.pos, "%s %s: a name with a CNAME can have no other data", ownerName(c.pendingOwner[p.ownerFrom:p.ownerTo]), typ(p.t))
		}
		c.pending = c.pending[:0]
		c.pendingOwner = c.pendingOwner[:0]
	case dns.TypeDNAME:
		if f.dnames++; f.dnames > 1 {
			c.c.add(i, pos, "more than one DNAME record for %s", name())
		}
	case dns.TypeNS:
		f.cut = true
	}
	// RFC 1034 §3.6.2, with the DNSSEC records RFC 4035 §2.5 allows.
	if !oneOf(t, dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3) {
		if f.cnames > 0 {
			c.c.add(i, pos, "%s %s: a name with a CNAME can have no other data", name(), typ(t))
		} else if t < dns.TypeCNAME && len(c.pending) < MaxErrors {
			from := len(c.pendingOwner)
			c.pendingOwner = append(c.pendingOwner, owner...)
			c.pending = append(c.pending, pendingRec{i: i, pos: pos, t: t, ownerFrom: from, ownerTo: len(c.pendingOwner)})
		}
	}
	if f.cut && !oneOf(t, dns.TypeNS, dns.TypeDS, dns.TypeNSEC, dns.TypeRRSIG, dns.TypeA, dns.TypeAAAA) {
		c.c.add(i, pos, "%s %s at a delegation point: only NS, DS, NSEC, RRSIG and glue (A, AAAA) belong there", name(), typ(t))
	}
	if t == dns.TypeDS && !f.cut {
		c.c.add(i, pos, "%s DS without NS: DS belongs only at a delegation point", name())
	}
	// The highest cut or DNAME above a name is what hides it; the apex
	// (the bottom of the chain, when it has records) is neither.
	start := 0
	for k := range len(c.stack) - 1 {
		a := c.stack[k]
		ak := c.keys[start:a.end]
		start = a.end
		if string(ak) == c.apex {
			continue
		}
		if a.dnames > 0 {
			c.c.add(i, pos, "%s %s is below the DNAME at %s", name(), typ(t), keyString(string(ak)))
			break
		}
		if a.cut {
			if !oneOf(t, dns.TypeA, dns.TypeAAAA) {
				c.c.add(i, pos, "%s %s is below the delegation at %s: only glue (A, AAAA) is allowed there", name(), typ(t), keyString(string(ak)))
			}
			break
		}
	}
}

// enter pushes a name onto the chain.
func (c *Checker) enter(key []byte) {
	c.keys = append(c.keys, key...)
	c.stack = append(c.stack, frame{end: len(c.keys)})
	c.pending = c.pending[:0]
	c.pendingOwner = c.pendingOwner[:0]
}

// Err adds what the zone must have at its apex and returns every problem
// found, as an ErrorList, or nil.
func (c *Checker) Err() error {
	if c.soas == 0 {
		c.c.add(-1, Position{}, "no SOA record at the zone apex %s", c.origin)
	}
	if !c.apexNS {
		c.c.add(-1, Position{}, "no NS records at the zone apex %s", c.origin)
	}
	return c.c.list()
}

// ownerName renders an owner as written, for messages.
func ownerName(owner []byte) string {
	name, _, err := dns.UnpackDomainName(owner, 0)
	if err != nil {
		return "?"
	}
	return name
}

// isMeta reports types that exist only in messages, never in zones: OPT
// and the RFC 6895 meta/query range (TKEY, TSIG, IXFR, AXFR, ANY, ...).
func isMeta(t uint16) bool {
	return t == dns.TypeNone || t == dns.TypeOPT || (t >= 128 && t <= 255)
}

func typ(t uint16) string { return dns.Type(t).String() }

func oneOf(t uint16, ts ...uint16) bool { return slices.Contains(ts, t) }
