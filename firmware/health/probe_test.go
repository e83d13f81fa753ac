package health

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shoestring-dns/shoestring/firmware/bgp"
	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

const testZone = `$ORIGIN example.test.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 900 1209600 300
    IN NS  ns1
ns1 IN A   192.0.2.53
`

func buildZone(t *testing.T) *dnsserver.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(testZone), "example.test.", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := dnsserver.Build(z)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server runs the real DNS server on a loopback port.
func server(t *testing.T, nsid string) (*dnsserver.Server, netip.AddrPort) {
	t.Helper()
	s := dnsserver.New(dnsserver.Config{Listen: []string{"127.0.0.1:0"}, Identity: nsid, UDPWorkers: 1})
	s.Replace([]*dnsserver.Zone{buildZone(t)})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s, netip.MustParseAddrPort(s.Addrs()[0])
}

func canary() Query { return Query{Name: "example.test.", Type: dns.TypeSOA, Class: dns.ClassINET} }

// TestProbe checks the DNS probe's verdicts against the real server.
func TestProbe(t *testing.T) {
	s, target := server(t, "node1")
	probe := dnsProbe("node1")
	try := func(q Query) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return probe(ctx, target, q)
	}
	if err := try(canary()); err != nil {
		t.Errorf("canary: %v", err)
	}
	if err := try(livenessQuery()); err != nil {
		t.Errorf("liveness: %v", err)
	}
	for q, want := range map[Query]string{
		{Name: "example.test.", Type: dns.TypeAAAA, Class: dns.ClassINET}:     "no AAAA record",
		{Name: "nope.example.test.", Type: dns.TypeA, Class: dns.ClassINET}:   "NXDOMAIN",
		{Name: "example.org.", Type: dns.TypeSOA, Class: dns.ClassINET}:       "REFUSED",
		{Name: "ns1.example.test.", Type: dns.TypeSOA, Class: dns.ClassINET}:  "no SOA record",
		{Name: "ns1.example.test.", Type: dns.TypeA, Class: dns.ClassINET}:    "",
		{Name: "example.test.", Type: dns.TypeNS, Class: dns.ClassINET}:       "",
		{Name: "version.bind.", Type: dns.TypeTXT, Class: dns.ClassCHAOS}:     "REFUSED",
		{Name: "hostname.bind.", Type: dns.TypeTXT, Class: dns.ClassCHAOS}:    "",
		{Name: "www.example.test.", Type: dns.TypeSOA, Class: dns.ClassINET}:  "NXDOMAIN",
		{Name: "example.test.", Type: dns.TypeTXT, Class: dns.ClassINET}:      "no TXT record",
		{Name: "ns1.example.test.", Type: dns.TypeAAAA, Class: dns.ClassINET}: "no AAAA record",
	} {
		err := try(q)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", q, err, want)
		}
	}
	// Another node's answer is not ours: the anycast address is not local.
	if err := dnsProbe("node2")(context.Background(), target, canary()); err == nil || !strings.Contains(err.Error(), `NSID "node1"`) {
		t.Errorf("foreign NSID: %v", err)
	}
	// Expired: SERVFAIL.
	s.Put(buildZone(t).WithExpired(true))
	if err := try(canary()); err == nil || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("expired zone: %v", err)
	}
	s.Close()
	if err := try(canary()); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("server gone: %v", err)
	}
}

// TestWithdrawWithinASecond runs the monitor with its defaults against the
// real server and measures failure to withdrawal, for each way a node
// fails: it answers wrongly (zone gone: REFUSED), its zone expires, it
// stops answering. The bar is 1 s. Restoration follows Rise.
func TestWithdrawWithinASecond(t *testing.T) {
	var hung atomic.Bool
	for _, tc := range []struct {
		name   string
		break_ func(s *dnsserver.Server)
		fix    func(s *dnsserver.Server)
	}{
		{"zone deleted", func(s *dnsserver.Server) { s.Delete("example.test.") }, func(s *dnsserver.Server) { s.Put(buildZone(t)) }},
		{"zone expired", func(s *dnsserver.Server) { s.Put(buildZone(t).WithExpired(true)) }, func(s *dnsserver.Server) { s.Put(buildZone(t)) }},
		{"server hung", func(*dnsserver.Server) { hung.Store(true) }, func(*dnsserver.Server) { hung.Store(false) }},
		{"server stopped", func(s *dnsserver.Server) { s.Close() }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, target := server(t, "node1")
			// The checks go through a relay that can stop forwarding: a
			// server that takes queries and never answers.
			target = relay(t, target, &hung)
			rec := &recorder{}
			expired := func() []string {
				if z := s.Zone("example.test."); z != nil && z.Expired() {
					return []string{"example.test."}
				}
				return nil
			}
			m, err := New(Config{
				NSID: "node1", Expired: expired, Liveness: []netip.AddrPort{target},
				Prefixes: []Prefix{{Route: bgp.Route{Prefix: netip.PrefixFrom(target.Addr(), 32)}, Targets: []netip.AddrPort{target}, Query: canary()}},
			}, rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { m.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			want := []string{netip.PrefixFrom(target.Addr(), 32).String()}
			start := time.Now()
			up := rec.waitFor(t, 3*time.Second, want...)
			t.Logf("announced %v after start (rise %d × interval %v)", up.Sub(start).Round(time.Millisecond), DefaultRise, DefaultInterval)

			broke := time.Now()
			tc.break_(s)
			gone := rec.waitFor(t, 3*time.Second)
			took := gone.Sub(broke)
			t.Logf("%s: withdrawn %v later", tc.name, took.Round(time.Millisecond))
			if took > time.Second {
				t.Errorf("withdrawn %v after the failure; the bar is 1 s", took)
			}
			if tc.fix == nil {
				deadline := time.Now().Add(2 * time.Second)
				for ok, _ := m.Alive(); ok; ok, _ = m.Alive() {
					if time.Now().After(deadline) {
						t.Fatal("Alive still true with the server gone")
					}
					time.Sleep(10 * time.Millisecond)
				}
				_, why := m.Alive()
				t.Logf("Alive: false, %s", why)
				return
			}
			if ok, why := m.Alive(); ok == hung.Load() {
				t.Errorf("Alive() = %v, %s", ok, why)
			}
			fixed := time.Now()
			tc.fix(s)
			back := rec.waitFor(t, 3*time.Second, want...)
			t.Logf("restored %v after the fix", back.Sub(fixed).Round(time.Millisecond))
			if d := back.Sub(fixed); d < time.Duration(DefaultRise-1)*DefaultInterval {
				t.Errorf("restored after %v, sooner than rise allows", d)
			}
			if st := m.Status(); !slices.ContainsFunc(st, func(p PrefixStatus) bool { return p.State == Announced }) {
				t.Errorf("status %+v", st)
			}
		})
	}
}

// relay forwards UDP queries to upstream and the replies back, unless
// drop is set; then it swallows them.
func relay(t *testing.T, upstream netip.AddrPort, drop *atomic.Bool) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if drop.Load() {
				continue
			}
			q := slices.Clone(buf[:n])
			go func() {
				up, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(upstream))
				if err != nil {
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(time.Second))
				up.Write(q)
				r := make([]byte, 4096)
				if n, err := up.Read(r); err == nil {
					pc.WriteToUDPAddrPort(r[:n], from)
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}
