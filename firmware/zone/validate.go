package zone

import (
	"reflect"
	"slices"

	"github.com/miekg/dns"
)

// Validate checks the zone as a whole, whatever it came from (master file,
// transfer, API), so that nothing the store accepts can make the server
// give answers that contradict the DNS rules. It returns an ErrorList
// (every problem, in file order) or nil. Identical duplicate records are
// not errors: they are merged when the zone is parsed or stored.
func (z *Zone) Validate() error {
	var c collector
	if z.Origin == "" {
		c.add(-1, Position{}, "zone has no origin")
		return c.list()
	}
	if _, ok := dns.IsDomainName(z.Origin); !ok || z.Origin != Canonical(z.Origin) {
		c.add(-1, Position{}, "origin %q is not in canonical form (%q)", z.Origin, Canonical(z.Origin))
		return c.list()
	}
	apex, err := wireKey(z.Origin, make([]byte, 256))
	if err != nil {
		c.add(-1, Position{}, "origin %q: %v", z.Origin, err)
		return c.list()
	}

	v := validator{z: z, c: &c, apex: apex}
	v.records()
	v.zoneWide()
	v.placement()
	return c.list()
}

// validator holds what the first pass learns about owners, for the checks
// that need the whole zone.
type validator struct {
	z    *Zone
	c    *collector
	apex string

	// Only the few owners that constrain others are remembered, so that
	// a zone of a hundred thousand plain names costs no per-owner maps.
	keys   []string        // owner key per record; "" when the record is skipped
	cnames map[string]int  // owner -> CNAME count
	dnames map[string]int  // owner -> DNAME count
	cuts   map[string]bool // non-apex owners with NS: delegation points
	apexNS bool
	soas   int

	zeroRdata map[uint16]string // wire rdata of each type's zero value
}

func (v *validator) pos(i int) Position {
	if i < len(v.z.Pos) {
		return v.z.Pos[i]
	}
	return Position{}
}

// records checks each record on its own and learns the owners.
func (v *validator) records() {
	z := v.z
	v.keys = make([]string, len(z.Records))
	v.cnames = make(map[string]int)
	v.dnames = make(map[string]int)
	v.cuts = make(map[string]bool)
	seen := make(map[string]struct{}, len(z.Records))
	goTypes := make(map[uint16]reflect.Type)
	buf := make([]byte, scratchSize)

	for i, rr := range z.Records {
		if rr == nil {
			v.c.add(i, v.pos(i), "empty record")
			continue
		}
		h := rr.Header()
		name, t := h.Name, h.Rrtype
		if h.Class != dns.ClassINET {
			v.c.add(i, v.pos(i), "%s %s: class %s is not supported, only IN", name, typ(t), dns.Class(h.Class))
			continue
		}
		if isMeta(t) {
			v.c.add(i, v.pos(i), "%s %s: not a type that can be zone data", name, typ(t))
			continue
		}
		// A record built in code (API) can carry a header type that does
		// not match its Go type; packing would then write data that
		// unpacks as something else.
		if _, generic := rr.(*dns.RFC3597); !generic {
			if newRR, ok := dns.TypeToRR[t]; ok {
				gt, ok := goTypes[t]
				if !ok {
					gt = reflect.TypeOf(newRR())
					goTypes[t] = gt
				}
				if reflect.TypeOf(rr) != gt {
					v.c.add(i, v.pos(i), "%s: header type %s does not match record data %T", name, typ(t), rr)
					continue
				}
			}
		}
		id, err := identify(rr, buf)
		if err != nil {
			v.c.add(i, v.pos(i), "%s %s: %v", name, typ(t), err)
			continue
		}
		if v.empty(rr, id) {
			v.c.add(i, v.pos(i), "%s %s: record has no data", name, typ(t))
			continue
		}
		if _, dup := seen[id.key]; dup {
			continue
		}
		seen[id.key] = struct{}{}
		if !inZone(id.owner, v.apex) {
			v.c.add(i, v.pos(i), "%s %s is outside the zone %s", name, typ(t), v.z.Origin)
			continue
		}
		v.keys[i] = id.owner

		switch t {
		case dns.TypeSOA:
			if id.owner != v.apex {
				v.c.add(i, v.pos(i), "%s SOA is not at the zone apex %s", name, v.z.Origin)
				break
			}
			if v.soas++; v.soas > 1 {
				v.c.add(i, v.pos(i), "more than one SOA record at the zone apex")
			}
		case dns.TypeCNAME:
			if v.cnames[id.owner]++; v.cnames[id.owner] > 1 {
				v.c.add(i, v.pos(i), "more than one CNAME record for %s", name)
			}
		case dns.TypeDNAME:
			if v.dnames[id.owner]++; v.dnames[id.owner] > 1 {
				v.c.add(i, v.pos(i), "more than one DNAME record for %s", name)
			}
		case dns.TypeNS:
			if id.owner == v.apex {
				v.apexNS = true
			} else {
				v.cuts[id.owner] = true
			}
		}
	}
}

// empty reports a record whose data is its type's zero value. ZoneParser
// returns such records for "www MX" with nothing after it (it reads them
// as RFC 2136 update records), and code can build them by leaving fields
// unset. Their wire form is malformed or meaningless (an MX without a
// target name, an A of no length), so they are not zone data. Types whose
// data may legitimately be empty are exempt.
func (v *validator) empty(rr dns.RR, id identity) bool {
	t := rr.Header().Rrtype
	if _, generic := rr.(*dns.RFC3597); generic || oneOf(t, dns.TypeNULL, dns.TypeAPL) {
		return false
	}
	zero, ok := v.zeroRdata[t]
	if !ok {
		if newRR, known := dns.TypeToRR[t]; known {
			z := newRR()
			*z.Header() = dns.RR_Header{Name: ".", Rrtype: t, Class: dns.ClassINET}
			buf := make([]byte, scratchSize)
			if n, err := dns.PackRR(z, buf, 0, nil, false); err == nil {
				zero = string(buf[11:n]) // after the root owner and fixed fields
			}
		}
		if v.zeroRdata == nil {
			v.zeroRdata = make(map[uint16]string)
		}
		v.zeroRdata[t] = zero
	}
	return id.rdata() == zero
}

// zoneWide checks what the zone must have at its apex.
func (v *validator) zoneWide() {
	if v.soas == 0 {
		v.c.add(-1, Position{}, "no SOA record at the zone apex %s", v.z.Origin)
	}
	if !v.apexNS {
		v.c.add(-1, Position{}, "no NS records at the zone apex %s", v.z.Origin)
	}
}

// placement checks each record against the other data at its owner and
// above it: CNAME exclusivity, delegations and DNAME.
func (v *validator) placement() {
	checkAbove := len(v.cuts) > 0 || len(v.dnames) > 0
	for i, key := range v.keys {
		if key == "" {
			continue
		}
		h := v.z.Records[i].Header()
		name, t := h.Name, h.Rrtype
		if key == v.apex {
			switch t {
			case dns.TypeCNAME:
				v.c.add(i, v.pos(i), "CNAME at the zone apex %s", name)
			case dns.TypeDS:
				v.c.add(i, v.pos(i), "DS at the zone apex %s: it belongs in the parent zone", name)
			}
			continue
		}
		// RFC 1034 §3.6.2, with the DNSSEC records RFC 4035 §2.5 allows.
		if v.cnames[key] > 0 && !oneOf(t, dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3) {
			v.c.add(i, v.pos(i), "%s %s: a name with a CNAME can have no other data", name, typ(t))
		}
		if v.cuts[key] && !oneOf(t, dns.TypeNS, dns.TypeDS, dns.TypeNSEC, dns.TypeRRSIG, dns.TypeA, dns.TypeAAAA) {
			v.c.add(i, v.pos(i), "%s %s at a delegation point: only NS, DS, NSEC, RRSIG and glue (A, AAAA) belong there", name, typ(t))
		}
		if t == dns.TypeDS && !v.cuts[key] {
			v.c.add(i, v.pos(i), "%s DS without NS: DS belongs only at a delegation point", name)
		}
		if !checkAbove {
			continue
		}
		// The highest cut or DNAME above a name is what hides it.
		for _, a := range ancestors(key, v.apex) {
			if v.dnames[a] > 0 {
				v.c.add(i, v.pos(i), "%s %s is below the DNAME at %s", name, typ(t), keyString(a))
				break
			}
			if v.cuts[a] {
				if !oneOf(t, dns.TypeA, dns.TypeAAAA) {
					v.c.add(i, v.pos(i), "%s %s is below the delegation at %s: only glue (A, AAAA) is allowed there", name, typ(t), keyString(a))
				}
				break
			}
		}
	}
}

// isMeta reports types that exist only in messages, never in zones: OPT
// and the RFC 6895 meta/query range (TKEY, TSIG, IXFR, AXFR, ANY, ...).
func isMeta(t uint16) bool {
	return t == dns.TypeNone || t == dns.TypeOPT || (t >= 128 && t <= 255)
}

func typ(t uint16) string { return dns.Type(t).String() }

func oneOf(t uint16, ts ...uint16) bool { return slices.Contains(ts, t) }
