package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkHandle measures parse + answer for the query mix of make bench,
// without sockets: the part of the per-query cost that is ours.
func BenchmarkHandle(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(testZone)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "host%d IN A 192.0.2.%d\nhost%d IN AAAA 2001:db8::%x\n", i, i%250, i, i)
	}
	snap, err := Build(parseTestZone(b, "example.com.", sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{Identity: "bench"})
	s.Replace([]*Zone{snap})
	for _, c := range []struct {
		name  string
		qname string
		qtype uint16
		edns  bool
	}{
		{"hit", "host42.example.com.", dns.TypeA, false},
		{"hit-edns", "host42.example.com.", dns.TypeA, true},
		{"aaaa", "host4242.example.com.", dns.TypeAAAA, true},
		{"nxdomain", "nohost.example.com.", dns.TypeA, true},
		{"wildcard", "some.thing.wild.example.com.", dns.TypeA, true},
		{"cname-slow", "www.example.com.", dns.TypeA, true},
	} {
		m := new(dns.Msg)
		m.SetQuestion(c.qname, c.qtype)
		if c.edns {
			m.SetEdns0(1232, false)
		}
		wire, _ := m.Pack()
		out := make([]byte, 0, maxMsg)
		var q query
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parseQuery(wire, &q)
				if s.handle(&q, out[:0], false, netip.Addr{}) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkHandleSignedDO measures queries with DO on a signed zone (an
// NSEC chain, an RRSIG over every RRset): a positive answer, NODATA at
// an existing name, NXDOMAIN and a wildcard expansion, each with its
// signatures and NSEC proofs.
func BenchmarkHandleSignedDO(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(testZone)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "host%d IN A 192.0.2.%d\n", i, i%250)
	}
	snap, err := Build(signTestZone(b, parseTestZone(b, "example.com.", sb.String())))
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{Identity: "bench"})
	s.Replace([]*Zone{snap})
	for _, c := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"hit", "host42.example.com.", dns.TypeA},
		{"nodata", "host42.example.com.", dns.TypeAAAA},
		{"nxdomain", "nohost.example.com.", dns.TypeA},
		{"wildcard", "some.thing.wild.example.com.", dns.TypeA},
	} {
		m := new(dns.Msg)
		m.SetQuestion(c.qname, c.qtype)
		m.SetEdns0(1232, true)
		wire, _ := m.Pack()
		out := make([]byte, 0, maxMsg)
		var q query
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parseQuery(wire, &q)
				if s.handle(&q, out[:0], false, netip.Addr{}) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
