package dnsserver

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

// BenchmarkHandle measures parse + answer for the query mix of make bench,
// without sockets: the part of the per-query cost that is ours.
func BenchmarkHandle(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(testZone)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "host%d IN A 192.0.2.%d\nhost%d IN AAAA 2001:db8::%x\n", i, i%250, i, i)
	}
	s := benchServer(b, parseTestZone(b, "example.com.", sb.String()))
	for _, c := range []benchCase{
		{"hit", "host42.example.com.", dns.TypeA, false},
		{"hit-edns", "host42.example.com.", dns.TypeA, true},
		{"aaaa", "host4242.example.com.", dns.TypeAAAA, true},
		{"nxdomain", "nohost.example.com.", dns.TypeA, true},
		{"wildcard", "some.thing.wild.example.com.", dns.TypeA, true},
		{"cname-slow", "www.example.com.", dns.TypeA, true},
	} {
		c.run(b, s, "", false)
	}
}

// BenchmarkHandleSpread answers make bench's query mix (40% A, 20% AAAA
// at a host, 20% NXDOMAIN, 20% below a wildcard) over a zone of 100,000
// hosts, each query at another name: the names' index and nodes do not
// stay in the cache as they do when one name is asked over and over.
func BenchmarkHandleSpread(b *testing.B) {
	const hosts = 100000
	var sb strings.Builder
	sb.WriteString(testZone)
	for i := range hosts {
		fmt.Fprintf(&sb, "host%d IN A 192.0.2.%d\nhost%d IN AAAA 2001:db8::%x:%x\n", i, i%250, i, i>>16, i&0xffff)
	}
	s := benchServer(b, parseTestZone(b, "example.com.", sb.String()))
	rng := rand.New(rand.NewPCG(1, 2))
	wires := make([][]byte, 1<<16)
	for i := range wires {
		m := new(dns.Msg)
		switch k := rng.IntN(10); {
		case k < 4:
			m.SetQuestion(fmt.Sprintf("host%d.example.com.", rng.IntN(hosts)), dns.TypeA)
		case k < 6:
			m.SetQuestion(fmt.Sprintf("host%d.example.com.", rng.IntN(hosts)), dns.TypeAAAA)
		case k < 8:
			m.SetQuestion(fmt.Sprintf("nx%d.example.com.", rng.Uint32()), dns.TypeA)
		default:
			m.SetQuestion(fmt.Sprintf("w%d.wild.example.com.", rng.Uint32()), dns.TypeA)
		}
		m.SetEdns0(1232, false)
		wires[i], _ = m.Pack()
	}
	out := make([]byte, 0, maxMsg)
	var q query
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		parseQuery(wires[i&(len(wires)-1)], &q)
		if s.handle(&q, out[:0], false, netip.Addr{}) == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkHandleSignedDO measures queries with DO on a signed zone (an
// RRSIG over every RRset), signed with NSEC and with NSEC3: a positive
// answer, NODATA at an existing name and at an empty non-terminal,
// NXDOMAIN, a wildcard expansion and a wildcard's NODATA, each with its
// signatures and its proofs. The NSEC zone's cases keep their old names;
// the NSEC3 zone's are prefixed "nsec3-".
func BenchmarkHandleSignedDO(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(testZone)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&sb, "host%d IN A 192.0.2.%d\n", i, i%250)
	}
	for _, chain := range []struct {
		prefix string
		opt    signOptions
	}{{"", signOptions{}}, {"nsec3-", signOptions{nsec3: true}}} {
		s := benchServer(b, signZone(b, parseTestZone(b, "example.com.", sb.String()), chain.opt))
		for _, c := range []benchCase{
			{"hit", "host42.example.com.", dns.TypeA, true},
			{"nodata", "host42.example.com.", dns.TypeAAAA, true},
			{"nodata-ent", "b.c.example.com.", dns.TypeA, true},
			{"nxdomain", "nohost.example.com.", dns.TypeA, true},
			{"wildcard", "some.thing.wild.example.com.", dns.TypeA, true},
			{"wildcard-nodata", "some.thing.wild.example.com.", dns.TypeTXT, true},
		} {
			c.run(b, s, chain.prefix, true)
		}
	}
}

// benchServer serves a zone to benchmark queries against.
func benchServer(b *testing.B, zn *zone.Zone) *Server {
	snap, err := Build(zn)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{Identity: "bench"})
	s.Replace([]*Zone{snap})
	return s
}

// benchCase is one query to benchmark.
type benchCase struct {
	name  string
	qname string
	qtype uint16
	edns  bool
}

// run benchmarks the query (with DO when do) as prefix+c.name.
func (c benchCase) run(b *testing.B, s *Server, prefix string, do bool) {
	m := new(dns.Msg)
	m.SetQuestion(c.qname, c.qtype)
	if c.edns {
		m.SetEdns0(1232, do)
	}
	wire, _ := m.Pack()
	out := make([]byte, 0, maxMsg)
	var q query
	b.Run(prefix+c.name, func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			parseQuery(wire, &q)
			if s.handle(&q, out[:0], false, netip.Addr{}) == nil {
				b.Fatal("no answer")
			}
		}
	})
}
