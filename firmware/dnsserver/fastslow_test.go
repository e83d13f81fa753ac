package dnsserver

import (
	"testing"

	"github.com/miekg/dns"
)

// TestFastPathEqualsSlowPath asks every name of the test zone (and names
// that expand wildcards or do not exist, in mixed case) for many types,
// with and without EDNS, and requires the pre-packed answer, whenever the
// fast path gives one, to be the very message the slow path builds.
func TestFastPathEqualsSlowPath(t *testing.T) {
	snap, err := Build(parseTestZone(t, "example.com.", testZone))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Identity: "eq"})
	s.Replace([]*Zone{snap})
	names := []string{"Some.Thing.wild.example.com.", "x.WILD.example.com.", "nope.example.com.", "deep.nope.a.b.c.example.com."}
	for i := range snap.nodes {
		names = append(names, presentation(snap.nodes[i].key))
	}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeTXT, dns.TypeCNAME, dns.TypeSRV, dns.TypeDNAME, dns.TypeNSEC, dns.TypeHINFO}
	fastOut := make([]byte, 0, maxMsg)
	slowOut := make([]byte, 0, maxMsg)
	compared := 0
	for _, name := range names {
		for _, qt := range types {
			for _, edns := range []bool{false, true} {
				m := new(dns.Msg)
				m.SetQuestion(name, qt)
				m.Id = 4242
				m.RecursionDesired = true
				if edns {
					m.SetEdns0(1232, false)
				}
				wire, _ := m.Pack()
				var q query
				parseQuery(wire, &q)
				fast := s.fast(&q, fastOut[:0], 1232)
				if fast == nil {
					continue
				}
				slow := s.slow(&q, slowOut[:0], 1232, false)
				var fm, sm dns.Msg
				if err := fm.Unpack(fast); err != nil {
					t.Fatalf("%s %s: fast answer does not parse: %v", name, dns.TypeToString[qt], err)
				}
				if err := sm.Unpack(slow); err != nil {
					t.Fatalf("%s %s: slow answer does not parse: %v", name, dns.TypeToString[qt], err)
				}
				if fm.String() != sm.String() {
					t.Errorf("%s %s edns=%v: fast and slow differ\nfast:\n%v\nslow:\n%v", name, dns.TypeToString[qt], edns, &fm, &sm)
				}
				compared++
			}
		}
	}
	if compared < 100 {
		t.Fatalf("only %d fast answers compared", compared)
	}
	t.Logf("%d fast answers identical to the slow path", compared)
}
