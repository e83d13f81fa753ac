package dnsserver

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// TestFastPathEqualsSlowPath asks every name of the test zone (and names
// that expand wildcards or do not exist, in mixed case) for many types,
// with and without EDNS, and requires the pre-packed answer, whenever the
// fast path gives one, to be the very message the slow path builds.
func TestFastPathEqualsSlowPath(t *testing.T) {
	compared, _ := compareFastSlow(t, parseTestZone(t, "example.com.", testZone), false)
	if compared < 100 {
		t.Fatalf("only %d fast answers compared", compared)
	}
	t.Logf("%d fast answers identical to the slow path", compared)
}

// TestFastPathEqualsSlowPathSigned does the same on the test zone signed
// (a DNSKEY, an RRSIG over every RRset), with DO set too: positive
// answers with DO come pre-packed with their signatures and must be what
// the slow path builds; the rest (denials with their proofs, wildcards)
// must be left to it.
func TestFastPathEqualsSlowPathSigned(t *testing.T) {
	zn := signTestZone(t, parseTestZone(t, "example.com.", testZone))
	compared, withSigs := compareFastSlow(t, zn, true)
	if withSigs < 10 {
		t.Fatalf("only %d pre-packed answers with DO and RRSIGs compared (%d in all)", withSigs, compared)
	}
	t.Logf("%d fast answers identical to the slow path, %d of them with DO and RRSIGs", compared, withSigs)
}

func compareFastSlow(t *testing.T, zn *zone.Zone, withDO bool) (compared, withSigs int) {
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
	names := []string{"Some.Thing.wild.example.com.", "x.WILD.example.com.", "nope.example.com.", "deep.nope.a.b.c.example.com.", "WWW.Example.COM.", "Mail.example.com."}
	for i := range snap.nodes {
		names = append(names, presentation(snap.nodes[i].key))
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeTXT, dns.TypeCNAME, dns.TypeSRV, dns.TypeDNAME, dns.TypeNSEC, dns.TypeHINFO, dns.TypeDNSKEY}
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
					if fm.String() != sm.String() || (mode.do && string(fast) != string(slow)) {
						t.Errorf("%s %s edns=%v do=%v: fast and slow differ\nfast:\n%v\nslow:\n%v", name, dns.TypeToString[qt], mode.edns, mode.do, &fm, &sm)
					}
					compared++
					if mode.do && strings.Contains(fm.String(), "RRSIG") {
						withSigs++
					}
				}
			}
		}
	}
	return compared, withSigs
}

// signTestZone adds a DNSKEY and signs every RRset of zn with it, the
// way a signer would for answers (no NSEC chain: denials are not
// compared, the fast path leaves them to the slow one).
func signTestZone(t *testing.T, zn *zone.Zone) *zone.Zone {
	t.Helper()
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zn.Origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	recs := append(append([]dns.RR(nil), zn.Records...), key)
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
	now := uint32(time.Now().Unix())
	for _, k := range order {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: sets[k][0].Header().Ttl}, KeyTag: key.KeyTag(), SignerName: zn.Origin,
			Algorithm: key.Algorithm, Inception: now - 3600, Expiration: now + 30*86400}
		if err := sig.Sign(priv.(crypto.Signer), sets[k]); err != nil {
			t.Fatalf("signing %s %s: %v", k.name, dns.TypeToString[k.t], err)
		}
		recs = append(recs, sig)
	}
	return &zone.Zone{Origin: zn.Origin, Records: recs}
}
