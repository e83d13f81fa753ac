package dnsserver

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mustSecret(t testing.TB, s string) CookieSecret {
	t.Helper()
	k, err := ParseCookieSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cookieServer is a server (no sockets) answering example.com with the
// given secrets, at the time *now, with the clock synced as *synced says.
func cookieServer(t testing.TB, now *time.Time, synced *bool, secrets ...string) *Server {
	t.Helper()
	cfg := Config{Identity: "cookie-test", Now: func() time.Time { return *now }}
	if synced != nil {
		cfg.ClockSynced = func() bool { return *synced }
	}
	for _, s := range secrets {
		cfg.CookieSecrets = append(cfg.CookieSecrets, mustSecret(t, s))
	}
	s := New(cfg)
	snap, err := Build(parseTestZone(t, "example.com.", testZone))
	if err != nil {
		t.Fatal(err)
	}
	s.Replace([]*Zone{snap})
	return s
}

// cookieQuery is a query for name/A carrying COOKIE option data c (hex).
func cookieQuery(t testing.TB, name, c string) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	if c != "" {
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: c})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeIn answers wire through s.handle as if it came from client.
func exchangeIn(t testing.TB, s *Server, wire []byte, client string, tcp bool) *dns.Msg {
	t.Helper()
	var q query
	if !parseQuery(wire, &q) {
		t.Fatal("query not parsed")
	}
	out := make([]byte, 0, maxMsg)
	resp := s.handle(&q, out, tcp, netip.MustParseAddr(client))
	if resp == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	return m
}

func replyCookie(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

// TestRFC9018Vectors reproduces RFC 9018 Appendix A byte for byte: the
// cookie each reply carries, at the time of the example.
func TestRFC9018Vectors(t *testing.T) {
	for _, c := range []struct {
		name    string
		secrets []string
		client  string
		query   string
		at      int64
		state   uint8
		reply   string
	}{
		{
			name:    "A.1 learning a new server cookie",
			secrets: []string{"e5e973e5a6b2a43f48e7dc849e37bfcf"},
			client:  "198.51.100.100",
			query:   "2464c4abcf10c957",
			at:      1559731985,
			state:   cookieClientOnly,
			reply:   "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
		},
		{
			name:    "A.2 the same client learning a renewed server cookie",
			secrets: []string{"e5e973e5a6b2a43f48e7dc849e37bfcf"},
			client:  "198.51.100.100",
			query:   "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
			at:      1559734385,
			state:   cookieValid,
			reply:   "2464c4abcf10c957010000005cf7a871d4a564a1442aca77",
		},
		{
			// The query's cookie was minted 1h52m earlier by another
			// implementation (reserved bits set): past our one-hour
			// lifetime, so invalid here, and the fresh cookie is the
			// example's.
			name:    "A.3 another client learning a renewed server cookie",
			secrets: []string{"e5e973e5a6b2a43f48e7dc849e37bfcf"},
			client:  "203.0.113.203",
			query:   "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5",
			at:      1559734700,
			state:   cookieInvalid,
			reply:   "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e",
		},
		{
			name:    "A.4 IPv6 query with a rolled over secret",
			secrets: []string{"445536bcd2513298075a5d379663c962", "dd3bdf9344b678b185a6f5cb60fca715"},
			client:  "2001:db8:220:1:59de:d0f4:8769:82b8",
			query:   "22681ab97d52c298010000005cf7c57926556bd0934c72f8",
			at:      1559741961,
			state:   cookieValid,
			reply:   "22681ab97d52c298010000005cf7c609a6bb79d16625507a",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			now := time.Unix(c.at, 0)
			s := cookieServer(t, &now, nil, c.secrets...)
			var q query
			if !parseQuery(cookieQuery(t, "example.com.", c.query), &q) {
				t.Fatal("not parsed")
			}
			q.client, q.recv = netip.MustParseAddr(c.client), now.UnixNano()
			s.jar.process(&q, true)
			if q.cookieState != c.state {
				t.Errorf("state %s, want %s", cookieStateNames[q.cookieState], cookieStateNames[c.state])
			}
			if got := hex.EncodeToString(q.cookieOut()); got != c.reply {
				t.Errorf("reply cookie\n got %s\nwant %s", got, c.reply)
			}
		})
	}
	// A.3's cookie verifies with the hash over the reserved bits as sent.
	k := keyOf(mustSecret(t, "e5e973e5a6b2a43f48e7dc849e37bfcf"))
	b, _ := hex.DecodeString("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5")
	if serverHash(k, b[:8], b[8:16], netip.MustParseAddr("203.0.113.203")) != leUint64(b[16:]) {
		t.Error("A.3's server cookie does not verify")
	}
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

const (
	secretA = "000102030405060708090a0b0c0d0e0f"
	secretB = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
	client1 = "192.0.2.7"
	cc1     = "0123456789abcdef"
)

// learn asks s with a client cookie only and returns the cookie it gives.
func learn(t *testing.T, s *Server, client string) string {
	t.Helper()
	r := exchangeIn(t, s, cookieQuery(t, "example.com.", cc1), client, false)
	if r == nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("client-only query: %v", r)
	}
	c := replyCookie(r)
	if len(c) != 48 || c[:16] != cc1 {
		t.Fatalf("reply cookie %q: want the client cookie and a 16-octet server cookie", c)
	}
	return c
}

func TestCookieSharedSecretAcrossNodes(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a := cookieServer(t, &now, nil, secretA)
	b := cookieServer(t, &now, nil, secretA)
	other := cookieServer(t, &now, nil, secretB)
	c := learn(t, a, client1)

	r := exchangeIn(t, b, cookieQuery(t, "example.com.", c), client1, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("node with the same secret: %s, want the answer", dns.RcodeToString[r.Rcode])
	}
	if got := replyCookie(r); got != c {
		t.Errorf("a fresh cookie is echoed, not replaced: got %s want %s", got, c)
	}
	r = exchangeIn(t, other, cookieQuery(t, "example.com.", c), client1, false)
	if r.Rcode != dns.RcodeBadCookie || r.IsEdns0() == nil || len(r.Answer) != 0 {
		t.Fatalf("node with another secret: rcode %s, want BADCOOKIE with OPT", dns.RcodeToString[r.Rcode])
	}
	if got := replyCookie(r); len(got) != 48 || got == c || got[:16] != cc1 {
		t.Errorf("BADCOOKIE must carry a fresh cookie, got %q", got)
	}
	// The cookie is bound to the client's address.
	r = exchangeIn(t, b, cookieQuery(t, "example.com.", c), "192.0.2.8", false)
	if r.Rcode != dns.RcodeBadCookie {
		t.Errorf("cookie from another address: %s, want BADCOOKIE", dns.RcodeToString[r.Rcode])
	}
	// Over TCP an invalid cookie is answered, with a fresh cookie.
	r = exchangeIn(t, other, cookieQuery(t, "example.com.", c), client1, true)
	if r.Rcode != dns.RcodeSuccess || replyCookie(r) == c {
		t.Errorf("TCP with a foreign cookie: %s, cookie %s", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
}

func TestCookieRollover(t *testing.T) {
	now := time.Unix(1700000000, 0)
	old := cookieServer(t, &now, nil, secretA)
	c := learn(t, old, client1)
	// Step 1 of a rollover: the new secret verifies only.
	step1 := cookieServer(t, &now, nil, secretA, secretB)
	r := exchangeIn(t, step1, cookieQuery(t, "example.com.", c), client1, false)
	if r.Rcode != dns.RcodeSuccess || replyCookie(r) != c {
		t.Fatalf("step 1: %s, cookie %s", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
	// Step 2: the new secret mints; the old one still verifies, and a
	// cookie made with it is replaced by one made with the new.
	step2 := cookieServer(t, &now, nil, secretB, secretA)
	r = exchangeIn(t, step2, cookieQuery(t, "example.com.", c), client1, false)
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("step 2: %s", dns.RcodeToString[r.Rcode])
	}
	renewed := replyCookie(r)
	if renewed == c {
		t.Fatal("a cookie made with a verify-only secret must be replaced")
	}
	onlyB := cookieServer(t, &now, nil, secretB)
	if r := exchangeIn(t, onlyB, cookieQuery(t, "example.com.", renewed), client1, false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("renewed cookie at a node with the new secret only: %s", dns.RcodeToString[r.Rcode])
	}
	// Step 3: the old secret is gone; its cookies are not ours.
	if r := exchangeIn(t, onlyB, cookieQuery(t, "example.com.", c), client1, false); r.Rcode != dns.RcodeBadCookie {
		t.Fatalf("old cookie after the rollover: %s, want BADCOOKIE", dns.RcodeToString[r.Rcode])
	}
}

// TestCookieTimeWindow checks both edges of the lifetime (an hour back,
// five minutes ahead) and of renewal (half an hour), a second either side.
func TestCookieTimeWindow(t *testing.T) {
	const minted = 1700000000
	now := time.Unix(minted, 0)
	s := cookieServer(t, &now, nil, secretA)
	c := learn(t, s, client1)
	for _, tc := range []struct {
		offset int64 // now - minted, seconds
		rcode  int
		echo   bool
	}{
		{-301, dns.RcodeBadCookie, false},
		{-300, dns.RcodeSuccess, true},
		{-299, dns.RcodeSuccess, true},
		{1799, dns.RcodeSuccess, true},
		{1800, dns.RcodeSuccess, true},
		{1801, dns.RcodeSuccess, false},
		{3599, dns.RcodeSuccess, false},
		{3600, dns.RcodeSuccess, false},
		{3601, dns.RcodeBadCookie, false},
	} {
		now = time.Unix(minted+tc.offset, 0)
		r := exchangeIn(t, s, cookieQuery(t, "example.com.", c), client1, false)
		if r.Rcode != tc.rcode {
			t.Errorf("at %+ds: %s, want %s", tc.offset, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
		}
		got := replyCookie(r)
		if (got == c) != tc.echo {
			t.Errorf("at %+ds: cookie echoed %v, want %v", tc.offset, got == c, tc.echo)
		}
		if !tc.echo && len(got) == 48 {
			// A new cookie is stamped now.
			if ts := got[24:32]; ts != hex.EncodeToString([]byte{byte(uint32(now.Unix()) >> 24), byte(uint32(now.Unix()) >> 16), byte(uint32(now.Unix()) >> 8), byte(uint32(now.Unix()))}) {
				t.Errorf("at %+ds: new cookie stamped %s", tc.offset, ts)
			}
		}
	}
}

// TestCookieUnsyncedClock: a node whose clock is not synchronised mints
// nothing (no COOKIE option, never BADCOOKIE) and accepts any cookie
// whose hash verifies, echoing it unchanged.
func TestCookieUnsyncedClock(t *testing.T) {
	now := time.Unix(1700000000, 0)
	synced := true
	s := cookieServer(t, &now, &synced, secretA)
	c := learn(t, s, client1)
	s.jar.require = true // not enforced while unsynced

	synced = false
	now = time.Unix(5, 0) // booted in 1970
	r := exchangeIn(t, s, cookieQuery(t, "example.com.", cc1), client1, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 || replyCookie(r) != "" {
		t.Fatalf("client-only, unsynced: %s cookie %q; want an answer without a COOKIE option", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
	r = exchangeIn(t, s, cookieQuery(t, "example.com.", c), client1, false)
	if r.Rcode != dns.RcodeSuccess || replyCookie(r) != c {
		t.Fatalf("valid cookie, unsynced: %s cookie %q; want it accepted and echoed", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
	var q query
	parseQuery(cookieQuery(t, "example.com.", c), &q)
	q.client, q.recv = netip.MustParseAddr(client1), now.UnixNano()
	s.jar.process(&q, false)
	if q.cookieState != cookieValid {
		t.Errorf("valid cookie, unsynced: state %s", cookieStateNames[q.cookieState])
	}
	foreign := cc1 + "010000000000000a0000000000000000"
	r = exchangeIn(t, s, cookieQuery(t, "example.com.", foreign), client1, false)
	if r.Rcode != dns.RcodeSuccess || replyCookie(r) != "" {
		t.Fatalf("foreign cookie, unsynced: %s cookie %q; want an answer without a COOKIE option", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
	// Synced again: minting resumes.
	synced = true
	if r := exchangeIn(t, s, cookieQuery(t, "example.com.", foreign), client1, false); r.Rcode != dns.RcodeBadCookie {
		t.Fatalf("foreign cookie, synced: %s, want BADCOOKIE", dns.RcodeToString[r.Rcode])
	}
}

func TestCookieMalformedIsFormErr(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := cookieServer(t, &now, nil, secretA)
	for _, n := range []int{1, 7, 9, 15, 41} {
		c := hex.EncodeToString(make([]byte, n))
		r := exchangeIn(t, s, cookieQuery(t, "example.com.", c), client1, false)
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("cookie of %d octets: %s, want FORMERR", n, dns.RcodeToString[r.Rcode])
		}
	}
	for _, n := range []int{8, 16, 24, 40} {
		c := hex.EncodeToString(make([]byte, n))
		if r := exchangeIn(t, s, cookieQuery(t, "example.com.", c), client1, true); r.Rcode == dns.RcodeFormatError {
			t.Errorf("cookie of %d octets: FORMERR", n)
		}
	}
	// With cookies off the option is ignored (RFC 7873 §5.2).
	off := New(Config{CookiesOff: true})
	if r := exchangeIn(t, off, cookieQuery(t, "example.com.", "00"), client1, false); r.Rcode == dns.RcodeFormatError || replyCookie(r) != "" {
		t.Errorf("cookies off: %s cookie %q", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
}

func TestRequireCookieUDP(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := cookieServer(t, &now, nil, secretA)
	s.jar.require = true
	r := exchangeIn(t, s, cookieQuery(t, "example.com.", cc1), client1, false)
	if r.Rcode != dns.RcodeBadCookie || len(replyCookie(r)) != 48 {
		t.Fatalf("client-only over UDP: %s cookie %q, want BADCOOKIE with a fresh cookie", dns.RcodeToString[r.Rcode], replyCookie(r))
	}
	c := replyCookie(r)
	if r := exchangeIn(t, s, cookieQuery(t, "example.com.", c), client1, false); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("with the cookie: %s", dns.RcodeToString[r.Rcode])
	}
	if r := exchangeIn(t, s, cookieQuery(t, "example.com.", cc1), client1, true); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("client-only over TCP: %s", dns.RcodeToString[r.Rcode])
	}
	if r := exchangeIn(t, s, cookieQuery(t, "example.com.", ""), client1, false); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("no cookie at all: %s", dns.RcodeToString[r.Rcode])
	}
}

// TestCookieOnEveryPath: precomputed answers (positive, negative,
// wildcard) and the slow path all carry the cookie, beside NSID.
func TestCookieOnEveryPath(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := cookieServer(t, &now, nil, secretA)
	for _, name := range []string{"example.com.", "nope.example.com.", "x.wild.example.com.", "www.example.com.", "a.sub.example.com."} {
		for _, nsid := range []bool{false, true} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, false)
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cc1})
			if nsid {
				opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
			}
			wire, _ := m.Pack()
			r := exchangeIn(t, s, wire, client1, false)
			if c := replyCookie(r); len(c) != 48 || c[:16] != cc1 {
				t.Errorf("%s (nsid %v): cookie %q", name, nsid, c)
			}
			if nsid {
				found := false
				for _, o := range r.IsEdns0().Option {
					if n, ok := o.(*dns.EDNS0_NSID); ok && n.Nsid == hex.EncodeToString([]byte("cookie-test")) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: NSID lost beside the cookie", name)
				}
			}
		}
	}
}

// FuzzCookie feeds arbitrary COOKIE option data to the query path over
// UDP and TCP: a length RFC 7873 does not allow is FORMERR; any other
// reply parses, carries the client cookie with a 16-octet server cookie,
// is BADCOOKIE only over UDP, and the server cookie it carries is accepted
// when sent back.
func FuzzCookie(f *testing.F) {
	now := time.Unix(1559734385, 0)
	s := cookieServer(f, &now, nil, "e5e973e5a6b2a43f48e7dc849e37bfcf", "dd3bdf9344b678b185a6f5cb60fca715")
	for _, c := range []string{
		"", "00", "2464c4abcf10c957", "2464c4abcf10c95701",
		"2464c4abcf10c957010000005cf79f111f8130c3eee29480",
		"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5",
		"22681ab97d52c298010000005cf7c57926556bd0934c72f8",
		"2464c4abcf10c9570123456789abcdef",
		"2464c4abcf10c957" + strings.Repeat("ab", 32),
		"2464c4abcf10c957" + strings.Repeat("ab", 33),
	} {
		b, _ := hex.DecodeString(c)
		f.Add(b, false)
		f.Add(b, true)
	}
	out := make([]byte, 0, maxMsg)
	client := netip.MustParseAddr("198.51.100.100")
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		if len(data) > 512 {
			return
		}
		m := new(dns.Msg)
		m.SetQuestion("example.com.", dns.TypeA)
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0COOKIE, Data: data})
		wire, err := m.Pack()
		if err != nil {
			return
		}
		var q query
		if !parseQuery(wire, &q) {
			t.Fatal("query not parsed")
		}
		resp := s.handle(&q, out[:0], tcp, client)
		r := new(dns.Msg)
		if resp == nil || r.Unpack(resp) != nil {
			t.Fatalf("no reply, or one that does not parse, for cookie %x", data)
		}
		if !validCookieLen(len(data)) {
			if r.Rcode != dns.RcodeFormatError {
				t.Fatalf("cookie of %d octets: %s, want FORMERR", len(data), dns.RcodeToString[r.Rcode])
			}
			return
		}
		c := replyCookie(r)
		if len(c) != 48 || c[:16] != hex.EncodeToString(data[:8]) {
			t.Fatalf("cookie %x: reply cookie %q", data, c)
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeBadCookie:
			if tcp {
				t.Fatal("BADCOOKIE over TCP")
			}
		default:
			t.Fatalf("cookie %x: %s", data, dns.RcodeToString[r.Rcode])
		}
		again := exchangeIn(t, s, cookieQuery(t, "example.com.", c), client.String(), false)
		if again.Rcode != dns.RcodeSuccess || replyCookie(again) != c {
			t.Fatalf("the cookie we gave (%s) was not accepted back: %s %s", c, dns.RcodeToString[again.Rcode], replyCookie(again))
		}
	})
}

// BenchmarkCookie: the cost of a query with a client cookie (a server
// cookie minted) and with a valid server cookie (verified and echoed).
func BenchmarkCookie(b *testing.B) {
	now := time.Unix(1700000000, 0)
	s := cookieServer(b, &now, nil, secretA)
	out := make([]byte, 0, maxMsg)
	a := netip.MustParseAddr(client1)
	r := exchangeIn(b, s, cookieQuery(b, "example.com.", cc1), client1, false)
	for _, c := range []struct{ name, cookie string }{{"none", ""}, {"client-only", cc1}, {"valid", replyCookie(r)}} {
		wire := cookieQuery(b, "example.com.", c.cookie)
		var q query
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parseQuery(wire, &q)
				if s.handle(&q, out[:0], false, a) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}
