package dnsserver

import (
	"fmt"
	"math/rand"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func rrlServer(t testing.TB, now *time.Time, rrl RRLConfig) *Server {
	t.Helper()
	s := New(Config{Identity: "rrl-test", Now: func() time.Time { return *now }, RRL: &rrl,
		CookieSecrets: []CookieSecret{mustSecret(t, secretA)}})
	snap, err := Build(parseTestZone(t, "example.com.", testZone))
	if err != nil {
		t.Fatal(err)
	}
	s.Replace([]*Zone{snap})
	return s
}

func plainQuery(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tally sends each query once from client and counts what came back.
type tally struct{ full, tc, badcookie, dropped int }

func (ta *tally) add(r *dns.Msg) {
	switch {
	case r == nil:
		ta.dropped++
	case r.Rcode == dns.RcodeBadCookie:
		ta.badcookie++
	case r.Truncated:
		ta.tc++
	default:
		ta.full++
	}
}

func TestRRLSlip(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := rrlServer(t, &now, RRLConfig{ResponsesPerSecond: 5, Slip: 2})
	var ta tally
	q := plainQuery(t, "example.com.", dns.TypeA)
	for i := 0; i < 1000; i++ {
		ta.add(exchangeIn(t, s, q, "192.0.2.1", false))
	}
	if ta.full != 5 || ta.tc != 497 || ta.dropped != 498 {
		t.Fatalf("1000 queries in one second at 5/s slip 2: %+v; want 5 full, 497 TC, 498 dropped", ta)
	}
	// The debt lasts the window (15 s): a second later still limited,
	// after it answered again.
	now = now.Add(time.Second)
	if r := exchangeIn(t, s, q, "192.0.2.1", false); r != nil && !r.Truncated {
		t.Fatal("answered one second into a flood's debt")
	}
	now = now.Add(16 * time.Second)
	if r := exchangeIn(t, s, q, "192.0.2.1", false); r == nil || r.Truncated {
		t.Fatal("not answered once the window passed")
	}
	// Slip 0 drops everything over the limit.
	s0 := rrlServer(t, &now, RRLConfig{ResponsesPerSecond: 5, Slip: 0})
	ta = tally{}
	for i := 0; i < 100; i++ {
		ta.add(exchangeIn(t, s0, q, "192.0.2.1", false))
	}
	if ta.full != 5 || ta.dropped != 95 {
		t.Fatalf("slip 0: %+v", ta)
	}
}

func TestRRLAccounting(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := rrlServer(t, &now, RRLConfig{ResponsesPerSecond: 5, Slip: 0})
	count := func(client string, names ...string) (full int) {
		for _, n := range names {
			if r := exchangeIn(t, s, plainQuery(t, n, dns.TypeA), client, false); r != nil {
				full++
			}
		}
		return full
	}
	// 10,000 random names in one zone: one NXDOMAIN bucket.
	rnd := rand.New(rand.NewSource(1))
	var names []string
	for i := 0; i < 10000; i++ {
		names = append(names, fmt.Sprintf("r%08x.example.com.", rnd.Uint32()))
	}
	if got := count("192.0.2.1", names...); got != 5 {
		t.Errorf("10,000 random NXDOMAIN names: %d answered, want 5 (one bucket)", got)
	}
	// Other classes from the same client have their own buckets.
	if got := count("192.0.2.1", "example.com.", "example.com.", "example.com.", "example.com.", "example.com.", "example.com."); got != 5 {
		t.Errorf("positive answers: %d, want 5", got)
	}
	if got := count("192.0.2.1", "mail.example.com."); got != 1 {
		t.Errorf("another name's positive answer: %d, want 1", got)
	}
	// Wildcard answers by the wildcard: different names, one bucket.
	if got := count("192.0.2.1", "a.wild.example.com.", "b.wild.example.com.", "c.wild.example.com.", "d.wild.example.com.", "e.wild.example.com.", "f.wild.example.com."); got != 5 {
		t.Errorf("wildcard answers: %d, want 5", got)
	}
	// Referrals by delegation.
	if got := count("192.0.2.1", "a.sub.example.com.", "b.sub.example.com.", "c.sub.example.com.", "d.sub.example.com.", "e.sub.example.com.", "x.y.sub.example.com."); got != 5 {
		t.Errorf("referrals: %d, want 5", got)
	}
	// Errors together (REFUSED for zones not served).
	if got := count("192.0.2.1", "a.org.", "b.net.", "c.de.", "d.nl.", "e.fr.", "f.it."); got != 5 {
		t.Errorf("errors: %d, want 5", got)
	}
	// The same /24 shares the buckets; the next /24 does not.
	if got := count("192.0.2.200", "nope.example.com."); got != 0 {
		t.Errorf("same /24: %d answered, want 0", got)
	}
	if got := count("192.0.3.1", "nope.example.com."); got != 1 {
		t.Errorf("another /24: %d answered, want 1", got)
	}
	// IPv6 by /56; IPv4-mapped counts as IPv4.
	if got := count("2001:db8:0:1::1", names[:6]...); got != 5 {
		t.Errorf("IPv6: %d, want 5", got)
	}
	if got := count("2001:db8:0:ff::1", "nope.example.com."); got != 0 {
		t.Errorf("same /56: %d, want 0", got)
	}
	if got := count("2001:db8:0:100::1", "nope.example.com."); got != 1 {
		t.Errorf("another /56: %d, want 1", got)
	}
	if got := count("::ffff:192.0.2.9", "nope.example.com."); got != 0 {
		t.Errorf("IPv4-mapped source of a limited /24: %d, want 0", got)
	}
}

func TestRRLNeverLimits(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := rrlServer(t, &now, RRLConfig{ResponsesPerSecond: 1, Slip: 2, Exempt: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	q := plainQuery(t, "example.com.", dns.TypeA)
	c := learn(t, s, client1)
	withCookie := cookieQuery(t, "example.com.", c)
	clientOnly := cookieQuery(t, "example.com.", cc1)
	var tcp, cookie, exempt tally
	for i := 0; i < 200; i++ {
		tcp.add(exchangeIn(t, s, q, client1, true))
		cookie.add(exchangeIn(t, s, withCookie, client1, false))
		exempt.add(exchangeIn(t, s, q, "198.51.100.7", false))
	}
	if tcp.full != 200 || cookie.full != 200 || exempt.full != 200 {
		t.Fatalf("TCP %+v, valid cookie %+v, exempt %+v: all must be answered", tcp, cookie, exempt)
	}
	// A client cookie only: the slipped replies are BADCOOKIE with a
	// fresh cookie, which then is never limited.
	var only tally
	var fresh string
	for i := 0; i < 20; i++ {
		r := exchangeIn(t, s, clientOnly, client1, false)
		only.add(r)
		if r != nil && r.Rcode == dns.RcodeBadCookie {
			fresh = replyCookie(r)
		}
	}
	if only.badcookie == 0 || only.tc != 0 || fresh == "" {
		t.Fatalf("client cookie only, limited: %+v", only)
	}
	if r := exchangeIn(t, s, cookieQuery(t, "example.com.", fresh), client1, false); r == nil || r.Rcode != dns.RcodeSuccess {
		t.Fatal("the cookie from a slipped BADCOOKIE is not honoured")
	}
}

// TestRRLTableFixed: 65,536 distinct sources do not grow the table.
func TestRRLTableFixed(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := rrlServer(t, &now, RRLConfig{ResponsesPerSecond: 5, Slip: 2, TableSize: 4096})
	entries := len(s.rrl.entries)
	q := plainQuery(t, "nope.example.com.", dns.TypeA)
	var pq query
	out := make([]byte, 0, maxMsg)
	send := func(i int) {
		parseQuery(q, &pq)
		a := netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		s.handle(&pq, out[:0], false, a)
	}
	for i := 0; i < 1000; i++ {
		send(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(1, func() {
		for i := 0; i < 65536; i++ {
			send(i)
		}
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(s.rrl.entries) != entries || cap(s.rrl.entries) != entries {
		t.Fatalf("table grew from %d to %d entries", entries, len(s.rrl.entries))
	}
	if allocs != 0 {
		t.Errorf("%v allocations for 65,536 sources", allocs)
	}
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("table %d entries (%d bytes); heap change over 65,536 sources: %d bytes", entries, s.rrl.tableBytes(), grew)
	if grew > 256<<10 {
		t.Errorf("heap grew %d bytes", grew)
	}
}

func BenchmarkRRL(b *testing.B) {
	recv := time.Now().UnixNano()
	for _, c := range []struct {
		name string
		rrl  *RRLConfig
	}{{"off", nil}, {"on", &RRLConfig{ResponsesPerSecond: 1 << 30, Slip: 2}}} {
		s := New(Config{Identity: "bench", RRL: c.rrl})
		snap, _ := Build(parseTestZone(b, "example.com.", testZone))
		s.Replace([]*Zone{snap})
		wire := plainQuery(b, "example.com.", dns.TypeA)
		out := make([]byte, 0, maxMsg)
		var q query
		a := netip.MustParseAddr("192.0.2.1")
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parseQuery(wire, &q)
				q.recv = recv // as the UDP loop sets it, once per batch
				if s.handle(&q, out[:0], false, a) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
