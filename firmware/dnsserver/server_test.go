package dnsserver

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/zone"
)

var testZone = `$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 1209600 300
@ IN NS ns1
@ IN NS ns2.other.net.
@ IN MX 10 mail
@ IN A 192.0.2.1
ns1 IN A 192.0.2.53
mail IN A 192.0.2.25
www IN CNAME @
chain IN CNAME www
away IN CNAME www.other.net.
*.wild IN A 192.0.2.80
*.wild IN MX 10 mail
a.b.c IN TXT "deep"
sub IN NS ns.sub
ns.sub IN A 192.0.2.99
dn IN DNAME example.net.
big IN TXT "` + strings.Repeat("x", 200) + `"
big IN TXT "` + strings.Repeat("y", 200) + `"
big IN TXT "` + strings.Repeat("z", 200) + `"
`

func parseTestZone(t testing.TB, origin, text string) *zone.Zone {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	z := &zone.Zone{Origin: origin}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.Records = append(z.Records, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return z
}

func startTestServer(t testing.TB, zones ...*zone.Zone) (*Server, string) {
	t.Helper()
	return startTestServerWith(t, Config{Listen: []string{"127.0.0.1:0"}, Identity: "test-node", UDPWorkers: 1}, zones...)
}

func startTestServerWith(t testing.TB, cfg Config, zones ...*zone.Zone) (*Server, string) {
	t.Helper()
	s := New(cfg)
	var snaps []*Zone
	for _, z := range zones {
		snap, err := Build(z)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, snap)
	}
	s.Replace(snaps)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s, s.Addrs()[0]
}

func ask(t testing.TB, addr, name string, qtype uint16, tweak ...func(*dns.Msg)) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	for _, f := range tweak {
		f(m)
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

func TestAnswers(t *testing.T) {
	_, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	cases := []struct {
		name    string
		qtype   uint16
		rcode   int
		aa      bool
		answers int
		ns      int
		first   string // substring of the first answer
	}{
		{"example.com.", dns.TypeA, 0, true, 1, 0, "192.0.2.1"},
		{"EXample.COM.", dns.TypeMX, 0, true, 1, 0, "mail.example.com."},
		{"example.com.", dns.TypeTXT, 0, true, 0, 1, ""},
		{"nope.example.com.", dns.TypeA, dns.RcodeNameError, true, 0, 1, ""},
		{"www.example.com.", dns.TypeA, 0, true, 2, 0, "CNAME"},
		{"chain.example.com.", dns.TypeA, 0, true, 3, 0, "CNAME"},
		{"away.example.com.", dns.TypeA, 0, true, 1, 0, "www.other.net."},
		{"x.wild.example.com.", dns.TypeA, 0, true, 1, 0, "x.wild.example.com.\t3600\tIN\tA\t192.0.2.80"},
		{"longer.name.wild.example.com.", dns.TypeMX, 0, true, 1, 0, "longer.name.wild.example.com.\t3600\tIN\tMX\t10 mail.example.com."},
		{"x.wild.example.com.", dns.TypeAAAA, 0, true, 0, 1, ""},
		{"b.c.example.com.", dns.TypeA, 0, true, 0, 1, ""},
		{"www.sub.example.com.", dns.TypeA, 0, false, 0, 1, ""},
		{"x.dn.example.com.", dns.TypeA, 0, true, 2, 0, "DNAME"},
		{"example.org.", dns.TypeA, dns.RcodeRefused, false, 0, 0, ""},
	}
	for _, c := range cases {
		r := ask(t, addr, c.name, c.qtype)
		if r.Rcode != c.rcode || r.Authoritative != c.aa || len(r.Answer) != c.answers || len(r.Ns) != c.ns {
			t.Errorf("%s %s: got rcode %d aa %v an %d ns %d, want %d %v %d %d\n%v", c.name, dns.TypeToString[c.qtype], r.Rcode, r.Authoritative, len(r.Answer), len(r.Ns), c.rcode, c.aa, c.answers, c.ns, r)
			continue
		}
		if r.Question[0].Name != c.name {
			t.Errorf("%s: question echoed as %q", c.name, r.Question[0].Name)
		}
		if c.first != "" && !strings.Contains(strings.ToLower(r.Answer[0].String()), strings.ToLower(c.first)) {
			t.Errorf("%s: first answer %q lacks %q", c.name, r.Answer[0], c.first)
		}
	}
}

func TestTruncationAndEDNS(t *testing.T) {
	_, addr := startTestServer(t, parseTestZone(t, "example.com.", testZone))
	r := ask(t, addr, "big.example.com.", dns.TypeTXT)
	if !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("600-byte answer over plain UDP: want TC and no answer, got %v", r)
	}
	r = ask(t, addr, "big.example.com.", dns.TypeTXT, func(m *dns.Msg) { m.SetEdns0(1232, false) })
	if r.Truncated || len(r.Answer) != 3 || r.IsEdns0() == nil {
		t.Fatalf("with EDNS 1232: want full answer and OPT, got %v", r)
	}
	c := &dns.Client{Net: "tcp"}
	m := new(dns.Msg)
	m.SetQuestion("big.example.com.", dns.TypeTXT)
	r, _, err := c.Exchange(m, addr)
	if err != nil || r.Truncated || len(r.Answer) != 3 {
		t.Fatalf("TCP: %v %v", err, r)
	}
	r = ask(t, addr, "example.com.", dns.TypeA, func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) })
	if r.Rcode != dns.RcodeBadVers {
		t.Fatalf("EDNS version 1: want BADVERS, got %v", r)
	}
	r = ask(t, addr, "example.com.", dns.TypeA, func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	})
	var nsid string
	for _, o := range r.IsEdns0().Option {
		if n, ok := o.(*dns.EDNS0_NSID); ok {
			nsid = n.Nsid
		}
	}
	if nsid != "746573742d6e6f6465" { // hex of "test-node"
		t.Fatalf("NSID: got %q", nsid)
	}
	m = new(dns.Msg)
	m.SetQuestion("id.server.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	r, _, err = (&dns.Client{}).Exchange(m, addr)
	if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), "test-node") {
		t.Fatalf("CHAOS id.server: %v %v", err, r)
	}
	m.Question[0].Name = "version.bind."
	r, _, _ = (&dns.Client{}).Exchange(m, addr)
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("version.bind hidden by default: got %v", r)
	}
}

// TestWildcardBindRepliesFromDestination binds 0.0.0.0 and queries a
// second loopback address: the reply must come from that address, as an
// anycast address on lo needs (a client drops replies from elsewhere).
func TestWildcardBindRepliesFromDestination(t *testing.T) {
	s, _ := startTestServerWith(t, Config{Listen: []string{"0.0.0.0:0"}, UDPWorkers: 1}, parseTestZone(t, "example.com.", testZone))
	_, port, _ := net.SplitHostPort(s.Addrs()[0])
	for _, dst := range []string{"127.0.0.1", "127.0.0.2"} {
		// dns.Client uses a connected socket: the kernel drops replies
		// from any other source address, so an answer proves the source.
		r := ask(t, dst+":"+port, "example.com.", dns.TypeA)
		if len(r.Answer) != 1 {
			t.Fatalf("via %s: %v", dst, r)
		}
	}
}
