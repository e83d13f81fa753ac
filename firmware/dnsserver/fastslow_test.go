package dnsserver

import (
	"crypto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// TestFastPathEqualsSlowPath asks every name of the test zone (and names
// that expand wildcards or do not exist, in mixed case) for many types,
// with and without EDNS, and requires the pre-packed answer, whenever the
// fast path gives one, to be the very message the slow path builds, byte
// for byte. The zone is tried with other SOAs too: names in upper case
// (which the question's lower-cased names do not compress), a mailbox
// under the name server's name (which compresses against it).
func TestFastPathEqualsSlowPath(t *testing.T) {
	for _, v := range soaVariants {
		t.Run(v.name, func(t *testing.T) {
			c := compareFastSlow(t, parseTestZone(t, "example.com.", v.zone()), false)
			if c.compared < 100 {
				t.Fatalf("only %d fast answers compared", c.compared)
			}
			t.Logf("%d fast answers identical to the slow path", c.compared)
		})
	}
}

// soaVariants are the test zone with its own SOA and with others.
var soaVariants = []soaVariant{
	{"soa", ""},
	{"soa-upper", "@ IN SOA NS1.Example.COM. HostMaster.EXAMPLE.com. 1 3600 900 1209600 300"},
	{"soa-shared", "@ IN SOA ns1 hostmaster.ns1 1 3600 900 1209600 300"},
}

type soaVariant struct{ name, soa string }

func (v soaVariant) zone() string {
	if v.soa == "" {
		return testZone
	}
	return strings.Replace(testZone, "@ IN SOA ns1 hostmaster 1 3600 900 1209600 300", v.soa, 1)
}

// TestFastPathEqualsSlowPathSigned does the same on the test zone signed
// (a DNSKEY, an NSEC or NSEC3 chain, an RRSIG over every RRset), with DO
// set too: positive answers with DO come pre-packed with their
// signatures, and denials (NODATA, NXDOMAIN, a wildcard's NODATA) and
// wildcard answers with their NSEC or NSEC3 proofs are packed by the fast
// path, and each must be what the slow path builds. With upper, the
// names the slow path does not compress (NSEC next names, RRSIG signers)
// are in upper case, so they are remembered for compression under names
// no question has. The NSEC3 chains are hashed with RFC 9276's
// parameters, and with a salt, iterations and opt-out (a NODATA at an
// empty non-terminal with no NSEC3 of its own then carries the closest
// provable encloser proof); a chain hashed more than maxFastIterations
// times leaves its denials to the slow path.
func TestFastPathEqualsSlowPathSigned(t *testing.T) {
	for _, v := range soaVariants {
		for _, c := range []struct {
			name string
			opt  signOptions
		}{
			{"nsec", signOptions{}},
			{"nsec-upper", signOptions{upper: true}},
			{"nsec3", signOptions{nsec3: true}},
			{"nsec3-optout", signOptions{nsec3: true, upper: true, optOut: true, salt: "AABBCCDD", iterations: 5}},
			{"nsec3-costly", signOptions{nsec3: true, iterations: maxFastIterations + 1}},
		} {
			t.Run(v.name+"/"+c.name, func(t *testing.T) {
				zn := signZone(t, parseTestZone(t, "example.com.", v.zone()), c.opt)
				r := compareFastSlow(t, zn, true)
				denials := r.nodata + r.nxdomain + r.wildcard
				t.Logf("%d fast answers identical to the slow path, %d of them with DO and RRSIGs; with DO: %d NODATA (%d with a closest provable encloser), %d NXDOMAIN, %d wildcard expansions",
					r.compared, r.withSigs, r.nodata, r.provable, r.nxdomain, r.wildcard)
				if r.withSigs < 10 {
					t.Fatalf("only %d pre-packed answers with DO and RRSIGs compared", r.withSigs)
				}
				if c.opt.iterations > maxFastIterations {
					if denials != 0 {
						t.Fatalf("the fast path gave %d denials or wildcard answers hashing names %d times", denials, c.opt.iterations)
					}
					return
				}
				if denials < 20 || r.nodata < 5 || r.nxdomain < 5 || r.wildcard < 2 {
					t.Fatalf("the fast path gave too few denials or wildcard answers with DO: %d NODATA, %d NXDOMAIN, %d wildcard expansions",
						r.nodata, r.nxdomain, r.wildcard)
				}
				if c.opt.optOut && r.provable == 0 {
					t.Fatal("the fast path gave no NODATA with a closest provable encloser proof")
				}
			})
		}
	}
}

// fastSlow counts the fast answers compareFastSlow compared: in all,
// with DO and RRSIGs, and among those with DO, the denials and wildcard
// expansions (which carry NSEC or NSEC3 proofs), and the NODATA with two
// NSEC3 records, a closest provable encloser proof.
type fastSlow struct {
	compared, withSigs         int
	nodata, nxdomain, wildcard int
	provable                   int
}

func compareFastSlow(t *testing.T, zn *zone.Zone, withDO bool) (c fastSlow) {
	t.Helper()
	snap, err := Build(zn)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Signed() != withDO {
		t.Fatalf("snapshot signed=%v", snap.Signed())
	}
	s := New(Config{Identity: "eq"})
	s.Replace([]*Zone{snap})
	names := []string{"Some.Thing.wild.example.com.", "x.WILD.example.com.", "nope.example.com.", "deep.nope.a.b.c.example.com.", "WWW.Example.COM.", "Mail.example.com.",
		// Wildcard expansions before and after the wildcard in
		// canonical order; names that share a label below the apex
		// with the SOA's names (ns1, hostmaster) or a record's, and
		// names that sort before and after every name of the zone.
		"!.wild.example.com.", "zz.z.wild.example.com.", "x.ns1.example.com.", "hostmaster.example.com.", "A.Hostmaster.example.com.",
		"x.a.b.c.example.com.", "c.example.com.", "0.example.com.", "zzzz.example.com.", "x.mail.example.com.", "-.example.com.", "*.example.com."}
	for i := range snap.nodes {
		names = append(names, presentation(snap.nodes[i].key))
	}
	if c := snap.nsec3; c != nil {
		// NSEC3 owners are no names of the zone: NXDOMAIN.
		for i := range c.entries {
			names = append(names, c.ownerName(&c.entries[i], snap.apex))
		}
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeTXT, dns.TypeCNAME, dns.TypeSRV, dns.TypeDNAME, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeHINFO, dns.TypeDNSKEY}
	modes := []struct{ edns, do bool }{{false, false}, {true, false}}
	if withDO {
		modes = append(modes, struct{ edns, do bool }{true, true})
	}
	fastOut := make([]byte, 0, maxMsg)
	slowOut := make([]byte, 0, maxMsg)
	for _, name := range names {
		for _, qt := range types {
			for _, mode := range modes {
				for _, size := range []uint16{512, 1232} {
					m := new(dns.Msg)
					m.SetQuestion(name, qt)
					m.Id = 4242
					m.RecursionDesired = true
					if mode.edns {
						m.SetEdns0(size, mode.do)
					}
					wire, _ := m.Pack()
					var q query
					parseQuery(wire, &q)
					limit := 512
					if mode.edns {
						limit = int(size)
					}
					fast := s.fast(&q, fastOut[:0], limit)
					if fast == nil {
						continue
					}
					slow := s.slow(&q, slowOut[:0], limit, false)
					var fm, sm dns.Msg
					if err := fm.Unpack(fast); err != nil {
						t.Fatalf("%s %s: fast answer does not parse: %v", name, dns.TypeToString[qt], err)
					}
					if err := sm.Unpack(slow); err != nil {
						t.Fatalf("%s %s: slow answer does not parse: %v", name, dns.TypeToString[qt], err)
					}
					if string(fast) != string(slow) {
						t.Errorf("%s %s edns=%v do=%v size=%d: fast and slow differ\nfast:\n%v\nslow:\n%v\nfast %x\nslow %x", name, dns.TypeToString[qt], mode.edns, mode.do, size, &fm, &sm, fast, slow)
					}
					c.compared++
					if !mode.do {
						continue
					}
					if strings.Contains(fm.String(), "RRSIG") {
						c.withSigs++
					}
					nsec, nsec3 := false, 0
					for _, rr := range sm.Ns {
						nsec = nsec || rr.Header().Rrtype == dns.TypeNSEC
						if rr.Header().Rrtype == dns.TypeNSEC3 {
							nsec3++
						}
					}
					switch {
					case !nsec && nsec3 == 0:
					case sm.Rcode == dns.RcodeNameError:
						c.nxdomain++
					case len(sm.Answer) == 0:
						c.nodata++
						if nsec3 == 2 && !strings.HasPrefix(name, "*") && !strings.Contains(strings.ToLower(name), "wild") {
							c.provable++
						}
					default:
						c.wildcard++
					}
					// The proof of a name's absence (coveringNSEC
					// finds it for both paths) must hold it.
					if nsec && (sm.Rcode == dns.RcodeNameError || len(sm.Answer) > 0) && !nsecCovers(sm.Ns, name) {
						t.Errorf("%s %s: no NSEC covers the name\n%v", name, dns.TypeToString[qt], &sm)
					}
				}
			}
		}
	}
	return c
}

// nsecCovers reports whether one of the NSEC records in rrs covers name:
// it sorts after the owner and before the next name, or, for the last
// record of the chain, after the owner or before the apex it points to.
func nsecCovers(rrs []dns.RR, name string) bool {
	w := mustWire(name)
	for _, rr := range rrs {
		nsec, ok := rr.(*dns.NSEC)
		if !ok {
			continue
		}
		owner, next := mustWire(nsec.Hdr.Name), mustWire(nsec.NextDomain)
		after, before := canonicalCompare(owner, w) < 0, canonicalCompare(w, next) < 0
		if after && before || canonicalCompare(owner, next) >= 0 && (after || before) {
			return true
		}
	}
	return false
}

// signTestZone adds a DNSKEY and an NSEC chain to zn and signs every
// RRset of the result with the key, the way a signer would for answers
// and denials: each authoritative name (not an empty non-terminal, not
// glue below a delegation) gets an NSEC naming the next one in canonical
// order, its types, RRSIG and NSEC.
func signTestZone(t testing.TB, zn *zone.Zone) *zone.Zone {
	return signZone(t, zn, signOptions{})
}

// signOptions vary how signZone signs: upper writes the NSEC next names
// and the RRSIG signer name in upper case (names the slow path does not
// compress but still adds to its compression map, in a case the
// question never has).
// nsec3 makes an NSEC3 chain instead of the NSEC one, hashed with salt
// (hex) and iterations (RFC 9276's: none and none); with optOut, the
// chain skips insecure delegations and the empty non-terminals that are
// there only for them (RFC 5155 §6), and a delegation below an empty
// non-terminal is added to the zone for it.
type signOptions struct {
	upper, nsec3 bool
	optOut       bool
	salt         string
	iterations   uint16
}

func signZone(t testing.TB, zn *zone.Zone, opt signOptions) *zone.Zone {
	t.Helper()
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zn.Origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	recs := append(append([]dns.RR(nil), zn.Records...), key)
	if opt.nsec3 {
		if opt.optOut {
			recs = append(recs, &dns.NS{Hdr: dns.RR_Header{Name: "deleg.optout." + zn.Origin, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600},
				Ns: "ns.other.net."})
		}
		recs = append(recs, &dns.NSEC3PARAM{Hdr: dns.RR_Header{Name: zn.Origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET},
			Hash: dns.SHA1, Iterations: opt.iterations, SaltLength: uint8(len(opt.salt) / 2), Salt: opt.salt})
		recs = append(recs, nsec3TestChain(t, zn.Origin, recs, opt)...)
	} else {
		recs = append(recs, nsecChain(t, zn.Origin, recs, opt)...)
	}
	type setKey struct {
		name string
		t    uint16
	}
	sets := map[setKey][]dns.RR{}
	var order []setKey
	for _, rr := range recs {
		k := setKey{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	signer := zn.Origin
	if opt.upper {
		signer = strings.ToUpper(signer)
	}
	now := uint32(time.Now().Unix())
	for _, k := range order {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: sets[k][0].Header().Ttl}, KeyTag: key.KeyTag(), SignerName: signer,
			Algorithm: key.Algorithm, Inception: now - 3600, Expiration: now + 30*86400}
		if err := sig.Sign(priv.(crypto.Signer), sets[k]); err != nil {
			t.Fatalf("signing %s %s: %v", k.name, dns.TypeToString[k.t], err)
		}
		recs = append(recs, sig)
	}
	return &zone.Zone{Origin: zn.Origin, Records: recs}
}

// zoneTypes returns the types at each owner (wire) of recs, the names
// that are authoritative (not below a delegation) with the empty
// non-terminals above them, and the SOA minimum TTL.
func zoneTypes(t testing.TB, origin string, recs []dns.RR) (types map[string][]uint16, names []string, minTTL uint32) {
	t.Helper()
	types = map[string][]uint16{}
	minTTL = 3600
	for _, rr := range recs {
		w := mustWire(rr.Header().Name)
		if !slices.Contains(types[w], rr.Header().Rrtype) {
			types[w] = append(types[w], rr.Header().Rrtype)
		}
		if soa, ok := rr.(*dns.SOA); ok {
			minTTL = soa.Minttl
		}
	}
	apex := mustWire(origin)
	belowCut := func(w string) bool {
		for p := parentName(w); p != apex && len(p) > 1; p = parentName(p) {
			if slices.Contains(types[p], dns.TypeNS) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for w := range types {
		if w != apex && (!isBelow(w, apex) || belowCut(w)) {
			continue
		}
		for p := w; !seen[p]; p = parentName(p) {
			seen[p] = true
			names = append(names, p)
			if p == apex {
				break
			}
		}
	}
	return types, names, minTTL
}

// nsec3TestChain returns the NSEC3 records of a zone holding recs: one per
// authoritative name and empty non-terminal (with opt.optOut, not for
// insecure delegations and the empty non-terminals only they are below),
// hashed with opt.salt and opt.iterations, in hash order, each naming
// the next.
func nsec3TestChain(t testing.TB, origin string, recs []dns.RR, opt signOptions) []dns.RR {
	t.Helper()
	types, names, minTTL := zoneTypes(t, origin, recs)
	apex := mustWire(origin)
	var flags uint8
	if opt.optOut {
		flags = 1
		insecure := func(w string) bool {
			return w != apex && slices.Contains(types[w], dns.TypeNS) && !slices.Contains(types[w], dns.TypeDS)
		}
		// A name stays when it is secure data or has some below it.
		names = slices.DeleteFunc(slices.Clone(names), func(w string) bool {
			return !slices.ContainsFunc(names, func(d string) bool {
				return (d == w || isBelow(d, w)) && len(types[d]) > 0 && !insecure(d)
			})
		})
	}
	hashes := map[string]string{}
	var order []string
	for _, w := range names {
		h := dns.HashName(presentation(w), dns.SHA1, opt.iterations, opt.salt)
		hashes[h] = w
		order = append(order, h)
	}
	slices.Sort(order)
	var out []dns.RR
	for i, h := range order {
		var bitmap []uint16
		if ts := types[hashes[h]]; len(ts) > 0 {
			bitmap = append(slices.Clone(ts), dns.TypeRRSIG)
			slices.Sort(bitmap)
		}
		out = append(out, &dns.NSEC3{
			Hdr:  dns.RR_Header{Name: strings.ToLower(h) + "." + origin, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: minTTL},
			Hash: dns.SHA1, Flags: flags, Iterations: opt.iterations, SaltLength: uint8(len(opt.salt) / 2), Salt: opt.salt,
			HashLength: 20, NextDomain: order[(i+1)%len(order)], TypeBitMap: slices.Compact(bitmap),
		})
	}
	return out
}

// nsecChain returns the NSEC records of a zone holding recs: one per
// authoritative name, in canonical order (RFC 4034 §6.1), the last
// pointing back to the apex.
func nsecChain(t testing.TB, origin string, recs []dns.RR, opt signOptions) []dns.RR {
	t.Helper()
	types, all, minTTL := zoneTypes(t, origin, recs)
	var names []string
	for _, w := range all {
		if len(types[w]) > 0 { // not an empty non-terminal
			names = append(names, w)
		}
	}
	apex := mustWire(origin)
	slices.SortFunc(names, func(a, b string) int { return canonicalCompare(a, b) })
	if len(names) == 0 || names[0] != apex {
		t.Fatalf("NSEC chain of %s does not start at the apex: %q", origin, names)
	}
	var out []dns.RR
	for i, w := range names {
		next := presentation(names[(i+1)%len(names)])
		if opt.upper {
			next = strings.ToUpper(next)
		}
		bitmap := append(slices.Clone(types[w]), dns.TypeRRSIG, dns.TypeNSEC)
		slices.Sort(bitmap)
		out = append(out, &dns.NSEC{
			Hdr:        dns.RR_Header{Name: presentation(w), Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: minTTL},
			NextDomain: next,
			TypeBitMap: slices.Compact(bitmap),
		})
	}
	return out
}
