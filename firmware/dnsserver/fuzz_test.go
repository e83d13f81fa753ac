package dnsserver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandle feeds arbitrary bytes to the query path, as a UDP datagram
// and as a TCP message. Whatever arrives, the server must not panic, and
// every reply must be a well-formed DNS message that fits the limit and
// answers the query's ID.
func FuzzHandle(f *testing.F) {
	s := fuzzServer(f)
	out := make([]byte, 0, maxMsg)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, tcp := range []bool{false, true} {
			var q query
			if !parseQuery(msg, &q) {
				return
			}
			resp := s.handle(&q, out[:0], tcp, netip.Addr{})
			if resp == nil {
				continue
			}
			if !tcp && len(resp) > DefaultMaxUDPSize {
				t.Fatalf("UDP reply of %d bytes", len(resp))
			}
			r := new(dns.Msg)
			if err := r.Unpack(resp); err != nil {
				t.Fatalf("reply does not parse: %v\nquery %x\nreply %x", err, msg, resp)
			}
			if r.Id != q.id || !r.Response {
				t.Fatalf("reply ID %d QR %v for query ID %d", r.Id, r.Response, q.id)
			}
		}
	})
}

// FuzzFastPathEqualsSlowPath feeds arbitrary queries to both paths: when
// the fast path answers, its reply must be, byte for byte, the one the
// slow path builds (TestFastPathEqualsSlowPath with names, types and
// sizes nobody listed).
func FuzzFastPathEqualsSlowPath(f *testing.F) {
	s := fuzzServer(f)
	fastOut := make([]byte, 0, maxMsg)
	slowOut := make([]byte, 0, maxMsg)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, limit := range []int{512, 1232, maxMsg} {
			var q query
			if !parseQuery(msg, &q) {
				return
			}
			fast := s.fast(&q, fastOut[:0], limit)
			if fast == nil {
				continue
			}
			if slow := s.slow(&q, slowOut[:0], limit, limit == maxMsg); string(fast) != string(slow) {
				t.Fatalf("limit %d: fast and slow differ\nquery %x\nfast %x\nslow %x", limit, msg, fast, slow)
			}
		}
	})
}

// fuzzServer serves the test zone, the same zone signed with NSEC and
// with NSEC3 (a salt, iterations, opt-out), for DO answers with their
// proofs, and seeds f with queries for each.
func fuzzServer(f *testing.F) *Server {
	snap, err := Build(parseTestZone(f, "example.com.", testZone))
	if err != nil {
		f.Fatal(err)
	}
	signedAs := func(origin string, opt signOptions) *Zone {
		z, err := Build(signZone(f, parseTestZone(f, origin, strings.Replace(testZone, "$ORIGIN example.com.", "$ORIGIN "+origin, 1)), opt))
		if err != nil {
			f.Fatal(err)
		}
		return z
	}
	s := New(Config{Identity: "fuzz"})
	s.Replace([]*Zone{snap, signedAs("signed.test.", signOptions{}),
		signedAs("nsec3.test.", signOptions{nsec3: true, optOut: true, salt: "AABBCCDD", iterations: 5})})
	for _, seed := range []struct {
		name string
		t    uint16
		edns bool
		do   bool
	}{
		{"example.com.", dns.TypeA, false, false},
		{"x.wild.example.com.", dns.TypeMX, true, false},
		{"www.example.com.", dns.TypeA, true, true},
		{"big.example.com.", dns.TypeTXT, false, false},
		{"www.sub.example.com.", dns.TypeA, true, true},
		{"a.dn.example.com.", dns.TypeA, false, false},
		{"nope.example.com.", dns.TypeANY, true, false},
		{"id.server.", dns.TypeTXT, false, false},
		{"x.wild.signed.test.", dns.TypeA, true, true},
		{"x.wild.signed.test.", dns.TypeTXT, true, true},
		{"nope.a.b.c.signed.test.", dns.TypeA, true, true},
		{"mail.signed.test.", dns.TypeAAAA, true, true},
		{"x.wild.nsec3.test.", dns.TypeA, true, true},
		{"x.wild.nsec3.test.", dns.TypeTXT, true, true},
		{"nope.a.b.c.nsec3.test.", dns.TypeA, true, true},
		{"mail.nsec3.test.", dns.TypeAAAA, true, true},
		{"optout.nsec3.test.", dns.TypeA, true, true},
	} {
		m := new(dns.Msg)
		m.SetQuestion(seed.name, seed.t)
		if seed.edns {
			m.SetEdns0(4096, seed.do)
		}
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0})
	return s
}
