// Package abuse tests the DNS server's abuse resistance over real sockets:
// response rate limiting against floods from many loopback source
// addresses (one unconnected socket sends from any 127.x.y.z with
// IP_PKTINFO, and gets the replies to all of them), and DNS cookies with
// the dig and kdig clients.
package abuse

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/firmware/zone"
)

const testZone = `$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 1209600 300
@ IN NS ns1
@ IN A 192.0.2.1
ns1 IN A 192.0.2.53
big IN TXT "` + "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789" + `"
big IN TXT "` + "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij" + `"
*.wild IN A 192.0.2.80
`

func startServer(t testing.TB, cfg dnsserver.Config) (*dnsserver.Server, string) {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(testZone), "example.com.", "")
	z := &zone.Zone{Origin: "example.com."}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.Records = append(z.Records, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	snap, err := dnsserver.Build(z)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = []string{"127.0.0.1:0"}
	if cfg.UDPWorkers == 0 {
		cfg.UDPWorkers = 2
	}
	cfg.Identity = "abuse-test"
	s := dnsserver.New(cfg)
	s.Replace([]*dnsserver.Zone{snap})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s, s.Addrs()[0]
}

// group is what one client /24 got back.
type group struct {
	full, tc, badcookie, other int
	bytes                      int // reply bytes received
	lateBytes                  int // reply bytes received after the first second
}

// spoofer sends queries from any loopback address and collects the
// replies by the /24 they were sent to.
type spoofer struct {
	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	dst   *net.UDPAddr
	start time.Time

	mu     sync.Mutex
	groups map[[3]byte]*group
	// oneGroup counts every reply in one group, so the test's own memory
	// does not grow with the number of sources.
	oneGroup bool
	done     chan struct{}
}

func newSpoofer(t testing.TB, addr string, oneGroup bool) *spoofer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(8 << 20)
	conn.SetWriteBuffer(8 << 20)
	pc := ipv4.NewPacketConn(conn)
	if err := pc.SetControlMessage(ipv4.FlagDst, true); err != nil {
		t.Fatal(err)
	}
	dst, _ := net.ResolveUDPAddr("udp4", addr)
	sp := &spoofer{conn: conn, pc: pc, dst: dst, start: time.Now(), groups: map[[3]byte]*group{}, done: make(chan struct{}), oneGroup: oneGroup}
	go sp.read()
	t.Cleanup(func() { conn.Close(); <-sp.done })
	return sp
}

func (sp *spoofer) read() {
	defer close(sp.done)
	buf := make([]byte, 4096)
	for {
		n, cm, _, err := sp.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if cm == nil || n < 12 {
			continue
		}
		var k [3]byte
		if !sp.oneGroup {
			copy(k[:], cm.Dst.To4()[:3])
		}
		flags := binary.BigEndian.Uint16(buf[2:])
		rcode := int(flags & 0xF)
		sp.mu.Lock()
		g := sp.groups[k]
		if g == nil {
			g = &group{}
			sp.groups[k] = g
		}
		g.bytes += n
		if time.Since(sp.start) > time.Second {
			g.lateBytes += n
		}
		switch {
		case flags&(1<<9) != 0:
			g.tc++
		case rcode == dns.RcodeBadCookie&0xF && hasOPT(buf[:n]):
			g.badcookie++
		case rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError:
			g.full++
		default:
			g.other++
		}
		sp.mu.Unlock()
	}
}

func hasOPT(b []byte) bool { return binary.BigEndian.Uint16(b[10:]) > 0 }

func (sp *spoofer) send(t testing.TB, src netip.Addr, msg []byte) {
	ip := src.As4()
	if _, err := sp.pc.WriteTo(msg, &ipv4.ControlMessage{Src: net.IP(ip[:])}, sp.dst); err != nil {
		t.Fatalf("send from %v: %v", src, err)
	}
}

func (sp *spoofer) group(prefix string) group {
	p := netip.MustParseAddr(prefix).As4()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if g := sp.groups[[3]byte{p[0], p[1], p[2]}]; g != nil {
		return *g
	}
	return group{}
}

func query(t testing.TB, name string, qtype uint16, cookie string) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if cookie != "" {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie})
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeFrom asks over TCP or UDP from a given local address.
func exchangeFrom(t testing.TB, network, addr string, from netip.Addr, m *dns.Msg) (*dns.Msg, error) {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.IP(from.AsSlice())}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.IP(from.AsSlice())}
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func cookieOf(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

// TestRRLFlood: one /24 floods at 1,000 qps for 10 s (the figure)
// at a limit of 5 with slip 2, while a client in another /24 asks the same question
// four times a second; the flooding /24 also asks over TCP and with a
// valid server cookie.
func TestRRLFlood(t *testing.T) {
	const (
		rate  = 5
		qps   = 1000
		secs  = 10
		slip  = 2
		flood = "127.10.0.0"
		legit = "127.20.0.1"
	)
	s, addr := startServer(t, dnsserver.Config{RRL: &dnsserver.RRLConfig{ResponsesPerSecond: rate, Slip: slip}})
	// Learn a cookie over TCP from the flooding /24 before the flood.
	cookieClient := netip.MustParseAddr("127.10.0.77")
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0011223344556677"})
	r, err := exchangeFrom(t, "tcp", addr, cookieClient, m)
	if err != nil || len(cookieOf(r)) != 48 {
		t.Fatalf("learning a cookie over TCP: %v %v", err, r)
	}
	withCookie := query(t, "big.example.com.", dns.TypeTXT, cookieOf(r))

	sp := newSpoofer(t, addr, false)
	q := query(t, "big.example.com.", dns.TypeTXT, "")
	rnd := rand.New(rand.NewSource(1))
	sent, sentBytes, lateBytes := 0, 0, 0
	legitSent := 0
	start := time.Now()
	sp.start = start
	var tcpOK, tcpSent, cookieOK, cookieSent int
	for {
		el := time.Since(start)
		if el >= secs*time.Second {
			break
		}
		for target := int(el / time.Millisecond * qps / 1000); sent < target; sent++ {
			src := netip.MustParseAddr(flood).As4()
			src[3] = byte(1 + rnd.Intn(254))
			sp.send(t, netip.AddrFrom4(src), q)
			sentBytes += len(q)
			if el > time.Second {
				lateBytes += len(q)
			}
		}
		if want := int(el/(250*time.Millisecond)) + 1; legitSent < want {
			sp.send(t, netip.MustParseAddr(legit), q)
			legitSent++
			// The same flooding /24, over TCP and with its cookie.
			tcpSent++
			m := new(dns.Msg)
			m.SetQuestion("big.example.com.", dns.TypeTXT)
			if r, err := exchangeFrom(t, "tcp", addr, cookieClient, m); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 2 {
				tcpOK++
			}
			cookieSent++
			cm := new(dns.Msg)
			cm.Unpack(withCookie)
			if r, err := exchangeFrom(t, "udp", addr, cookieClient, cm); err == nil && r.Rcode == dns.RcodeSuccess && !r.Truncated && len(r.Answer) == 2 {
				cookieOK++
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond) // the last replies
	fl, lg := sp.group(flood), sp.group(legit)
	met := s.QueryMetrics().RRL["positive"]
	limited := sent - fl.full
	dropped := sent - fl.full - fl.tc
	whole := int(math.Ceil(elapsed.Seconds()))
	t.Logf("flood: %d queries in %v from one /24: %d full answers, %d TC, %d dropped (server: slip %d, drop %d)",
		sent, elapsed.Round(time.Millisecond), fl.full, fl.tc, dropped, met["slip"], met["drop"])
	t.Logf("bytes after the first second: %d out, %d in (%.2f)", fl.lateBytes, lateBytes, float64(fl.lateBytes)/float64(lateBytes))
	t.Logf("other /24: %d/%d answered; same /24 over TCP: %d/%d; with a valid cookie: %d/%d", lg.full, legitSent, tcpOK, tcpSent, cookieOK, cookieSent)
	if fl.full > rate*(whole+1) || fl.full < rate {
		t.Errorf("%d full answers in %v at %d/s: want %d..%d", fl.full, elapsed, rate, rate, rate*(whole+1))
	}
	if fl.badcookie != 0 || fl.other != 0 {
		t.Errorf("unexpected replies: %+v", fl)
	}
	// Slip 2: half the limited replies go out truncated, half are
	// dropped; the server decides exactly, the network may lose a few.
	if d := int(met["slip"]) - int(met["drop"]); d < -1 || d > 1 || int(met["slip"]+met["drop"]) < limited*98/100 {
		t.Errorf("server: slip %d, drop %d for %d limited replies", met["slip"], met["drop"], limited)
	}
	if fl.tc < int(met["slip"])*95/100 || fl.tc > int(met["slip"]) {
		t.Errorf("%d TC replies received, server slipped %d", fl.tc, met["slip"])
	}
	if float64(fl.lateBytes) > 0.7*float64(lateBytes) {
		t.Errorf("amplification after the first second: %d bytes out for %d in", fl.lateBytes, lateBytes)
	}
	if lg.full != legitSent || lg.tc != 0 {
		t.Errorf("client in another /24: %d of %d answered, %d TC", lg.full, legitSent, lg.tc)
	}
	if tcpOK != tcpSent || cookieOK != cookieSent {
		t.Errorf("same /24 over TCP %d/%d, with a valid cookie %d/%d: want all answered", tcpOK, tcpSent, cookieOK, cookieSent)
	}
}

// TestRRLRandomNXDOMAIN: 10,000 random names in one zone are one bucket.
func TestRRLRandomNXDOMAIN(t *testing.T) {
	const rate = 5
	s, addr := startServer(t, dnsserver.Config{RRL: &dnsserver.RRLConfig{ResponsesPerSecond: rate, Slip: 2}})
	sp := newSpoofer(t, addr, false)
	src := netip.MustParseAddr("127.30.0.1")
	rnd := rand.New(rand.NewSource(2))
	start := time.Now()
	for i := 0; i < 10000; i++ {
		sp.send(t, src, query(t, fmt.Sprintf("r%x.example.com.", rnd.Uint64()), dns.TypeA, ""))
		if i%200 == 199 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	g := sp.group("127.30.0.1")
	met := s.QueryMetrics().RRL["nxdomain"]
	t.Logf("10,000 random names in %v: %d NXDOMAIN answers, %d TC (server: slip %d, drop %d)", elapsed.Round(time.Millisecond), g.full, g.tc, met["slip"], met["drop"])
	if bound := rate * (int(math.Ceil(elapsed.Seconds())) + 1); g.full > bound {
		t.Errorf("%d NXDOMAIN answers, want at most %d: random names must share the zone's bucket", g.full, bound)
	}
	if met["slip"]+met["drop"] < 9000 {
		t.Errorf("server limited only %d NXDOMAIN replies", met["slip"]+met["drop"])
	}
}

// TestRRLManySources: 65,536 sources, each in its own /24, leave the
// table's memory as it was.
func TestRRLManySources(t *testing.T) {
	s, addr := startServer(t, dnsserver.Config{RRL: &dnsserver.RRLConfig{ResponsesPerSecond: 5, Slip: 2}})
	sp := newSpoofer(t, addr, true)
	q := query(t, "example.com.", dns.TypeA, "")
	table := s.RRLTableBytes()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 65536; i++ {
		sp.send(t, netip.AddrFrom4([4]byte{127, byte(i >> 8), byte(i), 9}), q)
		if i%256 == 255 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	answered := 0
	sp.mu.Lock()
	for _, g := range sp.groups {
		answered += g.full
	}
	sp.mu.Unlock()
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("65,536 sources: %d answered; table %d bytes before and %d after; live heap change %d bytes", answered, table, s.RRLTableBytes(), grew)
	if s.RRLTableBytes() != table || table == 0 {
		t.Errorf("table %d bytes, was %d", s.RRLTableBytes(), table)
	}
	if grew > 1<<20 {
		t.Errorf("live heap grew %d bytes with the number of sources", grew)
	}
	// Each source is new, so every query that reached the server is
	// answered; under load the kernel may drop some on the way.
	if answered < 65536/2 {
		t.Errorf("only %d of 65,536 first queries answered", answered)
	}
}
