package catchment

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

func TestProbeRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		p := Probe(v6, "m-1", "ams1", 7, time.Now())
		// The target echoes the payload back as a reply.
		p[0] = echoReply4
		if v6 {
			p[0] = echoReply6
		}
		id, sender, ok := ParseReply(v6, p)
		if !ok || id != "m-1" || sender != "ams1" {
			t.Fatalf("v6=%v: %q %q %v", v6, id, sender, ok)
		}
		if _, _, ok := ParseReply(!v6, p); ok {
			t.Fatalf("v6=%v: a reply of the other family parsed", v6)
		}
		p[4] ^= 1 // identifier no longer the id's hash
		if _, _, ok := ParseReply(v6, p); ok {
			t.Fatalf("v6=%v: a reply with a foreign identifier parsed", v6)
		}
	}
	if _, _, ok := ParseReply(false, Probe(false, "m", "n", 1, time.Now())); ok {
		t.Fatal("an echo request parsed as a reply")
	}
	for n := 0; n < 30; n++ { // truncated replies never parse, never panic
		r := Probe(false, "m-1", "ams1", 7, time.Now())
		r[0] = echoReply4
		if n < len(r)-8 {
			if _, _, ok := ParseReply(false, r[:n]); ok && n < 8+len(magic)+1+3+1+4 {
				t.Fatalf("truncated at %d parsed", n)
			}
		}
	}
	// The IPv4 checksum verifies.
	if checksum(Probe(false, "m", "n", 1, time.Now())) != 0 {
		t.Fatal("bad ICMP checksum")
	}
}

func TestRegisterChecks(t *testing.T) {
	src := []netip.Addr{netip.MustParseAddr("192.0.2.53")}
	p := New(Options{Node: "n1", Sources: func() []netip.Addr { return src }, Rate: 100, MaxTargets: 2})
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{ID: "", Targets: []string{"192.0.2.1"}}, "id"},
		{Request{ID: "a b", Targets: []string{"192.0.2.1"}}, "only letters"},
		{Request{ID: "x"}, "no targets"},
		{Request{ID: "x", Targets: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}}, "max_targets 2"},
		{Request{ID: "x", Targets: []string{"192.0.2.0/24"}}, "not an address"},
		{Request{ID: "x", Targets: []string{"224.0.0.1"}}, "not a unicast"},
		{Request{ID: "x", Targets: []string{"192.0.2.1"}, Sources: []string{"198.51.100.1"}}, "not one of the node's anycast"},
		{Request{ID: "x", Targets: []string{"192.0.2.1"}, Timeout: "soon"}, "timeout"},
	} {
		_, err := p.Register(tc.req)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalid with %q", tc.req, err, tc.want)
		}
	}
	none := New(Options{Node: "n1"})
	if _, err := none.Register(Request{ID: "x", Targets: []string{"192.0.2.1"}}); err == nil || !strings.Contains(err.Error(), "network.anycast is empty") {
		t.Errorf("no anycast: %v", err)
	}
	if _, err := p.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
}

// TestLoopbackMeasurement sends real probes over the loopback: the
// kernel answers them, and the raw socket records the replies of listed
// targets only, once per sender, up to the bound.
func TestLoopbackMeasurement(t *testing.T) {
	testenv.RequireRoot(t)
	src := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	p := New(Options{Node: "self", Sources: func() []netip.Addr { return src }, Rate: 200, MaxTargets: 10})
	defer p.Close()
	st, err := p.Register(Request{ID: "lo-1", Targets: []string{"127.0.0.1", "127.0.0.2", "::1"}, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rate != 200 || st.State != Listening || len(st.Sources) != 2 {
		t.Fatalf("registered: %+v (the rate is capped at the node's)", st)
	}
	if _, err := p.Send("lo-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send("lo-1"); err == nil {
		t.Fatal("sent twice")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ = p.Get("lo-1")
		if st.State == Sent && len(st.Replies) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, r := range st.Replies {
		if r.Sender != "self" || r.Receiver != "self" {
			t.Errorf("reply %+v", r)
		}
	}
	if st.Sent != 3 {
		t.Errorf("sent %d, want 3", st.Sent)
	}
	st, err = p.Stop("lo-1")
	if err != nil || st.State != Stopped {
		t.Fatalf("stop: %+v %v", st, err)
	}
	if l := p.List(); len(l) != 1 || l[0].ID != "lo-1" {
		t.Fatalf("list: %+v", l)
	}
}

func TestDNSProbeRoundTrip(t *testing.T) {
	q, ok := DNSProbe("c20261204-202119-a53aea", "ams1.example")
	if !ok {
		t.Fatal("probe not built")
	}
	var m dns.Msg
	if err := m.Unpack(q); err != nil || len(m.Question) != 1 || !strings.HasSuffix(m.Question[0].Name, dnsSuffix) {
		t.Fatalf("query %v %v", m.Question, err)
	}
	if _, _, ok := ParseDNSReply(q); ok {
		t.Fatal("a query parsed as a response")
	}
	r := new(dns.Msg)
	r.SetRcode(&m, dns.RcodeRefused)
	r.Question[0].Name = strings.ToUpper(r.Question[0].Name) // 0x20 or a server's case
	b, _ := r.Pack()
	id, sender, ok := ParseDNSReply(b)
	if !ok || id != "c20261204-202119-a53aea" || sender != "ams1.example" {
		t.Fatalf("%q %q %v", id, sender, ok)
	}
	r.Id ^= 1
	b, _ = r.Pack()
	if _, _, ok := ParseDNSReply(b); ok {
		t.Fatal("a response with a foreign message id parsed")
	}
	if _, ok := DNSName(strings.Repeat("x", 64), strings.Repeat("n", 63)); ok {
		t.Fatal("an over-long name was built")
	}
}
